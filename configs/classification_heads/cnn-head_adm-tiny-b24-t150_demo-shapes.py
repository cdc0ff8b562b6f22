# The demo with the CNN head instead of the linear probe.
_base_ = ['../linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py']
from mmdiff.models.backbones import declared_out_channels

model = dict(
    head=dict(
        _delete_=True,
        type='CNNHead',
        channels=(64, 64),
        num_classes=4,
        in_channels=declared_out_channels(dict(arch='adm-tiny', out_strides=None, out_blocks=(24, )))[-1],
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, )))
