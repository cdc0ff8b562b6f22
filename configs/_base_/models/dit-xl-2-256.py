# DiffusionTransformerBackbone with DiT-XL/2 at 256 px, read from a local diffusers folder (transformer/, vae/ and
# scheduler/, as facebook/DiT-XL-2-256 holds them; of the VAE only the encoder is loaded; the config fails at start-up,
# naming the path, when it is missing): its null class (the unconditional model) on the VAE latents noised to
# t = 150 with seeded noise. mmdiff's setting, not a paper's. A config puts it in place of its ResNet (`_delete_` drops
# the ResNet's keys) with its own taps: `backbone=dict(_base_.dit_backbone, ...)`. Its 28 blocks give 1152 channels
# at stride 16 of the image.
dit_backbone = dict(
    _delete_=True,
    type='mmdiff.DiffusionTransformerBackbone',
    arch='dit-xl-2-256',
    vae='sd',
    model_dir='checkpoints/DiT-XL-2-256',
    timesteps=(150, ),
    noise_mode='fixed',
    init_cfg=None)
