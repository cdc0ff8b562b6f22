# DifFormer transfer to CUB-200-2011 birds (200 classes): blocks 19, 24, 30 x t = 90, 150, 300.
_base_ = [
    '../_base_/models/adm-256u-b19-24-30-t90-150-300_difformer.py',
    '../_base_/datasets/cub_bs8_256px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]

model = dict(head=dict(num_classes=200))
