# mmdiff's lighter attention head (not the published one; see ./adm-256u-b24-t150_diffssl-attention-head.py):
# block 24 at t = 150 pooled to 8x8 = 64 tokens, per-token LayerNorm, width 512, qkv bias, a final LayerNorm,
# truncated-normal init: 7.3 M instead of 27.8 M parameters and a quarter of the tokens, for a quicker probe. The
# backbone keeps mmdiff's defaults (fixed seeded noise, float32).
_base_ = ['./adm-256u-b24-t150_linear-probe.py']

model = dict(
    head=dict(
        _delete_=True,
        type='AttentionHead',
        num_classes=1000,
        in_channels=1024,
        embed_dims=512,
        num_heads=8,
        num_layers=2,
        pool_size=8,
        norm='token',
        qkv_bias=True,
        final_norm=True,
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, 5)))
