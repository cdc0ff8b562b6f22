"""The encoding half of a diffusers ``AutoencoderKL``: images to the latents a latent-diffusion U-Net denoises."""
import os

from diffusers import AutoencoderKL
from torch import Tensor, nn

from mmdiff.diffusers_compat import VAEEncoderLayers
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
ENCODER_PREFIXES = ('encoder.', 'quant_conv.')
# 'scaled': (mode - shift_factor) x scaling_factor, what the U-Net was trained on; 'unscaled': the raw posterior mode
VAE_LATENTS = ('scaled', 'unscaled')


def full_vae_config(config: dict) -> dict:
    """``AutoencoderKL``'s configuration for these arguments, defaults included (nothing is built)."""
    return dict(constructor_defaults(AutoencoderKL), **config)


def vae_latent_stride(config: dict) -> int:
    """Image pixels per latent pixel of the ``AutoencoderKL`` with these arguments: one halving per level but the
    last (8 for Stable Diffusion's VAE)."""
    return 2**(len(full_vae_config(config)['block_out_channels']) - 1)


class VAEEncoder(nn.Module):
    """An ``AutoencoderKL``'s encoder and ``quant_conv``, mapping images to posterior means (modes).

    The decoder is not kept, so extracting latent-diffusion features does not hold its weights.

    Args:
        config (dict): ``AutoencoderKL`` keyword arguments (a diffusers ``vae/config.json``).
        latents (str): ``'scaled'``: ``(mode - shift_factor) * scaling_factor``, the latents the U-Net was trained
            on; ``'unscaled'``: the raw mode, ``AutoencoderKL.encode(x).latent_dist.mode()``, as VPD feeds its
            U-Net. Defaults to ``'scaled'``.

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
        self.config = full_vae_config(config)
        self.encoder = VAEEncoderLayers(
            in_channels=self.config['in_channels'],
            out_channels=self.config['latent_channels'],
            down_block_types=self.config['down_block_types'],
            block_out_channels=self.config['block_out_channels'],
            layers_per_block=self.config['layers_per_block'],
            act_fn=self.config['act_fn'],
            norm_num_groups=self.config['norm_num_groups'],
            double_z=True,
            mid_block_add_attention=self.config['mid_block_add_attention'])
        channels = 2 * self.config['latent_channels']
        self.quant_conv = nn.Conv2d(channels, channels, 1) if self.config['use_quant_conv'] else None
        self.scaling_factor = self.config['scaling_factor']
        self.shift_factor = self.config['shift_factor'] or 0.0

    @classmethod
    def from_folder(cls, folder: str, latents: str = 'scaled') -> 'VAEEncoder':
        """Build from a diffusers ``AutoencoderKL`` folder, loaded by ``from_pretrained(local_files_only=True)``; the
        encoder and ``quant_conv`` are kept, the decoder is dropped."""
        if not os.path.isfile(os.path.join(folder, 'config.json')):
            raise FileNotFoundError(f'{folder!r} is not a diffusers VAE folder: it has no config.json')
        vae = AutoencoderKL.from_pretrained(folder, local_files_only=True, low_cpu_mem_usage=False)
        encoder = cls(dict(vae.config), latents)
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
            Tensor: ``(N, latent_channels, H / stride, W / stride)``: the posterior mean (its mode), shifted and
            scaled as the U-Net was trained on unless ``latents='unscaled'``.
        """
        moments = self.encoder(images)
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        mean = moments.chunk(2, dim=1)[0]
        if self.latents == 'unscaled':
            return mean
        return (mean - self.shift_factor) * self.scaling_factor
