# Denoising diffusion pre-training with DiffusionPretrainer: epsilon prediction, linear schedule, T = 1000; AdamW
# 1e-3 with gradient clipping, a 100-iteration linear warm-up then cosine decay to max_iters (an experiment that
# changes max_iters restates param_scheduler with the cosine's `end` at its max_iters: a config list replaces the
# base's); EMA weights, a DDIM sample grid and a checkpoint every 500 iterations; mmpretrain's default runtime.
# Experiments set model.arch and the data, with an InfiniteSampler and no val or test dataloader or evaluator (a
# base cannot set the keys its sibling dataset base sets): nothing is evaluated, the generative side is judged by
# the sample grids.
_base_ = ['mmpretrain::_base_/default_runtime.py', '../mmdiff_guards.py']
custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)
model = dict(
    type='mmdiff.DiffusionPretrainer',
    noise_scheduler=dict(type='DDPMScheduler', num_train_timesteps=1000, beta_schedule='linear',
                         prediction_type='epsilon'),
    # the U-Net models RGB images in [-1, 1], as the probes and distillers that load it read them
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True))

train_cfg = dict(by_epoch=False, max_iters=2000)
val_cfg, test_cfg = None, None
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.0), clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=2000, eta_min=1e-5),
]
custom_hooks = [
    # the checkpoints' state_dict holds these averaged weights (the raw ones go to ema_state_dict)
    dict(type='EMAHook', momentum=5e-3, update_buffers=True),
    dict(type='mmdiff.DiffusionSamplesHook', interval=500, num_images=64, sampler='ddim', num_inference_steps=50),
] + _base_.custom_hooks
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
