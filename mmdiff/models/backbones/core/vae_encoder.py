"""The encoding half of a diffusers autoencoder (``AutoencoderKL``, or Sana's ``AutoencoderDC``): images to the
latents a latent-diffusion model denoises."""
import os

from diffusers import AutoencoderDC, AutoencoderKL
from torch import Tensor, nn

from mmdiff.diffusers_compat import DCEncoderLayers, VAEEncoderLayers
from mmdiff.utils.choices import check_choice
from mmdiff.utils.model_check import constructor_defaults

VAE_PRESETS = {
    # Stable Diffusion 1.x / 2.x (stabilityai/sd-vae-ft-mse layout): 8x downsampling to 4 latent channels
    'sd':
    dict(
        in_channels=3,
        out_channels=3,
        down_block_types=('DownEncoderBlock2D', ) * 4,
        up_block_types=('UpDecoderBlock2D', ) * 4,
        block_out_channels=(128, 256, 512, 512),
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
        scaling_factor=0.18215),
}
# SDXL's (stabilityai/stable-diffusion-xl-base-1.0 vae/config.json): the same layout with its own scaling factor
VAE_PRESETS['sdxl'] = dict(VAE_PRESETS['sd'], sample_size=1024, scaling_factor=0.13025, force_upcast=True)
# SD3 / SD3.5's and FLUX.1's: 16 latent channels, no quant convolutions, their own shift and scale
VAE_PRESETS['sd3'] = dict(VAE_PRESETS['sd'], latent_channels=16, sample_size=1024, scaling_factor=1.5305,
                          shift_factor=0.0609, use_quant_conv=False, use_post_quant_conv=False)
VAE_PRESETS['flux'] = dict(VAE_PRESETS['sd3'], scaling_factor=0.3611, shift_factor=0.1159)
# the same 8x layout with a few channels, for tests and demos
VAE_PRESETS['sd-tiny'] = dict(
    VAE_PRESETS['sd'], block_out_channels=(8, 8, 16, 16), layers_per_block=1, norm_num_groups=4, sample_size=64)
VAE_PRESETS['sd3-tiny'] = dict(VAE_PRESETS['sd3'], block_out_channels=(8, 8, 16, 16), layers_per_block=1,
                               norm_num_groups=4, sample_size=64)
VAE_PRESETS['flux-tiny'] = dict(VAE_PRESETS['sd3-tiny'], scaling_factor=0.3611, shift_factor=0.1159)
# Sana's deep-compression autoencoder (mit-han-lab/dc-ae-f32c32-sana-1.0-diffusers, as diffusers'
# scripts/convert_dcae_to_diffusers.py writes it): 32x downsampling to 32 deterministic latent channels
VAE_PRESETS['sana'] = dict(
    type='AutoencoderDC',
    in_channels=3,
    latent_channels=32,
    attention_head_dim=32,
    encoder_block_types=('ResBlock', ) * 3 + ('EfficientViTBlock', ) * 3,
    decoder_block_types=('ResBlock', ) * 3 + ('EfficientViTBlock', ) * 3,
    encoder_block_out_channels=(128, 256, 512, 512, 1024, 1024),
    decoder_block_out_channels=(128, 256, 512, 512, 1024, 1024),
    encoder_layers_per_block=(2, 2, 2, 3, 3, 3),
    decoder_layers_per_block=(3, 3, 3, 3, 3, 3),
    encoder_qkv_multiscales=((), (), (), (5, ), (5, ), (5, )),
    decoder_qkv_multiscales=((), (), (), (5, ), (5, ), (5, )),
    upsample_block_type='interpolate',
    downsample_block_type='Conv',
    decoder_norm_types='rms_norm',
    decoder_act_fns='silu',
    scaling_factor=0.41407)
VAE_PRESETS['sana-tiny'] = dict(VAE_PRESETS['sana'], attention_head_dim=8,
                                encoder_block_out_channels=(8, 8, 16, 16, 32, 32),
                                decoder_block_out_channels=(8, 8, 16, 16, 32, 32),
                                encoder_layers_per_block=(1, ) * 6, decoder_layers_per_block=(1, ) * 6)
# the autoencoder classes a VAE config's type names (AutoencoderKL without one)
VAE_TYPES = {'AutoencoderKL': AutoencoderKL, 'AutoencoderDC': AutoencoderDC}
# each autoencoder's encoder layers, and their arguments: encoder argument -> the autoencoder's config key
ENCODER_LAYERS = {
    'AutoencoderKL': (VAEEncoderLayers, dict(
        in_channels='in_channels', out_channels='latent_channels', down_block_types='down_block_types',
        block_out_channels='block_out_channels', layers_per_block='layers_per_block', act_fn='act_fn',
        norm_num_groups='norm_num_groups', mid_block_add_attention='mid_block_add_attention')),
    'AutoencoderDC': (DCEncoderLayers, dict(
        in_channels='in_channels', latent_channels='latent_channels', attention_head_dim='attention_head_dim',
        block_type='encoder_block_types', block_out_channels='encoder_block_out_channels',
        layers_per_block='encoder_layers_per_block', qkv_multiscales='encoder_qkv_multiscales',
        downsample_block_type='downsample_block_type', out_shortcut='encoder_out_shortcut')),
}
ENCODER_PREFIXES = ('encoder.', 'quant_conv.')
# 'scaled': (mode - shift_factor) x scaling_factor, what the U-Net was trained on; 'unscaled': the raw posterior mode
VAE_LATENTS = ('scaled', 'unscaled')


def full_vae_config(config: dict) -> dict:
    """The autoencoder's configuration for these arguments, defaults and ``type`` included (nothing is built).

    Args:
        config (dict): Keyword arguments of the class ``type`` names (one of :data:`VAE_TYPES`; no type:
            ``AutoencoderKL``).
    """
    vae_type = config.get('type', 'AutoencoderKL')
    check_choice('vae type', vae_type, VAE_TYPES)
    return dict(constructor_defaults(VAE_TYPES[vae_type]), **dict(config, type=vae_type))


def vae_latent_stride(config: dict) -> int:
    """Image pixels per latent pixel of the autoencoder with these arguments: one halving per encoder level but the
    last (8 for Stable Diffusion's VAE, 32 for Sana's)."""
    config = full_vae_config(config)
    levels = config['encoder_block_out_channels' if config['type'] == 'AutoencoderDC' else 'block_out_channels']
    return 2**(len(levels) - 1)


class VAEEncoder(nn.Module):
    """An ``AutoencoderKL``'s encoder and ``quant_conv``, mapping images to posterior means (modes), or an
    ``AutoencoderDC``'s encoder (deterministic latents).

    The decoder is not kept, so extracting latent-diffusion features does not hold its weights.

    Args:
        config (dict): The autoencoder's keyword arguments (a diffusers ``vae/config.json``), with ``type``
            ``'AutoencoderDC'`` for Sana's (default ``'AutoencoderKL'``).
        latents (str): ``'scaled'``: ``(mode - shift_factor) * scaling_factor``, the latents the model was trained
            on; ``'unscaled'``: the raw mode, ``AutoencoderKL.encode(x).latent_dist.mode()`` (an
            ``AutoencoderDC``'s ``encode(x).latent``), as VPD feeds its U-Net. Defaults to ``'scaled'``.

    Example:
        >>> import torch
        >>> encoder = VAEEncoder(VAE_PRESETS['sd-tiny'])
        >>> encoder.latent_stride, encoder.latent_channels
        (8, 4)
        >>> tuple(encoder(torch.zeros(2, 3, 64, 48)).shape)
        (2, 4, 8, 6)
    """

    def __init__(self, config: dict, latents: str = 'scaled') -> None:
        super().__init__()
        check_choice('latents', latents, VAE_LATENTS)
        self.latents = latents
        self.config = config = full_vae_config(config)
        self.quant_conv = None
        layers, arguments = ENCODER_LAYERS[config['type']]
        self.encoder = layers(**{argument: config[key] for argument, key in arguments.items()},
                              **({} if config['type'] == 'AutoencoderDC' else dict(double_z=True)))
        if config['type'] == 'AutoencoderKL' and config['use_quant_conv']:
            self.quant_conv = nn.Conv2d(2 * config['latent_channels'], 2 * config['latent_channels'], 1)
        self.scaling_factor = config['scaling_factor']
        self.shift_factor = config.get('shift_factor') or 0.0

    @classmethod
    def from_folder(cls, folder: str, latents: str = 'scaled') -> 'VAEEncoder':
        """Build from a diffusers ``AutoencoderKL`` or ``AutoencoderDC`` folder, loaded by
        ``from_pretrained(local_files_only=True)``; the encoder and ``quant_conv`` are kept, the decoder is dropped."""
        if not os.path.isfile(os.path.join(folder, 'config.json')):
            raise FileNotFoundError(f'{folder!r} is not a diffusers VAE folder: it has no config.json')
        vae_type = AutoencoderKL.load_config(folder, local_files_only=True).get('_class_name', 'AutoencoderKL')
        check_choice(f'the autoencoder class of {folder!r}', vae_type, VAE_TYPES)
        vae = VAE_TYPES[vae_type].from_pretrained(folder, local_files_only=True, low_cpu_mem_usage=False)
        encoder = cls(dict(vae.config, type=vae_type), latents)
        encoder.load_state_dict({key: value for key, value in vae.state_dict().items()
                                 if key.startswith(ENCODER_PREFIXES)}, strict=True)
        return encoder

    @property
    def in_channels(self) -> int:
        return self.config['in_channels']

    @property
    def latent_channels(self) -> int:
        return self.config['latent_channels']

    @property
    def latent_stride(self) -> int:
        """Image pixels per latent pixel."""
        return vae_latent_stride(self.config)

    def forward(self, images: Tensor) -> Tensor:
        """Encode images ``(N, C, H, W)`` in [-1, 1] (H, W multiples of :attr:`latent_stride`).

        Returns:
            Tensor: ``(N, latent_channels, H / stride, W / stride)``: the posterior mean (its mode; an
            ``AutoencoderDC``'s latent), shifted and scaled as the model was trained on unless ``latents='unscaled'``.
        """
        moments = self.encoder(images)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        mean = moments if self.config['type'] == 'AutoencoderDC' else moments.chunk(2, dim=1)[0]
        if self.latents == 'unscaled':
            return mean
        return (mean - self.shift_factor) * self.scaling_factor
