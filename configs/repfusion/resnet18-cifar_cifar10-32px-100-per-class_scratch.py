# Few labels on CIFAR-10: the CIFAR ResNet-18 trained from scratch on 100 train images per class (the first of each
# class folder: 1,000 of the 50,000) with random 4-pixel-padded crops and flips, SGD with cosine decay, 20 epochs of
# 64, evaluated on all 10,000 test images. The baseline of fine-tuning the RepFusion student on the same labels
# (./resnet18-cifar_cifar10-32px-100-per-class_finetune-repfusion.py), which differs only in its initial weights.
_base_ = [
    '../_base_/models/resnet18-cifar_linear-cls.py', '../_base_/datasets/cifar10-jpeg_32px.py',
    'mmpretrain::_base_/default_runtime.py', '../_base_/mmdiff_guards.py'
]
custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    dataset=dict(_delete_=True, type='mmdiff.PerClassSubset', labels_per_class=100,
                 dataset=dict(_base_.train_dataloader.dataset, pipeline=train_pipeline)))
epochs = 20
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs, eta_min=1e-4)]
train_cfg = dict(by_epoch=True, max_epochs=epochs, val_interval=epochs)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=epochs))
randomness = dict(seed=0)
