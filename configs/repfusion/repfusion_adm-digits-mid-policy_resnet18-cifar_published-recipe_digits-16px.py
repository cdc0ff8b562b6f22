# The published RepFusion recipe (./repfusion_ddpm-cifar10-mid-policy_resnet18-cifar_1xb128-200e_cifar10.py) at demo
# scale, for `make evidence-repfusion` to measure against mmdiff's choices on the digits: the 'adm-digits' U-Net
# (pre-trained by configs/diffusion_pretraining/ddpm_adm-digits_2k_digits-16px.py) seen on the clean image at a
# policy-drawn t among all 1000 steps, the residual branch of its middle block's second resnet
# ('mid_block.resnets.1.conv2', stride 8), raw pooled MSE, an MLP reward head without baseline, the entropy bonus 0.1
# falling per epoch to 0 at half the run, SGD lr 0.1 (momentum 0.9, weight decay 1e-4) divided by 10 at 1/2 and
# 3/4 of the run, an EMA of the weights, PyTorch's default initialisation. Scaled to the digits: 48 epochs of 22
# batches (about the 1000 iterations of the mmdiff twin), the EMA momentum 0.08 so that its horizon is the same
# share of the run as 1e-3 is of the reference's 78,000 iterations, and mmdiff's strided policy ('conv'; the
# reference LeNet needs 32x32 images) without the zero start.
_base_ = ['./repfusion_adm-digits-b18-policy_resnet18-cifar_digits-16px.py']
model = dict(
    teacher=dict(out_blocks=('mid_block.resnets.1.conv2', )),
    backbone=dict(init_cfg=None, zero_init_residual=False),
    normalize=False,
    timestep_policy=dict(_delete_=True, type='mmdiff.TimestepPolicy', arch='conv', zero_init=False),
    reward_head_channels=(64, 64),
    reward_baseline=False,
    entropy_weight=0.1)
custom_hooks = [
    dict(type='mmdiff.EntropyDecayHook', start=0.1, decay_epochs=24),
    dict(type='EMAHook', momentum=0.08, priority='ABOVE_NORMAL'),
    dict(type='mmdiff.NonFiniteLossHook'),
    dict(type='mmdiff.RandomStateHook'),
    dict(type='mmdiff.RunChecksHook'),
]
train_dataloader = dict(sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True))
train_cfg = dict(_delete_=True, by_epoch=True, max_epochs=48)
optim_wrapper = dict(_delete_=True, optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[24, 36], gamma=0.1)]
default_hooks = dict(logger=dict(interval=22), checkpoint=dict(_delete_=True, type='CheckpointHook', interval=48))
log_processor = dict(by_epoch=True)
