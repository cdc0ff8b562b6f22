# Fine-tune the RepFusion-distilled ResNet-18 on the digits: the scratch baseline's config, starting from the
# student that tools/model_converters/export_student.py wrote from the distillation run.
_base_ = ['./resnet18-cifar_digits-16px_scratch.py']
student = 'work_dirs/repfusion_digits/student.pth'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=student, prefix='backbone.')))
