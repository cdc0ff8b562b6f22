# mmdiff's lighter attention head on ImageNet-1k (not the published setting: attention-head_*_4xb32-28e_in1k.py
# is): frozen float32 ADM-256 U-Net, block 24, t = 150, fixed seeded noise; AdamW with cosine decay, 30 epochs.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_attention-head-lite.py',
    '../_base_/datasets/imagenet_bs32_256px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]
