# mmdiff's lighter attention head (not the published one, ./adm-256u-b24-t150_diffssl-attention-head.py, which it
# changes): block 24 at t = 150 pooled to 8x8 = 64 tokens, per-token LayerNorm, width 512, qkv bias, a final
# LayerNorm, truncated-normal init: 7.3 M instead of 27.8 M parameters and a quarter of the tokens, for a quicker
# probe. The backbone keeps mmdiff's defaults (fixed seeded noise, float32).
_base_ = ['./adm-256u-b24-t150_diffssl-attention-head.py']

model = dict(
    backbone=dict(noise_mode='fixed', dtype='float32'),
    head=dict(
        embed_dims=512,
        pool_size=8,
        norm='token',
        qkv_bias=True,
        final_norm=True,
        init_cfg=dict(_delete_=True, type='TruncNormal', layer='Linear', std=0.02)))
