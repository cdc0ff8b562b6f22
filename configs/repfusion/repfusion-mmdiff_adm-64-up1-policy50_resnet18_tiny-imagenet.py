# RepFusion on Tiny-ImageNet with mmdiff's choices (not the published setting, which is
# ./repfusion_adm-64-mid-policy_resnet18_1xb64-200e_tiny-imagenet.py; docs/fidelity.md): guided-diffusion's
# class-conditional ImageNet 64x64 ADM (64x64_diffusion.pt converted by `python
# tools/model_converters/convert_adm_checkpoint.py
# 64x64_diffusion.pt checkpoints/adm-64_imagenet-cond.pth --preset 64x64_diffusion`), run with one fixed class label,
# seen on the clean image with the time embedding of a policy-drawn t < 50, its 'up_blocks.1' output (stride 2: the
# block ends with its upsampler) distilled into an ImageNet-layout ResNet-18 (so mmdet and mmseg ResNet-18 configs
# load the exported student) with mmdiff's loss, reward head and AdamW recipe for 100 epochs.
_base_ = [
    '../_base_/models/repfusion_resnet18-cifar.py',
    '../_base_/datasets/tiny-imagenet_bs128_64px.py',
    '../_base_/schedules/repfusion-distill_iters.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    teacher=dict(arch='adm-64', class_label=0, timesteps=(10, ), out_blocks=('up_blocks.1', ),
                 init_cfg=dict(type='Pretrained', checkpoint='checkpoints/adm-64_imagenet-cond.pth')),
    backbone=dict(_delete_=True, type='ResNet', depth=18),
    timestep_policy=dict(timesteps=[
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
        20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39,
        40, 41, 42, 43, 44, 45, 46, 47, 48, 49
    ]),  # every t < 50
    num_classes=200)
max_iters = 78200  # 100 epochs of 100,000 images in batches of 128
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=500, end=78200, eta_min=1e-5),
]
val_dataloader, val_cfg, val_evaluator = None, None, None
test_dataloader, test_cfg, test_evaluator = None, None, None
default_hooks = dict(logger=dict(interval=100), checkpoint=dict(by_epoch=False, interval=7820, max_keep_ckpts=2))
randomness = dict(seed=0)
