# The published DifFormer (scripts/fusion.sh, ssl_diff/attention_fusion.py): diffssl blocks 19, 24 and 30 at
# t = 90, 150 and 300, all nine (block, t) maps from one batched U-Net call (timestep_fusion='stack'; the outputs
# come by stride: block 30 (512 x 64 x 64), 24 (1024 x 16 x 16), 19 (1024 x 8 x 8)). Each map is pooled to
# min(size, 16) (16, 16, 8: 576 tokens per t), LayerNorm over the whole pooled map, a 1x1 convolution to 1024; one
# attention (CLS token, two blocks, 8 heads, qkv without bias) shared by the three timesteps, no position or
# timestep embedding; the three CLS outputs concatenated -> Linear(3072, 1000). 31,802,344 parameters.
_base_ = ['./adm-256u-b24-t150_diffssl-linear-probe.py']

model = dict(
    backbone=dict(timesteps=(90, 150, 300), out_blocks=(19, 24, 30), timestep_fusion='stack'),
    head=dict(
        _delete_=True,
        type='mmdiff.DifFormerHead',
        num_classes=1000,
        in_channels=(512, 1024, 1024),
        num_timesteps=3,
        embed_dims=1024,
        num_heads=8,
        num_layers=2,
        mlp_ratio=4.0,
        pool_size=(16, 16, 8),
        norm='map',
        qkv_bias=False,
        position_embedding=False,
        timestep_embedding=False,
        final_norm=False,
        cross_timestep='concat',
        init_cfg=None,
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, 5)))
