# Linear-probe transfer to CUB-200-2011 birds (200 classes): frozen ADM-256 U-Net, block 24, t = 150.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_linear-probe.py',
    '../_base_/datasets/fine-grained_bs8_256px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]

data_root = 'data/CUB_200_2011'
train_dataloader = dict(dataset=dict(type='CUB', data_root=data_root, split='train'))
val_dataloader = dict(dataset=dict(type='CUB', data_root=data_root, split='test'))
test_dataloader = val_dataloader
model = dict(head=dict(num_classes=200))
