# The published fine-tuning of the Tiny-ImageNet RepFusion student (Adamdad/Repfusion
# configs/baseline/resnet18_b128x1_tinyimagenet_finetune.py): a CIFAR-layout ResNet-18 (3x3 stem) + linear head for
# 200 classes, although the published distillation trains an ImageNet-layout ResNet-18 (7x7 stem): the stem
# convolution does not fit and keeps its fresh initialisation, every other student weight loads (mmengine warns of the
# size mismatch, as mmcv does in the reference). ImageNet-standardised images, random-resized 64 px crops and flips;
# SGD lr 0.1, steps at 100/150, 200 epochs, no EMA, batch 128, evaluation every 5 epochs.
_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    '../_base_/datasets/tiny-imagenet_bs128_64px.py',
    '../_base_/schedules/repfusion_sgd-step-200e.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/mmdiff_guards.py',
]
student = 'work_dirs/repfusion_tiny-imagenet/student.pth'  # tools/model_converters/export_student.py wrote it
model = dict(
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           to_rgb=True),
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=student, prefix='backbone.')),
    head=dict(num_classes=200, topk=(1, 5)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=64),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=64, edge='short'), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(val_interval=5)
val_cfg = dict()
test_cfg = dict()
