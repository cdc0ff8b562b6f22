from .cached_feature_backbone import CachedFeatureBackbone
from .diffusion_unet import DiffusionUNetBackbone, declared_out_channels
from .feature_info import FeatureLevel
from .unet_configs import UNET_PRESETS, adm_unet_config
from .unet_taps import UNetTap, list_unet_taps

__all__ = [
    'CachedFeatureBackbone', 'DiffusionUNetBackbone', 'declared_out_channels', 'FeatureLevel', 'UNET_PRESETS',
    'adm_unet_config', 'UNetTap', 'list_unet_taps'
]
