# Demo twin of the DifFormer configs: the tiny ADM-layout U-Net (random weights, frozen), blocks 19, 24, 30 x
# t = 90, 150, 300, on the generated shapes classification set.
_base_ = ['../linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py']
from mmdiff.models.backbones import declared_out_channels

timesteps = (90, 150, 300)
backbone = dict(arch='adm-tiny', timesteps=timesteps, out_strides=None, out_blocks=(19, 24, 30),
                timestep_fusion='stack')
model = dict(
    backbone=backbone,
    head=dict(
        _delete_=True,
        type='DifFormerHead',
        num_classes=4,
        in_channels=declared_out_channels(backbone),
        num_timesteps=len(timesteps),
        embed_dims=32,
        num_heads=4,
        num_layers=1,
        pool_size=2,
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, )))
