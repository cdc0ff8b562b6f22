# DifFeed on ImageNet-1k: block 24 fed back to block 14, attention head on block 24 at t = 150.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_diffeed_attention-head.py',
    '../_base_/datasets/imagenet_bs32_256px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]
