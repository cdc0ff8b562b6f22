# Linear-probe transfer to Oxford Flowers-102 (102 classes): frozen ADM-256 U-Net, block 24, t = 150.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_linear-probe.py',
    '../_base_/datasets/fine-grained_bs8_256px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]

data_root = 'data/flowers102'
train_dataloader = dict(dataset=dict(type='Flowers102', data_root=data_root, split='trainval'))
val_dataloader = dict(dataset=dict(type='Flowers102', data_root=data_root, split='test'))
test_dataloader = val_dataloader
model = dict(head=dict(num_classes=102))
