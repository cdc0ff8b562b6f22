# DiffusionUNetBackbone with Stable Diffusion 1.5 at t = 1 on the VAE latents of the clean image, read from a local
# diffusers pipeline folder (unet/, vae/ and scheduler/; of the VAE only the encoder is loaded; the config fails at
# start-up, naming the path, when it is missing). A segmentation config puts it in place of its ResNet
# (`_delete_` drops the ResNet's keys) with its own context, taps and training mode:
# `backbone=dict(_base_.sd15_backbone, context=..., out_strides=..., frozen=...)`.
model_dir = 'checkpoints/stable-diffusion-v1-5'
sd15_backbone = dict(
    _delete_=True,
    type='mmdiff.DiffusionUNetBackbone',
    arch='sd15',
    vae='sd',
    model_dir=model_dir,
    timesteps=(1, ),
    noise_mode='none',
    init_cfg=None)
