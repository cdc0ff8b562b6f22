# RepFusion on CIFAR-10 with mmdiff's choices (not the published setting, which is
# ./repfusion_ddpm-cifar10-mid-policy_resnet18-cifar_1xb128-200e_cifar10.py; docs/fidelity.md): Ho et al.'s 32x32
# DDPM from a local diffusers folder, seen on the clean image with the time embedding of a policy-drawn t < 100, its
# 'up_blocks.0' output (stride 4, 256 channels) distilled into a CIFAR ResNet-18 by L2-normalised pooled MSE with a
# linear reward head and a running-mean baseline, AdamW with cosine decay for 100 epochs (39,100 iterations of 128).
# Then export the student (tools/model_converters/export_student.py) and fine-tune it with
# configs/repfusion/resnet18-cifar_1xb128-200e-mmpretrain_cifar10_finetune-repfusion.py.
_base_ = [
    '../_base_/models/repfusion_resnet18-cifar.py',
    '../_base_/datasets/cifar10_bs16.py',
    '../_base_/schedules/repfusion-distill_iters.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    # CIFAR-10 images load as RGB already
    data_preprocessor=dict(to_rgb=False),
    teacher=dict(arch=None, model_dir='checkpoints/ddpm-cifar10-32', timesteps=(10, ), out_blocks=('up_blocks.0', )),
    timestep_policy=dict(timesteps=[
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
        20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39,
        40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
        60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79,
        80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96, 97, 98, 99
    ]),  # every t < 100
    num_classes=10)
max_iters = 39100
train_dataloader = dict(batch_size=128, sampler=dict(type='InfiniteSampler', shuffle=True))
train_cfg = dict(max_iters=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=500, end=39100, eta_min=1e-5),
]
val_dataloader, val_cfg, val_evaluator = None, None, None
test_dataloader, test_cfg, test_evaluator = None, None, None
default_hooks = dict(logger=dict(interval=100), checkpoint=dict(by_epoch=False, interval=3910, max_keep_ckpts=2))
randomness = dict(seed=0)
