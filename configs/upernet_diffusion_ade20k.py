# UperNet on ADE20K (150 classes, 512x512 crops, 160k iterations) with the frozen ADM ImageNet-256 U-Net at t = 150.
_base_ = [
    '_base_/models/upernet_diffusion-unet.py',
    '_base_/datasets/ade20k.py',
    'mmseg::_base_/default_runtime.py',
    '_base_/mmdiff_guards.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]

crop_size = (512, 512)
# guided-diffusion's 256x256_diffusion_uncond.pt converted to an mmdiff backbone checkpoint by
# python tools/model_converters/convert_adm_checkpoint.py 256x256_diffusion_uncond.pt
# checkpoints/adm-256u_imagenet-uncond.pth \
#     --preset 256x256_diffusion_uncond
pretrained = 'checkpoints/adm-256u_imagenet-uncond.pth'
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained', checkpoint=pretrained)),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))
custom_hooks = [dict(type='mmdiff.EvalProgressBarHook')] + _base_.custom_hooks  # a progress bar while evaluating
