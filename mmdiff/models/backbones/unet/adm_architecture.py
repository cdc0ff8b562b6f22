"""The architecture of an OpenAI guided-diffusion ("ADM") U-Net: read from its weights, checked against the
released checkpoints' flags, and turned into ``UNet2DModel`` keyword arguments (:func:`adm_unet_config`)."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from torch import Tensor

from .presets import adm_unet_config

REQUIRED_ADM_KEYS = ('time_embed.0.weight', 'input_blocks.0.0.weight', 'out.2.weight')

_ADM_COMMON = dict(attention_resolutions=(32, 16, 8), learn_sigma=True, resblock_updown=True,
                   use_scale_shift_norm=True, use_new_attention_order=False, diffusion_steps=1000,
                   noise_schedule='linear')
# the MODEL_FLAGS of the released checkpoints, from guided-diffusion's README (channel_mult from script_util.py)
GUIDED_DIFFUSION_MODELS = {
    '64x64_diffusion': dict(_ADM_COMMON, image_size=64, num_channels=192, channel_mult=(1, 2, 3, 4),
                            num_res_blocks=3, num_head_channels=64, class_cond=True, use_new_attention_order=True,
                            noise_schedule='cosine'),
    '128x128_diffusion': dict(_ADM_COMMON, image_size=128, num_channels=256, channel_mult=(1, 1, 2, 3, 4),
                              num_res_blocks=2, num_heads=4, class_cond=True),
    '256x256_diffusion': dict(_ADM_COMMON, image_size=256, num_channels=256, channel_mult=(1, 1, 2, 2, 4, 4),
                              num_res_blocks=2, num_head_channels=64, class_cond=True),
    '256x256_diffusion_uncond': dict(_ADM_COMMON, image_size=256, num_channels=256,
                                     channel_mult=(1, 1, 2, 2, 4, 4), num_res_blocks=2, num_head_channels=64,
                                     class_cond=False),
    '512x512_diffusion': dict(_ADM_COMMON, image_size=512, num_channels=256, channel_mult=(0.5, 1, 1, 2, 2, 4, 4),
                              num_res_blocks=2, num_head_channels=64, class_cond=True),
}


@dataclass(frozen=True)
class AdmArchitecture:
    """The architecture of an ADM U-Net as far as its weights record it.

    Args:
        in_channels (int): Image channels.
        out_channels (int): Output channels (twice ``in_channels`` with a learned variance).
        model_channels (int): Width of the first level (``--num_channels``).
        channel_mult (tuple[int, ...]): Width multiplier per level.
        num_res_blocks (int): Residual blocks per encoder level.
        attention_levels (tuple[bool, ...]): Per level, whether it has self-attention.
        resblock_updown (bool): Whether residual blocks resample (else strided / nearest-upsample convolutions).
        use_scale_shift_norm (bool): FiLM-style time conditioning.
        num_classes (int, optional): Classes of a class-conditional model.
    """
    in_channels: int
    out_channels: int
    model_channels: int
    channel_mult: Tuple[int, ...]
    num_res_blocks: int
    attention_levels: Tuple[bool, ...]
    resblock_updown: bool
    use_scale_shift_norm: bool
    num_classes: Optional[int]

    @property
    def learn_sigma(self) -> bool:
        return self.out_channels == 2 * self.in_channels

    def attention_resolutions(self, image_size: int) -> Tuple[int, ...]:
        """The ``--attention_resolutions`` flag (feature-map sizes in pixels) for a model of ``image_size``."""
        return tuple(image_size // 2**level for level, attends in enumerate(self.attention_levels) if attends)

    def unet_config(self, image_size: int, num_head_channels: Optional[int] = None,
                    num_heads: Optional[int] = None) -> dict:
        """``UNet2DModel`` keyword arguments for this architecture (heads are not recorded in the weights)."""
        return adm_unet_config(
            image_size=image_size,
            model_channels=self.model_channels,
            channel_mult=self.channel_mult,
            num_res_blocks=self.num_res_blocks,
            attention_resolutions=self.attention_resolutions(image_size),
            num_head_channels=num_head_channels,
            num_heads=num_heads,
            learn_sigma=self.learn_sigma,
            resblock_updown=self.resblock_updown,
            use_scale_shift_norm=self.use_scale_shift_norm,
            in_channels=self.in_channels,
            num_classes=self.num_classes)


def check_adm_flags(arch: AdmArchitecture, flags: dict) -> None:
    """Fail when guided-diffusion flags contradict what the weights record.

    Args:
        arch (AdmArchitecture): The architecture read from the weights.
        flags (dict): guided-diffusion flags by their names (``num_channels``, ``channel_mult``,
            ``num_res_blocks``, ``attention_resolutions`` with ``image_size``, ``learn_sigma``, ``class_cond``,
            ``use_scale_shift_norm``, ``resblock_updown``); flags the weights cannot show are not checked.

    Raises:
        ValueError: Listing every contradicting flag with its value and the value in the weights.
    """
    recorded = dict(
        num_channels=arch.model_channels,
        channel_mult=tuple(arch.channel_mult),
        num_res_blocks=arch.num_res_blocks,
        learn_sigma=arch.learn_sigma,
        class_cond=arch.num_classes is not None,
        use_scale_shift_norm=arch.use_scale_shift_norm,
        resblock_updown=arch.resblock_updown)
    if flags.get('image_size') is not None:
        recorded['attention_resolutions'] = tuple(sorted(arch.attention_resolutions(flags['image_size'])))
    given = {key: tuple(sorted(value)) if key == 'attention_resolutions' else
             tuple(value) if isinstance(value, (list, tuple)) else value
             for key, value in flags.items() if key in recorded and value is not None}
    contradictions = {key: (value, recorded[key]) for key, value in given.items() if value != recorded[key]}
    if contradictions:
        raise ValueError('the flags contradict the weights (flag value, value in the weights): ' + ', '.join(
            f'{key}: {flag!r} vs {weights!r}' for key, (flag, weights) in contradictions.items()))


def _describe(state_dict: object) -> str:
    if not isinstance(state_dict, dict):
        return f'a {type(state_dict).__name__}'
    keys = list(state_dict)
    return f'a dict with {len(keys)} keys, starting {keys[:6]}'


def _block_indices(state_dict: Dict[str, Tensor], prefix: str) -> List[int]:
    return sorted({int(key.split('.')[1]) for key in state_dict if key.startswith(prefix + '.')})


def infer_adm_architecture(state_dict: Dict[str, Tensor]) -> AdmArchitecture:
    """Read an ADM U-Net's architecture from its state dict.

    Args:
        state_dict (dict[str, Tensor]): A guided-diffusion ``UNetModel`` state dict.

    Returns:
        AdmArchitecture: Everything but the attention heads and the training resolution, which the weights do
        not record.

    Raises:
        ValueError: When the dict is not an ADM U-Net state dict; the message says what was found.
    """
    if not isinstance(state_dict, dict) or not all(key in state_dict for key in REQUIRED_ADM_KEYS):
        raise ValueError(f'not a guided-diffusion (ADM) UNetModel state dict: expected keys {list(REQUIRED_ADM_KEYS)}'
                         f', found {_describe(state_dict)}')
    model_channels = state_dict['time_embed.0.weight'].shape[1]
    in_channels = state_dict['input_blocks.0.0.weight'].shape[1]
    out_channels = state_dict['out.2.weight'].shape[0]
    outputs = _block_indices(state_dict, 'output_blocks')

    # the last output block of every level but the first ends with an upsampler, after the resblock (and attention)
    def has_upsampler(i: int) -> bool:
        return any(f'output_blocks.{i}.{j}.{name}' in state_dict for j in (1, 2)
                   for name in ('in_layers.0.weight', 'conv.weight'))

    upsampler_blocks = [i for i in outputs if has_upsampler(i)]
    blocks_per_level = upsampler_blocks[0] + 1 if upsampler_blocks else len(outputs)
    num_levels = len(outputs) // blocks_per_level
    widths, attention_levels = [], []
    for up_index in range(num_levels):
        first = up_index * blocks_per_level
        widths.append(state_dict[f'output_blocks.{first}.0.out_layers.3.weight'].shape[0])
        attention_levels.append(f'output_blocks.{first}.1.qkv.weight' in state_dict)
    widths.reverse()
    attention_levels.reverse()
    if any(width % model_channels for width in widths):
        raise ValueError(f'level widths {widths} are not multiples of model_channels={model_channels}; fractional '
                         f'channel_mult values are not supported')
    resblock_updown = any(f'output_blocks.{i}.{j}.in_layers.0.weight' in state_dict for i in upsampler_blocks
                          for j in (1, 2))
    emb_rows = state_dict['input_blocks.1.0.emb_layers.1.weight'].shape[0]
    label_emb = state_dict.get('label_emb.weight')
    return AdmArchitecture(
        in_channels=in_channels,
        out_channels=out_channels,
        model_channels=model_channels,
        channel_mult=tuple(width // model_channels for width in widths),
        num_res_blocks=blocks_per_level - 1,
        attention_levels=tuple(attention_levels),
        resblock_updown=resblock_updown,
        use_scale_shift_norm=emb_rows == 2 * widths[0],
        num_classes=None if label_emb is None else label_emb.shape[0])
