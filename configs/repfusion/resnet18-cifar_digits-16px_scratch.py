# The ResNet-18 (CIFAR layout) trained from scratch on the handwritten digits: the baseline of the RepFusion
# fine-tuning run, which differs only in its initial weights (same data, schedule and seed).
_base_ = [
    '../_base_/models/resnet18-cifar_linear-cls.py', '../_base_/datasets/digits_16px.py',
    'mmpretrain::_base_/default_runtime.py', '../_base_/mmdiff_guards.py'
]
custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)
epochs = 10
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=epochs, eta_min=1e-4)]
train_cfg = dict(by_epoch=True, max_epochs=epochs, val_interval=epochs)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=epochs))
randomness = dict(seed=0)
