# The diffssl papers' attention head (scripts/attention.sh, ssl_diff/attention_fusion.py): block 24 (1024 x 16 x 16)
# at t = 150 pooled to 16x16 = 256 tokens, LayerNorm over the whole (1024, 16, 16) map, a 1x1 convolution to 1024,
# a CLS token, two transformer blocks (8 heads, MLP ratio 4, qkv without bias), no final norm, Linear on the CLS
# token; PyTorch's default initialisation. 27,786,216 parameters.
_base_ = ['./adm-256u-b24-t150_diffssl-linear-probe.py']

model = dict(
    head=dict(
        _delete_=True,
        type='mmdiff.AttentionHead',
        num_classes=1000,
        in_channels=1024,
        embed_dims=1024,
        num_heads=8,
        num_layers=2,
        mlp_ratio=4.0,
        pool_size=16,
        norm='map',
        qkv_bias=False,
        final_norm=False,
        init_cfg=None,
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, 5)))
