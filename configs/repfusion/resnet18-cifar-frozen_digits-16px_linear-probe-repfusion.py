# Linear probe of the frozen RepFusion-distilled ResNet-18 on the handwritten digits: how much of the label the
# distilled features carry before any fine-tuning (tools/model_converters/export_student.py wrote the student).
_base_ = ['./resnet18-cifar-frozen_digits-16px_linear-probe-random.py']
student = 'work_dirs/repfusion_digits/student.pth'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=student, prefix='backbone.')))
