# RepFusion on CIFAR-10 as published (Adamdad/Repfusion configs/cifar10-hint/ddpm-r18_hint_cifar10.py,
# Repfusion32_ImageClassifier; docs/fidelity.md): Ho et al.'s 32x32 DDPM (a local diffusers folder of the
# google/ddpm-cifar10-32 pipeline, downloaded beforehand: mmdiff never fetches weights) sees the clean image with the
# time embedding of a t in [0, 1000) drawn per image by the LeNet policy; the residual branch of its middle block's
# second resnet ('mid_block.resnets.1.conv2', 256 channels, stride 8), globally pooled, is matched by raw MSE to the
# pooled, 1x1-projected last stage of a CIFAR ResNet-18 (PyTorch's default initialisation). A 3-layer MLP on the
# pooled teacher feature learns the labels; its negative cross-entropy rewards the policy (REINFORCE, no baseline);
# the entropy bonus 0.1 falls linearly per epoch to 0 at epoch 100. SGD, steps at 100/150, 200 epochs, EMA 1e-3,
# batch 128 on one GPU. The images are (x - 128) / 128 for teacher, student and policy alike. Nothing is evaluated
# (the reference distiller has no head); export the student (tools/model_converters/export_student.py) and fine-tune it
# with
# ./resnet18-cifar_1xb64-200e_cifar10_finetune-repfusion.py.
_base_ = [
    '../_base_/models/repfusion_resnet18-cifar.py',
    '../_base_/datasets/cifar10_bs16.py',
    '../_base_/schedules/repfusion_sgd-step-200e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(mean=[128.0, 128.0, 128.0], std=[128.0, 128.0, 128.0], to_rgb=False),
    teacher=dict(arch=None, model_dir='checkpoints/ddpm-cifar10-32', timesteps=(0, ),
                 out_blocks=('mid_block.resnets.1.conv2', )),
    backbone=dict(init_cfg=None, zero_init_residual=False),
    normalize=False,
    timestep_policy=dict(arch='lenet', zero_init=False),  # candidates: all 1000 steps of the teacher
    num_classes=10,
    reward_head_channels=(256, 256),
    reward_baseline=False,
    entropy_weight=0.1)
custom_hooks = [
    dict(type='mmdiff.EntropyDecayHook', start=0.1, decay_epochs=100),
    dict(type='EMAHook', momentum=0.001, priority='ABOVE_NORMAL'),
    dict(type='mmdiff.NonFiniteLossHook'),
    dict(type='mmdiff.RandomStateHook'),
    dict(type='mmdiff.RunChecksHook'),
]
train_dataloader = dict(batch_size=128, num_workers=2)
val_dataloader, val_cfg, val_evaluator = None, None, None
test_dataloader, test_cfg, test_evaluator = None, None, None
default_hooks = dict(logger=dict(interval=100), checkpoint=dict(interval=50))
