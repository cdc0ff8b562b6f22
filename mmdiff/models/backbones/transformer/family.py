"""The diffusion transformers (DiT, PixArt, SD3, FLUX) as a family of the core."""
from typing import List, Optional, Union

from torch import nn

from ..core.family import DiffusionFamily, ModelInputs, ModelSource
from ..core.taps import Tap
from .builder import FLOW_MATCHING_TYPES, build_transformer_model, resolve_transformer
from .taps import list_transformer_taps
from .transformer_pass import TransformerPass


class TransformerFamily(DiffusionFamily):
    """diffusers' ``DiTTransformer2DModel`` (class label, null class), ``PixArtTransformer2DModel`` (T5 context),
    ``SD3Transformer2DModel`` (joint attention, pooled projection, flow matching), ``FluxTransformer2DModel``
    (2x2-packed latents, rotary positions, distilled guidance, double- then single-stream blocks, flow matching) and
    ``SanaTransformer2DModel`` (linear attention, Gemma context, a 32x ``AutoencoderDC``, flow matching): every
    block a tap at the token stride, and :class:`TransformerPass` to the deepest one."""
    name = 'transformer'
    module_name = 'transformer'

    def resolve_model(self, arch: Union[str, dict, None], model_dir: Optional[str], for_build: bool) -> ModelSource:
        return resolve_transformer(arch, model_dir, for_build)

    def model_inputs(self, source: ModelSource) -> ModelInputs:
        config, kind = source.config, source.class_name
        if kind == 'DiTTransformer2DModel':  # labels 0 .. N - 1 and the null class N
            return ModelInputs(in_channels=config['in_channels'], latent=True,
                               num_classes=config['num_embeds_ada_norm'] + 1, null_class=config['num_embeds_ada_norm'])
        if kind == 'SanaTransformer2DModel' and config.get('guidance_embeds'):
            raise ValueError('this SanaTransformer2DModel embeds a guidance scale (guidance_embeds=True, as '
                             'Sana-Sprint); only Sana models without one are supported, e.g. arch=\'sana-1600m-1024\'')
        if kind in ('PixArtTransformer2DModel', 'SanaTransformer2DModel'):
            return ModelInputs(in_channels=config['in_channels'], latent=True,
                               cross_attention_dim=config['caption_channels'])
        return ModelInputs(in_channels=config['in_channels'] // (4 if kind == 'FluxTransformer2DModel' else 1),
                           latent=True, cross_attention_dim=config['joint_attention_dim'],
                           pooled_dim=config['pooled_projection_dim'], guided=bool(config.get('guidance_embeds')))

    def default_scheduler(self, source: ModelSource) -> Optional[dict]:
        """Flow matching for SD3, FLUX and Sana, DDPM's linear betas for DiT and PixArt."""
        return dict(type='FlowMatchEulerDiscreteScheduler') if source.class_name in FLOW_MATCHING_TYPES else None

    def list_taps(self, source: ModelSource, input_stride: int, context_tokens: Optional[int]) -> List[Tap]:
        return list_transformer_taps(source.class_name, source.config, input_stride, context_tokens)

    def build_model(self, source: ModelSource) -> nn.Module:
        return build_transformer_model(source)

    def model_pass(self, model: nn.Module, modulated: bool = False) -> TransformerPass:
        return TransformerPass(model, modulated)
