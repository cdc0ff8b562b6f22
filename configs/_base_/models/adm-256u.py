# DiffusionUNetBackbone with the frozen ADM ImageNet-256 U-Net (guided-diffusion's 256x256_diffusion_uncond) at
# t = 150, the decoder's last layer at each of strides 4/8/16/32: [512, 512, 1024, 1024] channels. The detection and
# segmentation bases put it in place of their ResNet (`model = dict(backbone={{_base_.backbone}})`; `_delete_`
# drops the ResNet's keys).
custom_imports = dict(imports=['mmdiff'], allow_failed_imports=False)
backbone = dict(
    _delete_=True,
    type='mmdiff.DiffusionUNetBackbone',
    arch='adm-256u',
    timesteps=(150, ),
    noise_mode='fixed',
    out_strides=(4, 8, 16, 32),
    frozen=True,
    init_cfg=None)
