# DiffusionTransformerBackbone with FLUX.1-dev, read from a local diffusers pipeline folder (transformer/, vae/ and
# scheduler/; the config fails at start-up, naming the path, when it is missing), on the clean VAE latents at t = 1
# (flow matching) with its pipeline's default distilled guidance (3.5), cross-attending jointly to the empty prompt:
# the file holds the T5 prompt embedding (512, 4096) and the CLIP pooled embedding (768,), written once by
#   python tools/model_converters/make_prompt_embedding.py checkpoints/FLUX.1-dev checkpoints/flux-dev_empty-prompt.pth
# mmdiff's setting, not a paper's (DiTF's AdaLN modulation and channel discard are the options modulated=True and
# drop_massive_channels, off here; docs/transformers.md).
# Its 19 double- and 38 single-stream blocks give 3072 channels at stride 16 of the image.
flux_backbone = dict(
    _delete_=True,
    type='mmdiff.DiffusionTransformerBackbone',
    arch='flux-dev',
    vae='flux',
    model_dir='checkpoints/FLUX.1-dev',
    context=dict(type='file', path='checkpoints/flux-dev_empty-prompt.pth', num_tokens=512),
    guidance=3.5,
    timesteps=(1, ),
    noise_mode='none',
    init_cfg=None)
