# The published DifFormer's transfer to CUB-200-2011 birds (200 classes) with the recipe of ./difformer_adm-256u-b19-24-30-t90-150-300_4xb32-28e_in1k.py (the diffssl
# repository publishes ImageNet scripts only; this applies them unchanged, see docs/fidelity.md).
_base_ = ['./difformer_adm-256u-b19-24-30-t90-150-300_4xb32-28e_in1k.py']

data_root = '{{$MMDIFF_CUB_ROOT:data/CUB_200_2011/}}'
train_dataloader = dict(dataset=dict(type='CUB', data_root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type='CUB', data_root=data_root, split='test'))
test_dataloader = val_dataloader
model = dict(head=dict(num_classes=200))
