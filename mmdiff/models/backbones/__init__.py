from .diffusion_unet import DiffusionUNetBackbone
from .feature_info import FeatureLevel
from .unet_configs import UNET_PRESETS, adm_unet_config
from .unet_taps import UNetTap, list_unet_taps

__all__ = ['DiffusionUNetBackbone', 'FeatureLevel', 'UNET_PRESETS', 'adm_unet_config', 'UNetTap', 'list_unet_taps']
