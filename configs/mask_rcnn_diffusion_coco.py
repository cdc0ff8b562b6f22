# Mask R-CNN (FPN) on COCO 2017 instances with the frozen ADM ImageNet-256 U-Net at t = 150, 1x schedule.
_base_ = [
    '_base_/models/mask-rcnn_diffusion-unet_fpn.py',
    '_base_/datasets/coco-instance.py',
    'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py',
    '_base_/mmdiff_guards.py',
]

# guided-diffusion's 256x256_diffusion_uncond.pt converted to an mmdiff backbone checkpoint by
# python tools/model_converters/convert_adm_checkpoint.py 256x256_diffusion_uncond.pt
# checkpoints/adm-256u_imagenet-uncond.pth \
#     --preset 256x256_diffusion_uncond
pretrained = 'checkpoints/adm-256u_imagenet-uncond.pth'
model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', checkpoint=pretrained)))
custom_hooks = [dict(type='mmdiff.EvalProgressBarHook')] + _base_.custom_hooks  # a progress bar while evaluating
