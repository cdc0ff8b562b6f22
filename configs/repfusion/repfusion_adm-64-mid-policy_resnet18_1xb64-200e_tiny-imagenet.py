# RepFusion on Tiny-ImageNet as published (Adamdad/Repfusion configs/tinyimagenet_hint/ddpm-r18_hint_tinyimagenet.py,
# Repfusion_Imagenet64_ImageClassifier; docs/fidelity.md): guided-diffusion's class-conditional ImageNet 64x64 ADM,
# loaded as the reference loads it, without --use_new_attention_order (convert with `python
# tools/model_converters/convert_adm_checkpoint.py 64x64_diffusion.pt
# checkpoints/adm-64_imagenet-cond_legacy-attention.pth --preset
# 64x64_diffusion --use-new-attention-order False`), sees the clean image with the image's own Tiny-ImageNet label
# (0-199, used as an ImageNet class id, as the reference does) and a policy-drawn t in [0, 1000); the residual branch
# of its middle block's second resnet ('mid_block.resnets.1.conv2', the reference's middle_block.2.out_layers.3: 768
# channels, stride 8), pooled, is matched by raw MSE to the pooled, projected last stage of an ImageNet-layout
# ResNet-18. A 3-layer MLP (768-384-384-200) rewards the LeNet-64 policy; the entropy bonus is 0 throughout (the
# reference's EntropyDecayHook starts at 0.0 here). Images are ImageNet-standardised for all three (the teacher warns
# that they leave [-1, 1], as they do in the reference). SGD (Nesterov), steps at 100/150, 200 epochs, EMA 1e-3,
# fp16 with a static loss scale of 512, batch 64 on one GPU.
_base_ = [
    '../_base_/models/repfusion_resnet18-cifar.py',
    '../_base_/datasets/tiny-imagenet_bs128_64px.py',
    '../_base_/schedules/repfusion_sgd-step-200e.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True),
    teacher=dict(arch='adm-64', class_label=None, timesteps=(0, ), out_blocks=('mid_block.resnets.1.conv2', ),
                 dtype='float16',
                 init_cfg=dict(type='Pretrained', checkpoint='checkpoints/adm-64_imagenet-cond_legacy-attention.pth')),
    backbone=dict(_delete_=True, type='ResNet', depth=18, init_cfg=None, zero_init_residual=False),
    normalize=False,
    timestep_policy=dict(arch='lenet-64', zero_init=False),
    num_classes=200,
    reward_head_channels=(384, 384),
    reward_baseline=False,
    teacher_labels=True,
    entropy_weight=0.0)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(batch_size=64, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader, val_cfg, val_evaluator = None, None, None
test_dataloader, test_cfg, test_evaluator = None, None, None
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale=512.0, optimizer=dict(nesterov=True))
custom_hooks = [  # no EntropyDecayHook: the weight is 0
    dict(type='EMAHook', momentum=0.001, priority='ABOVE_NORMAL'),
    dict(type='mmdiff.NonFiniteLossHook'),
    dict(type='mmdiff.RandomStateHook'),
    dict(type='mmdiff.RunChecksHook'),
]
default_hooks = dict(logger=dict(interval=100), checkpoint=dict(interval=50))
