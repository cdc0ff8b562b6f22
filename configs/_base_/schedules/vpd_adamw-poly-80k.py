# VPD's schedule (wl-zhao/VPD @ 92095ab, segmentation/configs/fpn_vpd_sd1-5_512x512_gpu8x2.py on
# _base_/schedules/schedule_80k.py): AdamW lr 8e-5, weight decay 1e-3; mmcv's poly (power 1, min 0) over all 80k
# iterations with a linear warm-up from 1e-6 over the first 1,500 (mmcv multiplies the two: here LinearLR and PolyLR
# both start at 0), a checkpoint and an mIoU evaluation every 8k iterations, no gradient clipping.
# VPD's paramwise custom_keys {'unet': lr_mult 0.1, 'norm': decay_mult 0} match ldm parameter names, longest key
# first: the transformers' norms (ldm `norm`, `norm1`-`norm3`) get lr x 1 without weight decay, every other U-Net
# weight lr x 0.1, and the resnets' GroupNorms (ldm `in_layers.0` / `out_layers.0`, which hold no 'norm') lr x 0.1
# with weight decay. diffusers names those `resnets.k.norm1` / `norm2`, so 'resnets' (matched before 'norm') keeps
# them where ldm's names put them. The VAE is frozen (VPD's encoder_vq lr_mult 0) and the class embeddings fixed.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=8e-5, weight_decay=1e-3),
    clip_grad=None,
    paramwise_cfg=dict(custom_keys={
        'resnets': dict(lr_mult=0.1),
        'unet': dict(lr_mult=0.1),
        'norm': dict(decay_mult=0.0)
    }))
# mmengine's schedulers reach their end value one step before `end`: ends of 1501 and 80001 give mmcv's values at
# every iteration (mmcv's warm-up reaches the full rate at iteration 1500, its poly reaches 0 at 80000, never run)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1501),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=80001),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
