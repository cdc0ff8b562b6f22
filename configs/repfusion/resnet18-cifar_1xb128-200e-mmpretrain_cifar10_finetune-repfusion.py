# Fine-tune the RepFusion-distilled CIFAR ResNet-18 on CIFAR-10 with mmpretrain's standard 200-epoch recipe
# (resnet18_8xb16_cifar10 on one process of 128), for the students of the repfusion-mmdiff_* configs; the published
# fine-tuning is ./resnet18-cifar_1xb64-200e_cifar10_finetune-repfusion.py. Without the init_cfg it is the
# from-scratch baseline.
_base_ = [
    'mmpretrain::_base_/models/resnet18_cifar.py',
    '../_base_/datasets/cifar10_bs16.py',
    'mmpretrain::_base_/schedules/cifar10_bs128.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/mmdiff_guards.py',
]
student = 'work_dirs/repfusion_cifar10/student.pth'  # tools/model_converters/export_student.py wrote it
# the student was distilled on images in [-1, 1]; fine-tune on the same inputs
model = dict(
    data_preprocessor=dict(type='ClsDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3, to_rgb=False),
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=student, prefix='backbone.')))
train_dataloader = dict(batch_size=128)
