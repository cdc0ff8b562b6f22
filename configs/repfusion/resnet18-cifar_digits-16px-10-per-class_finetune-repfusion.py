# Few labels: fine-tune a RepFusion student on 10 training digits per class. The student of the fixed-t distillation
# (configs/repfusion/repfusion_adm-digits-b18-t100_resnet18-cifar_digits-16px.py) never saw a label: the teacher
# U-Net was pre-trained and distilled on unlabelled images, so these 100 labels are all the supervision it gets.
_base_ = ['./resnet18-cifar_digits-16px-10-per-class_scratch.py']
student = 'work_dirs/repfusion_digits/student_fixed.pth'
model = dict(backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=student, prefix='backbone.')))
