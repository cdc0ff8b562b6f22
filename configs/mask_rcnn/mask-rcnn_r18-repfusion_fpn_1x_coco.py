# Distil, then fine-tune for detection: mmdet's Mask R-CNN with a ResNet-18 FPN, the ResNet-18 starting from the
# student that configs/repfusion/repfusion-mmdiff_adm-64-up1-policy50_resnet18_tiny-imagenet.py distilled from the
# ADM-64 U-Net (python tools/model_converters/export_student.py <distillation checkpoint> --out
# checkpoints/repfusion_adm-64_resnet18.pth).
# mmdet's mask-rcnn_r50_fpn_1x_coco.py, its COCO data under MMDIFF_COCO_ROOT
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    '../_base_/datasets/coco-instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '../_base_/mmdiff_guards.py',
]
student = 'checkpoints/repfusion_adm-64_resnet18.pth'
model = dict(
    # the student learnt on images in [-1, 1]
    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3, bgr_to_rgb=True),
    backbone=dict(depth=18, init_cfg=dict(type='Pretrained', checkpoint=student, prefix='backbone.')),
    neck=dict(in_channels=[64, 128, 256, 512]))
