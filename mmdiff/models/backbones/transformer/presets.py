"""diffusers diffusion-transformer configurations for the layouts mmdiff ships as presets.

Each full-size preset is the published model's ``transformer/config.json`` (layout keys only); where mmdiff could
not read the Hub's own file, the source it was taken from is named beside it (``docs/fidelity.md``). A preset is
checked against a model folder's ``config.json`` whenever both are given. The tiny presets keep each family's block
kinds, conditioning and token stride with a few channels, for tests and demos.
"""

TRANSFORMER_PRESETS = {
    # DiT-XL/2 at 256 px (facebook/DiT-XL-2-256; layout as diffusers' scripts/convert_dit_to_diffusers.py writes it):
    # class-conditional on ImageNet, its null class is 1000; pair with vae='sd'
    'dit-xl-2-256':
    dict(type='DiTTransformer2DModel', num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8,
         num_layers=28, sample_size=32, patch_size=2, activation_fn='gelu-approximate', num_embeds_ada_norm=1000,
         norm_type='ada_norm_zero', norm_elementwise_affine=False),
    # PixArt-Sigma-XL-2-1024-MS (layout as PixArt-sigma's tools/convert_pixart_to_diffusers.py writes it): T5 context
    # (4096-wide tokens); pair with vae='sdxl'
    'pixart-sigma-xl-2-1024':
    dict(type='PixArtTransformer2DModel', num_attention_heads=16, attention_head_dim=72, in_channels=4, out_channels=8,
         num_layers=28, cross_attention_dim=1152, sample_size=128, patch_size=2, attention_bias=True,
         activation_fn='gelu-approximate', num_embeds_ada_norm=1000, norm_type='ada_norm_single',
         norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=4096, interpolation_scale=2,
         use_additional_conditions=False),
    # Stable Diffusion 3.5 medium (stabilityai/stable-diffusion-3.5-medium, MMDiT-X: dual attention in blocks 0-12):
    # joint attention over 4096-wide text tokens, a 2048-wide pooled embedding, flow matching; pair with vae='sd3'
    'sd35-medium':
    dict(type='SD3Transformer2DModel', sample_size=128, patch_size=2, in_channels=16, num_layers=24,
         attention_head_dim=64, num_attention_heads=24, joint_attention_dim=4096, caption_projection_dim=1536,
         pooled_projection_dim=2048, out_channels=16, pos_embed_max_size=384, dual_attention_layers=tuple(range(13)),
         qk_norm='rms_norm'),
    # FLUX.1 (black-forest-labs/FLUX.1-dev and -schnell): 19 double-stream then 38 single-stream blocks on 2x2-packed
    # latents, rotary positions, flow matching; dev is guidance-distilled (give guidance=); pair with vae='flux'
    'flux-dev':
    dict(type='FluxTransformer2DModel', patch_size=1, in_channels=64, num_layers=19, num_single_layers=38,
         attention_head_dim=128, num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768,
         guidance_embeds=True, axes_dims_rope=(16, 56, 56)),
    # Sana 1600M at 1024 px (Efficient-Large-Model/Sana_1600M_1024px_diffusers): linear-attention blocks on the
    # 32x latents of its AutoencoderDC, Gemma-2 context (2304-wide tokens), flow matching; pair with vae='sana'
    'sana-1600m-1024':
    dict(type='SanaTransformer2DModel', in_channels=32, out_channels=32, num_attention_heads=70, attention_head_dim=32,
         num_layers=20, num_cross_attention_heads=20, cross_attention_head_dim=112, cross_attention_dim=2240,
         caption_channels=2304, mlp_ratio=2.5, dropout=0.0, attention_bias=False, sample_size=32, patch_size=1,
         norm_elementwise_affine=False, norm_eps=1e-6, interpolation_scale=None),
}
TRANSFORMER_PRESETS.update({
    'flux-schnell': dict(TRANSFORMER_PRESETS['flux-dev'], guidance_embeds=False),
    # the tiny layouts: each family's blocks and conditioning at a few channels
    'dit-tiny': dict(TRANSFORMER_PRESETS['dit-xl-2-256'], num_attention_heads=2, attention_head_dim=8, num_layers=28,
                     sample_size=8, num_embeds_ada_norm=10),
    'pixart-tiny': dict(TRANSFORMER_PRESETS['pixart-sigma-xl-2-1024'], num_attention_heads=2, attention_head_dim=8,
                        num_layers=4, cross_attention_dim=16, sample_size=8, caption_channels=32, interpolation_scale=1),
    'sd3-tiny': dict(TRANSFORMER_PRESETS['sd35-medium'], sample_size=8, num_layers=3, attention_head_dim=8,
                     num_attention_heads=2, joint_attention_dim=32, caption_projection_dim=16, pooled_projection_dim=16,
                     pos_embed_max_size=96, dual_attention_layers=(0, )),
    'sana-tiny': dict(TRANSFORMER_PRESETS['sana-1600m-1024'], num_attention_heads=2, attention_head_dim=8, num_layers=3,
                      num_cross_attention_heads=2, cross_attention_head_dim=8, cross_attention_dim=16,
                      caption_channels=32, sample_size=2),
    'flux-tiny': dict(TRANSFORMER_PRESETS['flux-dev'], num_layers=2, num_single_layers=2, attention_head_dim=16,
                      num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=8, axes_dims_rope=(4, 6, 6)),
})
# what each preset runs with beside it, as its pipeline pairs them: its VAE, as many text tokens as its pipeline's
# default prompt length (zero tokens stand in for a prompt embedding where no text encoder is at hand, as in
# tools/analysis_tools/benchmark.py) and FLUX.1-dev's default guidance
TRANSFORMER_COMPANIONS = {
    'dit-xl-2-256': dict(vae='sd'),
    'pixart-sigma-xl-2-1024': dict(vae='sdxl', context=dict(type='zero', num_tokens=300)),
    'sd35-medium': dict(vae='sd3', context=dict(type='zero', num_tokens=77 + 256)),
    'flux-dev': dict(vae='flux', context=dict(type='zero', num_tokens=512), guidance=3.5),
    'flux-schnell': dict(vae='flux', context=dict(type='zero', num_tokens=256)),
    'sana-1600m-1024': dict(vae='sana', context=dict(type='zero', num_tokens=300)),
    'dit-tiny': dict(vae='sd-tiny'),
    'pixart-tiny': dict(vae='sd-tiny', context=dict(type='zero', num_tokens=8)),
    'sd3-tiny': dict(vae='sd3-tiny', context=dict(type='zero', num_tokens=8)),
    'flux-tiny': dict(vae='flux-tiny', context=dict(type='zero', num_tokens=8), guidance=3.5),
    'sana-tiny': dict(vae='sana-tiny', context=dict(type='zero', num_tokens=8)),
}
