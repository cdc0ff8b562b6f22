# Fewer labels on CIFAR-10: fine-tune the RepFusion student on 10 train images per class, starting from the
# student's weights (see ./resnet18-cifar_cifar10-32px-100-per-class_finetune-repfusion.py).
_base_ = ['./resnet18-cifar_cifar10-32px-10-per-class_scratch.py']
student = 'work_dirs/cifar10_evidence/student.pth'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=student, prefix='backbone.')))
