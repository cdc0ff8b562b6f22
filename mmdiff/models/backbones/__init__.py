from .cached_feature_backbone import CachedFeatureBackbone
from .cross_attention_maps import transformer_with_maps
from .dif_feed_backbone import DifFeedBackbone, FeedbackAdapter, GatedFeedbackAdapter
from .declared_channels import declared_feature_info, declared_out_channels
from .diffusion_unet import DiffusionUNetBackbone
from .feature_info import FeatureLevel, declare_feature_info
from .latent_context import LatentContext
from .unet_configs import UNET_PRESETS, adm_unet_config, sd_unet_config
from .unet_pass import UNetPass
from .unet_taps import UNetTap, list_config_taps, list_unet_taps
from .vae_encoder import VAE_PRESETS, VAEEncoder

__all__ = [
    'CachedFeatureBackbone', 'DifFeedBackbone', 'FeedbackAdapter', 'GatedFeedbackAdapter',
    'DiffusionUNetBackbone', 'declared_feature_info', 'declared_out_channels', 'declare_feature_info',
    'FeatureLevel', 'LatentContext', 'UNET_PRESETS', 'adm_unet_config', 'sd_unet_config', 'UNetPass', 'UNetTap',
    'list_config_taps', 'list_unet_taps', 'VAE_PRESETS', 'VAEEncoder', 'transformer_with_maps'
]
