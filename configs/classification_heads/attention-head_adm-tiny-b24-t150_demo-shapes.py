# Demo twin of the published attention head (../_base_/models/adm-256u-b24-t150_diffssl-attention-head.py) at toy
# width: the tiny ADM-layout U-Net's block 24 (64 channels, 2x2 for 32 px images, 4x4 for the 64 px demo set)
# pooled to 2x2 tokens, LayerNorm over the whole map, qkv without bias, no final norm, on the generated shapes
# classification set. Unlike the published setting the U-Net keeps mmdiff's defaults (fixed seeded noise, float32)
# and the head its truncated-normal init.
_base_ = [
    '../_base_/models/adm-256u-b24-t150_diffssl-attention-head.py',
    '../_base_/datasets/shapes-classification_bs16.py',
    '../_base_/schedules/frozen-probe_10e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(arch='adm-tiny', noise_mode='fixed', dtype='float32', init_cfg=None),
    head=dict(
        num_classes=4,
        in_channels=64,
        embed_dims=64,
        num_heads=4,
        pool_size=2,
        init_cfg=dict(_delete_=True, type='TruncNormal', layer='Linear', std=0.02),
        topk=(1, )))
default_hooks = dict(logger=dict(interval=10))
randomness = dict(seed=0)
