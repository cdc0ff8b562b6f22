"""Diffusion backbones: the shared core, the U-Net and transformer families on it, DifFeed and cached features."""
from mmdiff.feature_cache.backbone import CachedFeatureBackbone
from .core import (VAE_PRESETS, BackboneSpec, DiffusionBackbone, DiffusionFamily, FeatureLevel, LatentContext, Tap,
                   VAEEncoder, declare_feature_info, declared_feature_info, declared_out_channels, resolve_spec)
from .dif_feed_backbone import DifFeedBackbone, FeedbackAdapter, GatedFeedbackAdapter
from .diffusion_transformer import DiffusionTransformerBackbone
from .diffusion_unet import DiffusionUNetBackbone
from .transformer import TRANSFORMER_PRESETS, TransformerFamily, TransformerPass
from .unet import UNET_PRESETS, UNetFamily, UNetPass, adm_unet_config, list_config_taps, list_unet_taps, sd_unet_config

__all__ = [
    'CachedFeatureBackbone', 'DifFeedBackbone', 'FeedbackAdapter', 'GatedFeedbackAdapter', 'DiffusionBackbone',
    'DiffusionFamily', 'DiffusionUNetBackbone', 'UNetFamily', 'DiffusionTransformerBackbone', 'TransformerFamily',
    'TransformerPass', 'TRANSFORMER_PRESETS', 'BackboneSpec', 'resolve_spec', 'declared_feature_info',
    'declared_out_channels', 'declare_feature_info', 'FeatureLevel', 'Tap', 'LatentContext', 'UNET_PRESETS',
    'adm_unet_config', 'sd_unet_config', 'UNetPass', 'list_config_taps', 'list_unet_taps', 'VAE_PRESETS', 'VAEEncoder'
]
