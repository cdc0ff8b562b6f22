# DiffusionUNetBackbone with SDXL-base-1.0 at t = 1 on the VAE latents of the clean image, read from a local
# diffusers pipeline folder (unet/, vae/ and scheduler/; of the VAE only the encoder is loaded; the config fails at
# start-up, naming the path, when it is missing). The U-Net cross-attends to the empty prompt and takes SDXL's added
# conditioning: the file holds both text encoders' prompt embedding (77, 2048) and the pooled embedding (1280,),
# written once by
#   python tools/model_converters/make_prompt_embedding.py checkpoints/stable-diffusion-xl-base-1.0
# checkpoints/sdxl_empty-prompt.pth
# and the six time ids are the input size, crop (0, 0) and target size, as SDXL's pipeline makes them. Its decoder
# gives strides 8/16/32 of the image with 320/640/1280 channels. A detection or segmentation config puts it in place
# of its ResNet (`_delete_` drops the ResNet's keys) with its own taps: `backbone=dict(_base_.sdxl_backbone, ...)`.
model_dir = 'checkpoints/stable-diffusion-xl-base-1.0'
sdxl_backbone = dict(
    _delete_=True,
    type='mmdiff.DiffusionUNetBackbone',
    arch='sdxl-base',
    vae='sdxl',
    model_dir=model_dir,
    context=dict(type='file', path='checkpoints/sdxl_empty-prompt.pth', num_tokens=77),
    timesteps=(1, ),
    noise_mode='none',
    init_cfg=None)
