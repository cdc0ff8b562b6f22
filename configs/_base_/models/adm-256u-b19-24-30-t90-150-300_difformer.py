# ImageClassifier: DifFormer over the frozen ADM ImageNet-256 U-Net, the published setting: diffssl blocks 19, 24
# and 30 at t = 90, 150 and 300, all nine (block, t) maps from one batched U-Net call (timestep_fusion='stack').
_base_ = ['./adm-256u-b24-t150_linear-probe.py']
from mmdiff.models.backbones import declared_out_channels

timesteps = (90, 150, 300)
backbone = dict(
    type='DiffusionUNetBackbone',
    arch='adm-256u',
    timesteps=timesteps,
    out_strides=None,
    out_blocks=(19, 24, 30),
    timestep_fusion='stack')
model = dict(
    backbone=backbone,
    head=dict(
        _delete_=True,
        type='DifFormerHead',
        num_classes=1000,
        in_channels=declared_out_channels(backbone),
        num_timesteps=len(timesteps),
        embed_dims=512,
        num_heads=8,
        num_layers=2,
        pool_size=2,
        cross_timestep='concat',
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, 5)))
