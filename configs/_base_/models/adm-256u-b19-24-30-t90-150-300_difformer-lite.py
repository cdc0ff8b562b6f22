# mmdiff's lighter DifFormer (not the published one; see ./adm-256u-b19-24-30-t90-150-300_diffssl-difformer.py):
# the same nine (block, t) maps, each pooled to 2x2 (12 tokens per t), per-token LayerNorm, width 512, learned token
# and timestep embeddings, a final LayerNorm: 9.2 M instead of 31.8 M parameters. Fixed seeded noise, float32.
_base_ = ['./adm-256u-b24-t150_linear-probe.py']

model = dict(
    backbone=dict(timesteps=(90, 150, 300), out_blocks=(19, 24, 30), timestep_fusion='stack'),
    head=dict(
        _delete_=True,
        type='DifFormerHead',
        num_classes=1000,
        in_channels=(512, 1024, 1024),
        num_timesteps=3,
        embed_dims=512,
        num_heads=8,
        num_layers=2,
        pool_size=2,
        norm='token',
        cross_timestep='concat',
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, 5)))
