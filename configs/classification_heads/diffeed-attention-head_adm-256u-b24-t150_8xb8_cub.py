# DifFeed transfer to CUB-200-2011 birds (200 classes): block 24 fed back to block 14, attention head on block 24.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_diffeed_attention-head.py',
    '../_base_/datasets/cub_bs8_256px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]

model = dict(head=dict(num_classes=200))
