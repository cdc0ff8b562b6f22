"""diffusers ``UNet2DModel`` / ``UNet2DConditionModel`` configurations for the U-Net layouts mmdiff ships as presets.

The papers use OpenAI's guided-diffusion U-Net ("ADM", Dhariwal & Nichol 2021). :func:`adm_unet_config` writes its
flags as the keyword arguments of diffusers' ``UNet2DModel``, so diffusers builds the architecture and mmdiff never
restates block widths by hand.
"""
from typing import Optional, Sequence, Union

from mmdiff.diffusers_compat import NUM_TIME_IDS

ADM_BLOCK_TYPES = {
    # (has attention, resblock up/down) -> (down block type, up block type)
    (True, True): ('AttnDownBlock2D', 'AttnUpBlock2D'),
    (True, False): ('AttnDownBlock2D', 'AttnUpBlock2D'),
    (False, True): ('ResnetDownsampleBlock2D', 'ResnetUpsampleBlock2D'),
    (False, False): ('DownBlock2D', 'UpBlock2D'),
}


def adm_unet_config(image_size: int,
                    model_channels: int,
                    channel_mult: Sequence[int],
                    num_res_blocks: int,
                    attention_resolutions: Sequence[int],
                    num_head_channels: Optional[int] = 64,
                    num_heads: Optional[int] = None,
                    learn_sigma: bool = True,
                    resblock_updown: bool = True,
                    use_scale_shift_norm: bool = True,
                    in_channels: int = 3,
                    num_classes: Optional[int] = None,
                    dropout: float = 0.0,
                    norm_num_groups: int = 32) -> dict:
    """Translate guided-diffusion's ``create_model`` flags into ``UNet2DModel`` keyword arguments.

    Args:
        image_size (int): Training resolution; with ``attention_resolutions`` it decides which levels attend.
        model_channels (int): Width of the first level (``--num_channels``).
        channel_mult (Sequence[int]): Width multiplier per level; its length is the number of levels.
        num_res_blocks (int): Residual blocks per encoder level (the decoder has one more per level).
        attention_resolutions (Sequence[int]): Feature-map sizes (in pixels) whose levels have self-attention.
        num_head_channels (int, optional): Channels per attention head (``--num_head_channels``). Defaults to 64.
        num_heads (int, optional): Heads per attention layer (``--num_heads``), instead of ``num_head_channels``;
            every attention level must then have the same width, because diffusers' ``UNet2DModel`` has one
            head width for all levels. Defaults to None.
        learn_sigma (bool): Whether the model predicts the variance too (6 output channels). Defaults to True.
        resblock_updown (bool): Down/upsample with residual blocks instead of strided/plain convs. Defaults to True.
        use_scale_shift_norm (bool): FiLM-style time conditioning in residual blocks. Defaults to True.
        in_channels (int): Input channels. Defaults to 3.
        num_classes (int, optional): Number of classes of a class-conditional model. Defaults to None.
        dropout (float): Dropout in residual blocks. Defaults to 0.0.
        norm_num_groups (int): GroupNorm groups. Defaults to 32.

    Returns:
        dict: Keyword arguments for ``diffusers.UNet2DModel``.
    """
    num_levels = len(channel_mult)
    if num_levels == 0:
        raise ValueError('channel_mult must name at least one level, got an empty sequence')
    level_sizes = [image_size // 2**level for level in range(num_levels)]
    unknown = sorted(set(attention_resolutions) - set(level_sizes))
    if unknown:
        raise ValueError(f'attention_resolutions {unknown} match no level of a {image_size}px U-Net with '
                         f'{num_levels} levels; its level sizes are {level_sizes}')
    if channel_mult[0] != 1:
        raise ValueError(f'channel_mult {tuple(channel_mult)} starts with {channel_mult[0]}, not 1: guided-diffusion '
                         f'then embeds timesteps at model_channels={model_channels} but starts the U-Net at '
                         f'{channel_mult[0]} x {model_channels} channels, and diffusers\' UNet2DModel ties the '
                         f'timestep embedding to the first level\'s width, so it cannot express this model')
    if (num_head_channels is None) == (num_heads is None):
        raise ValueError(f'give exactly one of num_head_channels and num_heads, got num_head_channels='
                         f'{num_head_channels} and num_heads={num_heads}')
    attention_widths = sorted({model_channels * mult for size, mult in zip(level_sizes, channel_mult)
                               if size in attention_resolutions} | {model_channels * channel_mult[-1]})
    if num_heads is not None:
        if len(attention_widths) > 1:
            raise ValueError(f'num_heads={num_heads} gives head widths {[w // num_heads for w in attention_widths]}'
                             f' on attention levels of widths {attention_widths}; diffusers\' UNet2DModel has one '
                             f'head width for all levels, so this model cannot be expressed')
        num_head_channels = attention_widths[0] // num_heads
    indivisible = [width for width in attention_widths if width % num_head_channels]
    if indivisible:
        raise ValueError(f'attention widths {indivisible} are not multiples of num_head_channels={num_head_channels}')
    block_types = [ADM_BLOCK_TYPES[(size in attention_resolutions, resblock_updown)] for size in level_sizes]
    resample_type = 'resnet' if resblock_updown else 'conv'
    return dict(
        sample_size=image_size,
        in_channels=in_channels,
        out_channels=2 * in_channels if learn_sigma else in_channels,
        block_out_channels=tuple(model_channels * mult for mult in channel_mult),
        layers_per_block=num_res_blocks,
        down_block_types=tuple(down for down, _ in block_types),
        up_block_types=tuple(up for _, up in reversed(block_types)),
        downsample_type=resample_type,
        upsample_type=resample_type,
        attention_head_dim=num_head_channels,
        resnet_time_scale_shift='scale_shift' if use_scale_shift_norm else 'default',
        norm_num_groups=norm_num_groups,
        attn_norm_num_groups=norm_num_groups,  # else diffusers drops the middle attention's norm with scale-shift
        norm_eps=1e-5,
        flip_sin_to_cos=True,
        freq_shift=0,
        dropout=dropout,
        num_class_embeds=num_classes,
    )



def small_adm_config(image_size: int) -> dict:
    """The small four-level ADM layout that mmdiff's evidence runs pre-train on a CPU: 32-64 channels, two residual
    blocks per level, attention on the two middle levels (at image_size / 2 and / 4), noise prediction only.

    Args:
        image_size (int): Training resolution, a multiple of 8.

    Returns:
        dict: ``UNet2DModel`` keyword arguments, as :func:`adm_unet_config` returns them.
    """
    return adm_unet_config(
        image_size=image_size,
        model_channels=32,
        channel_mult=(1, 2, 2, 2),
        num_res_blocks=2,
        attention_resolutions=(image_size // 2, image_size // 4),
        num_head_channels=32,
        learn_sigma=False,
        norm_num_groups=16)


UNET_PRESETS = {
    # guided-diffusion ImageNet 256x256 unconditional, the model of the diffssl papers (552.8 M parameters)
    'adm-256u':
    adm_unet_config(
        image_size=256,
        model_channels=256,
        channel_mult=(1, 1, 2, 2, 4, 4),
        num_res_blocks=2,
        attention_resolutions=(32, 16, 8)),
    # the same six-level layout (37 diffssl blocks, strides 1-32) with a few channels, for tests and demos
    'adm-tiny':
    adm_unet_config(
        image_size=64,
        model_channels=16,
        channel_mult=(1, 1, 2, 2, 4, 4),
        num_res_blocks=2,
        attention_resolutions=(8, 4, 2),
        num_head_channels=8,
        norm_num_groups=8),
    # a small four-level layout for 16x16 images (strides 1-8, 25 diffssl blocks, 2.8 M parameters), noise
    # prediction only: what the digits evidence run pre-trains with DiffusionPretrainer on a CPU
    'adm-digits': small_adm_config(image_size=16),
    # the same layout for 32x32 images (attention at 16x16 and 8x8): what the CIFAR-10 evidence run pre-trains
    'adm-cifar32': small_adm_config(image_size=32),
    # guided-diffusion's class-conditional ImageNet 64x64 model, RepFusion's Tiny-ImageNet teacher scale
    'adm-64':
    adm_unet_config(
        image_size=64,
        model_channels=192,
        channel_mult=(1, 2, 3, 4),
        num_res_blocks=3,
        attention_resolutions=(32, 16, 8),
        num_classes=1000),
    # Ho et al.'s CIFAR-10 DDPM (diffusers' google/ddpm-cifar10-32 layout), RepFusion's CIFAR-10 teacher
    'ddpm-cifar10':
    dict(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        layers_per_block=2,
        block_out_channels=(128, 256, 256, 256),
        down_block_types=('DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D', 'DownBlock2D'),
        up_block_types=('UpBlock2D', 'UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'),
        attention_head_dim=None,
        norm_eps=1e-6,
        downsample_padding=0,
        flip_sin_to_cos=False,
        freq_shift=1),
}


def sd_unet_config(block_out_channels: Sequence[int], layers_per_block: int, cross_attention_dim: int,
                   attention_head_dim: Union[int, Sequence[int]], norm_num_groups: int = 32,
                   sample_size: int = 64) -> dict:
    """A Stable-Diffusion-1.x-style latent ``UNet2DConditionModel``: cross-attention on all levels but the last.

    Args:
        block_out_channels (Sequence[int]): Width per level.
        layers_per_block (int): Residual blocks per encoder level.
        cross_attention_dim (int): Width of the context tokens.
        attention_head_dim (int | Sequence[int]): Attention heads per layer, or per level (diffusers' historical
            name for SD 1.x's heads).
        norm_num_groups (int): GroupNorm groups. Defaults to 32.
        sample_size (int): Latent training resolution. Defaults to 64.

    Returns:
        dict: ``UNet2DConditionModel`` keyword arguments with ``type='UNet2DConditionModel'``.
    """
    num_levels = len(block_out_channels)
    return dict(
        type='UNet2DConditionModel',
        sample_size=sample_size,
        in_channels=4,
        out_channels=4,
        down_block_types=('CrossAttnDownBlock2D', ) * (num_levels - 1) + ('DownBlock2D', ),
        up_block_types=('UpBlock2D', ) + ('CrossAttnUpBlock2D', ) * (num_levels - 1),
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=attention_head_dim,
        norm_num_groups=norm_num_groups,
    )


UNET_PRESETS.update({
    # Stable Diffusion 1.5's U-Net (runwayml/stable-diffusion-v1-5 unet/config.json); pair with vae='sd'
    'sd15':
    sd_unet_config(block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
                   attention_head_dim=8),
    # the same four-level layout (image strides 8-64 behind the 8x VAE) with a few channels; pair with 'sd-tiny'
    'sd-tiny':
    sd_unet_config(block_out_channels=(16, 32, 64, 64), layers_per_block=1, cross_attention_dim=32,
                   attention_head_dim=2, norm_num_groups=8, sample_size=8),
})


def sdxl_unet_config(block_out_channels: Sequence[int], layers_per_block: int,
                     transformer_layers_per_block: Sequence[int], attention_head_dim: Sequence[int],
                     cross_attention_dim: int, addition_time_embed_dim: int, pooled_dim: int,
                     norm_num_groups: int = 32, sample_size: int = 128) -> dict:
    """An SDXL-style latent ``UNet2DConditionModel``: no attention on the first level, several transformer blocks
    per attention layer, linear projections, and the added ``text_time`` conditioning (a pooled text embedding and
    six time ids, each embedded at ``addition_time_embed_dim``).

    Args:
        block_out_channels (Sequence[int]): Width per level.
        layers_per_block (int): Residual blocks per encoder level.
        transformer_layers_per_block (Sequence[int]): Transformer blocks per attention layer, per level (the
            first level has none, its entry is unused but kept as SDXL's config has it).
        attention_head_dim (Sequence[int]): Attention heads per level (diffusers' historical name).
        cross_attention_dim (int): Width of the context tokens (SDXL: both text encoders' 768 + 1280).
        addition_time_embed_dim (int): Width of each time id's sinusoidal embedding.
        pooled_dim (int): Width of the pooled text embedding (SDXL: the second text encoder's projection, 1280).
        norm_num_groups (int): GroupNorm groups. Defaults to 32.
        sample_size (int): Latent training resolution. Defaults to 128.

    Returns:
        dict: ``UNet2DConditionModel`` keyword arguments with ``type='UNet2DConditionModel'``.
    """
    num_levels = len(block_out_channels)
    return dict(
        sd_unet_config(block_out_channels, layers_per_block, cross_attention_dim, attention_head_dim, norm_num_groups,
                       sample_size),
        down_block_types=('DownBlock2D', ) + ('CrossAttnDownBlock2D', ) * (num_levels - 1),
        up_block_types=('CrossAttnUpBlock2D', ) * (num_levels - 1) + ('UpBlock2D', ),
        transformer_layers_per_block=tuple(transformer_layers_per_block),
        attention_head_dim=tuple(attention_head_dim),
        use_linear_projection=True,
        addition_embed_type='text_time',
        addition_time_embed_dim=addition_time_embed_dim,
        projection_class_embeddings_input_dim=pooled_dim + NUM_TIME_IDS * addition_time_embed_dim,
        upcast_attention=None,
    )


UNET_PRESETS.update({
    # SDXL-base-1.0's U-Net (stabilityai/stable-diffusion-xl-base-1.0 unet/config.json, 2.6 B parameters); pair
    # with vae='sdxl' and a context file holding the prompt and pooled embeddings
    # (tools/model_converters/make_prompt_embedding.py)
    'sdxl-base':
    sdxl_unet_config(block_out_channels=(320, 640, 1280), layers_per_block=2, transformer_layers_per_block=(1, 2, 10),
                     attention_head_dim=(5, 10, 20), cross_attention_dim=2048, addition_time_embed_dim=256,
                     pooled_dim=1280),
    # the same three-level layout (image strides 8-32 behind the 8x VAE) with a few channels; pair with 'sd-tiny'
    'sdxl-tiny':
    sdxl_unet_config(block_out_channels=(16, 32, 64), layers_per_block=2, transformer_layers_per_block=(1, 1, 2),
                     attention_head_dim=(2, 2, 4), cross_attention_dim=32, addition_time_embed_dim=8, pooled_dim=16,
                     norm_num_groups=8, sample_size=16),
})
