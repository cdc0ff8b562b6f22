# DiffusionTransformerBackbone with Stable Diffusion 3.5 medium, read from a local diffusers pipeline folder
# (transformer/, vae/ and scheduler/; the config fails at start-up, naming the path, when it is missing), on the clean
# VAE latents at t = 1 (flow matching), cross-attending jointly to the empty prompt: the file holds the prompt
# embedding (333, 4096: CLIP-L and CLIP-G beside each other, padded, then T5) and the pooled embedding (2048,),
# written once by
#   python tools/model_converters/make_prompt_embedding.py checkpoints/stable-diffusion-3.5-medium
# checkpoints/sd35_empty-prompt.pth
# mmdiff's setting, not a paper's. Its 24 blocks give 1536 channels at stride 16 of the image.
sd35_backbone = dict(
    _delete_=True,
    type='mmdiff.DiffusionTransformerBackbone',
    arch='sd35-medium',
    vae='sd3',
    model_dir='checkpoints/stable-diffusion-3.5-medium',
    context=dict(type='file', path='checkpoints/sd35_empty-prompt.pth', num_tokens=333),
    timesteps=(1, ),
    noise_mode='none',
    init_cfg=None)
