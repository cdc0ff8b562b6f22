# Demo twin of the published DifFormer (../_base_/models/adm-256u-b19-24-30-t90-150-300_diffssl-difformer.py) at
# toy width: the tiny ADM-layout U-Net (random weights, frozen), blocks 19, 24, 30 x t = 90, 150, 300 (outputs by
# stride: 30, 24, 19), each map pooled to (2, 2, 1) tokens so that 32 px images fit, LayerNorm over each whole map,
# no position or timestep embedding, no final norm, on the generated shapes classification set. Unlike the
# published setting the U-Net keeps mmdiff's defaults (fixed seeded noise, float32) and the head its
# truncated-normal init.
_base_ = [
    '../_base_/models/adm-256u-b19-24-30-t90-150-300_diffssl-difformer.py',
    '../_base_/datasets/shapes-classification_bs16.py',
    '../_base_/schedules/frozen-probe_10e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(arch='adm-tiny', noise_mode='fixed', dtype='float32', init_cfg=None),
    head=dict(
        num_classes=4,
        in_channels=(32, 64, 64),
        embed_dims=32,
        num_heads=4,
        pool_size=(2, 2, 1),
        init_cfg=dict(_delete_=True, type='TruncNormal', layer='Linear', std=0.02),
        topk=(1, )))
default_hooks = dict(logger=dict(interval=10))
randomness = dict(seed=0)
