# Demo twin of the published attention head (../_base_/models/adm-256u-b24-t150_diffssl-attention-head.py) at toy
# width: the tiny ADM-layout U-Net's block 24 (64 channels, 2x2 for 32 px images, 4x4 for the 64 px demo set)
# pooled to 2x2 tokens, LayerNorm over the whole map, qkv without bias, no final norm.
_base_ = ['../linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py']

model = dict(
    head=dict(
        _delete_=True,
        type='AttentionHead',
        num_classes=4,
        in_channels=64,
        embed_dims=64,
        num_heads=4,
        num_layers=2,
        pool_size=2,
        norm='map',
        qkv_bias=False,
        final_norm=False,
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, )))
