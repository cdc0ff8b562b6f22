# ImageClassifier: the frozen ADM ImageNet-256 U-Net, diffssl block 24 at t = 150, and a linear probe on its
# 2x2-pooled features, with mmdiff's defaults: fixed seeded noise, float32. The diffssl papers' setting is
# ./adm-256u-b24-t150_diffssl-linear-probe.py (docs/fidelity.md).
_base_ = ['../mmdiff_guards.py']
custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)
custom_hooks = [dict(type='mmdiff.EvalProgressBarHook')] + _base_.custom_hooks  # a progress bar while evaluating

# guided-diffusion's 256x256_diffusion_uncond.pt converted to an mmdiff backbone checkpoint by
# python tools/model_converters/convert_adm_checkpoint.py 256x256_diffusion_uncond.pt
# checkpoints/adm-256u_imagenet-uncond.pth \
#     --preset 256x256_diffusion_uncond
pretrained = 'checkpoints/adm-256u_imagenet-uncond.pth'
backbone = dict(
    type='mmdiff.DiffusionUNetBackbone',
    arch='adm-256u',
    timesteps=(150, ),
    noise_mode='fixed',
    out_strides=None,
    out_blocks=(24, ),
    frozen=True,
    init_cfg=dict(type='Pretrained', checkpoint=pretrained))
model = dict(
    type='ImageClassifier',
    # the U-Net was trained on images in [-1, 1]
    data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True),
    backbone=backbone,
    head=dict(
        type='mmdiff.LinearProbeHead',
        num_classes=1000,
        in_channels=1024,  # block 24 of ADM-256
        pool_size=2,
        loss=dict(type='CrossEntropyLoss'),
        topk=(1, 5)))
