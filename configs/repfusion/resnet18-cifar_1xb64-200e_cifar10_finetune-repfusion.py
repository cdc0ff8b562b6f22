# The published fine-tuning of the CIFAR-10 RepFusion student (Adamdad/Repfusion
# configs/baseline/resnet18_b128x1_cifar10_finetune.py, whose batch is 64 despite its name): mmpretrain's CIFAR
# ResNet-18 + linear head from the exported student, the same (x - 128) / 128 inputs, random crop with 4-pixel
# padding and flips, SGD (Nesterov) lr 0.1, steps at 100/150, 200 epochs, EMA 1e-3, evaluation every 5 epochs.
_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    '../_base_/datasets/cifar10_bs16.py',
    '../_base_/schedules/repfusion_sgd-step-200e.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/mmdiff_guards.py',
]
student = 'work_dirs/repfusion_cifar10/student.pth'  # tools/model_converters/export_student.py wrote it
model = dict(
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[128.0, 128.0, 128.0], std=[128.0, 128.0, 128.0],
                           to_rgb=False),
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=student, prefix='backbone.')),
    head=dict(topk=(1, 5)))
train_dataloader = dict(batch_size=64, num_workers=2)
val_dataloader = dict(batch_size=64, num_workers=2)
test_dataloader = val_dataloader
val_evaluator = dict(topk=(1, 5))
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(nesterov=True))
custom_hooks = [dict(type='EMAHook', momentum=0.001, priority='ABOVE_NORMAL')] + _base_.custom_hooks
train_cfg = dict(val_interval=5)
val_cfg = dict()
test_cfg = dict()
