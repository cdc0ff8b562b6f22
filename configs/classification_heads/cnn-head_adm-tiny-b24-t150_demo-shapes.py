# The demo with the CNN head instead of the linear probe.
_base_ = ['../linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py']

model = dict(
    head=dict(
        _delete_=True,
        type='mmdiff.CNNHead',
        channels=(64, 64),
        num_classes=4,
        in_channels=64,  # block 24 of the tiny U-Net
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, )))
