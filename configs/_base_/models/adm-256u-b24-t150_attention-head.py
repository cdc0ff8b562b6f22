# ImageClassifier: the frozen ADM ImageNet-256 U-Net, diffssl block 24 at t = 150, and the diffssl papers'
# attention head (tokens of the 2x2-pooled 16x16 map, a CLS token, two transformer blocks).
_base_ = ['./adm-256u-b24-t150_linear-probe.py']
from mmdiff.models.backbones import declared_out_channels

model = dict(
    head=dict(
        _delete_=True,
        type='AttentionHead',
        num_classes=1000,
        in_channels=declared_out_channels(
            dict(arch='adm-256u', timesteps=(150, ), out_strides=None, out_blocks=(24, )))[-1],
        embed_dims=512,
        num_heads=8,
        num_layers=2,
        pool_stride=2,
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, 5)))
