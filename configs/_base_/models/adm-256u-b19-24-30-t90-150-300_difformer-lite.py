# mmdiff's lighter DifFormer (not the published one, ./adm-256u-b19-24-30-t90-150-300_diffssl-difformer.py, which it
# changes): the same nine (block, t) maps, each pooled to 2x2 (12 tokens per t), per-token LayerNorm, width 512,
# qkv bias, learned token and timestep embeddings, a final LayerNorm, truncated-normal init: 9.2 M instead of
# 31.8 M parameters. Fixed seeded noise, float32.
_base_ = ['./adm-256u-b19-24-30-t90-150-300_diffssl-difformer.py']

model = dict(
    backbone=dict(noise_mode='fixed', dtype='float32'),
    head=dict(
        embed_dims=512,
        pool_size=2,
        norm='token',
        qkv_bias=True,
        position_embedding=True,
        timestep_embedding=True,
        final_norm=True,
        init_cfg=dict(_delete_=True, type='TruncNormal', layer='Linear', std=0.02)))
