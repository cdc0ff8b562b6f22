"""The encoder halves of diffusers' autoencoders, which diffusers does not export at its top level: an
``AutoencoderKL``'s (Stable Diffusion, SDXL, SD3, FLUX) and an ``AutoencoderDC``'s (Sana's deep-compression VAE)."""
import diffusers

from .version import version_message

try:  # a release that moved these cannot be driven: say so with both versions, not with a bare ImportError
    from diffusers.models.autoencoders.autoencoder_dc import Encoder as DCEncoderLayers
    from diffusers.models.autoencoders.vae import Encoder as VAEEncoderLayers
except ImportError as error:
    raise ImportError(version_message(diffusers.__version__)) from error

__all__ = ['DCEncoderLayers', 'VAEEncoderLayers']
