# Few labels on CIFAR-10: fine-tune the RepFusion student (distilled from the pre-trained U-Net by
# ./repfusion_adm-cifar32-b18-policy_resnet18-cifar_cifar10-32px.py and written by
# tools/model_converters/export_student.py) on 100 train images per class: the scratch baseline's config, starting
# from the student's weights.
_base_ = ['./resnet18-cifar_cifar10-32px-100-per-class_scratch.py']
student = 'work_dirs/cifar10_evidence/student.pth'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=student, prefix='backbone.')))
