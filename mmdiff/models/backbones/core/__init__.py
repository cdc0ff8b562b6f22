"""The core every diffusion backbone shares, whatever its model family (see ``family.py`` for the seam)."""
from .declared import declared_feature_info, declared_out_channels
from .diffusion_backbone import DiffusionBackbone
from .family import DiffusionFamily, ModelInputs, ModelSource
from .feature_info import declare_feature_info
from .latent_context import LatentContext
from .noising import FixedNoise
from .pyramid import FeatureLevel
from .spec import BackboneSpec, resolve_spec
from .taps import Tap
from .vae_encoder import VAE_PRESETS, VAEEncoder

__all__ = [
    'declared_feature_info', 'declared_out_channels', 'DiffusionBackbone', 'DiffusionFamily', 'ModelInputs',
    'ModelSource', 'declare_feature_info', 'LatentContext', 'FixedNoise', 'FeatureLevel', 'BackboneSpec',
    'resolve_spec', 'Tap', 'VAE_PRESETS', 'VAEEncoder'
]
