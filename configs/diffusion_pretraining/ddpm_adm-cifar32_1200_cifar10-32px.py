# Denoising diffusion pre-training (epsilon prediction, linear schedule, T = 1000) of the 'adm-cifar32' U-Net (the
# adm-digits layout at 32x32: four levels, 32-64 channels, attention at 16x16 and 8x8, 2.8 M parameters) on the
# 50,000 CIFAR-10 train images, without their labels: batch 64, 1,200 iterations (1.5 epochs), EMA weights, a DDIM
# sample grid every 500 iterations and after the last, a checkpoint every 400 (all kept: `make evidence-cifar10`
# probes each). About 40 minutes on a 2-core CPU; a GPU run would raise max_iters (docs/cifar10_evidence.md).
_base_ = ['../_base_/datasets/cifar10-jpeg_32px.py', '../_base_/schedules/ddpm-pretrain_adamw-cosine.py']
model = dict(arch='adm-cifar32')
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
val_dataloader, val_evaluator, test_dataloader, test_evaluator = None, None, None, None
max_iters = 1200
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(interval=400, max_keep_ckpts=-1))
