"""The U-Net families (guided-diffusion ADM, DDPM, Stable Diffusion 1.x / 2.x / XL) as a family of the core."""
from typing import List, Optional, Union

from torch import nn

from mmdiff.diffusers_compat import NUM_TIME_IDS
from ..core.family import DiffusionFamily, ModelInputs, ModelSource
from ..core.taps import Tap
from .builder import build_unet_model, resolve_unet
from .taps import list_config_taps
from .unet_pass import UNetPass


class UNetFamily(DiffusionFamily):
    """diffusers' ``UNet2DModel`` and ``UNet2DConditionModel``: taps at every block (with the diffssl numbering),
    VPD's cross-attention maps, SDXL's added conditioning, and :class:`UNetPass` to the last tap."""
    name = 'U-Net'
    module_name = 'unet'

    def resolve_model(self, arch: Union[str, dict, None], model_dir: Optional[str], for_build: bool) -> ModelSource:
        return resolve_unet(arch, model_dir, for_build)

    def model_inputs(self, source: ModelSource) -> ModelInputs:
        config = source.config
        conditional = source.class_name == 'UNet2DConditionModel'
        pooled_dim = None
        if conditional and config['addition_embed_type'] == 'text_time':
            pooled_dim = config['projection_class_embeddings_input_dim'] - NUM_TIME_IDS * config[
                'addition_time_embed_dim']
        return ModelInputs(in_channels=config['in_channels'], latent=conditional,
                           cross_attention_dim=config['cross_attention_dim'] if conditional else None,
                           pooled_dim=pooled_dim, num_classes=config['num_class_embeds'])

    def list_taps(self, source: ModelSource, input_stride: int, context_tokens: Optional[int]) -> List[Tap]:
        return list_config_taps(source.config, source.class_name, input_stride, context_tokens)

    def build_model(self, source: ModelSource) -> nn.Module:
        return build_unet_model(source)

    def model_pass(self, model: nn.Module) -> UNetPass:
        return UNetPass(model)
