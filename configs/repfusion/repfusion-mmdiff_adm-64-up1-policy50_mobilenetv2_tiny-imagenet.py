# The Tiny-ImageNet RepFusion run with a MobileNetV2 student (the paper's second student); its last stage (1,280
# channels) is aligned with the teacher.
_base_ = ['./repfusion-mmdiff_adm-64-up1-policy50_resnet18_tiny-imagenet.py']
model = dict(backbone=dict(_delete_=True, type='MobileNetV2', widen_factor=1.0))
