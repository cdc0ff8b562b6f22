# Linear-probe transfer to CUB-200-2011 birds (200 classes): frozen ADM-256 U-Net, block 24, t = 150.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_linear-probe.py',
    '../_base_/datasets/cub_bs8_256px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]

model = dict(head=dict(num_classes=200))
