# The demo with the attention head instead of the linear probe.
_base_ = ['../linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py']
from mmdiff.models.backbones import declared_out_channels

model = dict(
    head=dict(
        _delete_=True,
        type='AttentionHead',
        embed_dims=64,
        num_heads=4,
        num_layers=2,
        num_classes=4,
        in_channels=declared_out_channels(dict(arch='adm-tiny', out_strides=None, out_blocks=(24, )))[-1],
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, )))
