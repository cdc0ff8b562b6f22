"""The U-Net family: presets, taps, the pass to them, and guided-diffusion's layout and checkpoints."""
from .builder import UNET_TYPES, build_unet, resolve_unet
from .family import UNetFamily
from .presets import UNET_PRESETS, adm_unet_config, sd_unet_config
from .taps import list_config_taps, list_unet_taps, mirror_encoder_tap
from .unet_pass import UNetPass

__all__ = [
    'UNET_TYPES', 'build_unet', 'resolve_unet', 'UNetFamily', 'UNET_PRESETS', 'adm_unet_config', 'sd_unet_config',
    'list_config_taps', 'list_unet_taps', 'mirror_encoder_tap', 'UNetPass'
]
