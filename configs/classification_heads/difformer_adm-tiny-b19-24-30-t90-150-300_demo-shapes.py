# Demo twin of the published DifFormer (../_base_/models/adm-256u-b19-24-30-t90-150-300_diffssl-difformer.py) at
# toy width: the tiny ADM-layout U-Net (random weights, frozen), blocks 19, 24, 30 x t = 90, 150, 300 (outputs by
# stride: 30, 24, 19), each map pooled to (2, 2, 1) tokens so that 32 px images fit, LayerNorm over each whole map,
# no position or timestep embedding, no final norm, on the generated shapes classification set.
_base_ = ['../linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py']

model = dict(
    backbone=dict(timesteps=(90, 150, 300), out_blocks=(19, 24, 30), timestep_fusion='stack'),
    head=dict(
        _delete_=True,
        type='DifFormerHead',
        num_classes=4,
        in_channels=(32, 64, 64),
        num_timesteps=3,
        embed_dims=32,
        num_heads=4,
        num_layers=2,
        pool_size=(2, 2, 1),
        norm='map',
        qkv_bias=False,
        position_embedding=False,
        timestep_embedding=False,
        final_norm=False,
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, )))
