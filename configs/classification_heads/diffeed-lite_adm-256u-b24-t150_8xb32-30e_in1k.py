# mmdiff's lighter DifFeed on ImageNet-1k (not the published setting: diffeed-attention-head_*_4xb4-28e_in1k.py
# is): block 24 fed back to block 14 through a zero-started gated adapter, the lighter attention head, fixed
# seeded noise, float32; AdamW with cosine decay, 30 epochs.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_diffeed-lite_attention-head-lite.py',
    '../_base_/datasets/imagenet_bs32_256px.py',
    '../_base_/schedules/frozen-probe_30e.py',
    'mmpretrain::_base_/default_runtime.py',
]
