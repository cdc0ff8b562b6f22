# Denoising diffusion pre-training (epsilon prediction, linear schedule, T = 1000) of the 'adm-digits' U-Net on the
# train split of the handwritten digits, with EMA weights and a sample grid every 500 iterations. About 13 minutes
# on a 2-core CPU. Its checkpoints load into DiffusionUNetBackbone(arch='adm-digits') with init_cfg Pretrained,
# as configs/linear_probe/linear-probe_adm-digits-b20-t50_digits-16px.py does.
_base_ = ['../_base_/datasets/digits_16px.py', 'mmpretrain::_base_/default_runtime.py', '../_base_/mmdiff_guards.py']
custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)

model = dict(
    type='mmdiff.DiffusionPretrainer',
    arch='adm-digits',
    noise_scheduler=dict(type='DDPMScheduler', num_train_timesteps=1000, beta_schedule='linear',
                         prediction_type='epsilon'),
    # the U-Net models images in [-1, 1]
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3))

train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
train_cfg = dict(by_epoch=False, max_iters=2000)
val_dataloader, val_cfg, val_evaluator = None, None, None  # the generative side is judged by the sample grids
test_dataloader, test_cfg, test_evaluator = None, None, None
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
