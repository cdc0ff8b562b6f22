# Transfer to CUB-200-2011 birds (200 classes) with the published linear probe and recipe of ./linear-probe_adm-256u-b24-t150_4xb32-28e_in1k.py (the diffssl repository publishes
# ImageNet scripts only; this applies them unchanged, see docs/fidelity.md).
_base_ = ['./linear-probe_adm-256u-b24-t150_4xb32-28e_in1k.py']

data_root = '{{$MMDIFF_CUB_ROOT:data/CUB_200_2011/}}'
train_dataloader = dict(dataset=dict(type='CUB', data_root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type='CUB', data_root=data_root, split='test'))
test_dataloader = val_dataloader
model = dict(head=dict(num_classes=200))
