"""The outputs a backbone config declares, from configuration files alone: for tools and tests that check a neck's
or head's literal ``in_channels`` without building a module or reading a weight (:func:`resolve_spec`)."""
from typing import List, Tuple

from mmdiff.registry import MODELS
from mmdiff.utils.model_check import accepted_arguments, constructor_defaults
from .diffusion_backbone import DiffusionBackbone
from .feature_info import FeatureLevel
from .spec import resolve_spec


def backbone_arguments(backbone: dict) -> Tuple[type, dict]:
    """A backbone config's class and its full arguments: the config's, then each class's defaults from the most
    derived one up (so a subclass's default wins over its base's)."""
    backbone_class = MODELS.get(backbone.get('type', 'DiffusionUNetBackbone'))
    if not (isinstance(backbone_class, type) and issubclass(backbone_class, DiffusionBackbone)
            and getattr(backbone_class, 'family', None) is not None):
        raise ValueError(f'declared_feature_info reads configs of a registered diffusion backbone: '
                         f'DiffusionTransformerBackbone, or DiffusionUNetBackbone or a subclass, got '
                         f'type={backbone.get("type")!r}')
    unknown = sorted(set(backbone) - {'type'} - accepted_arguments(backbone_class))
    if unknown:
        raise TypeError(f'{backbone_class.__name__} takes no arguments {unknown}; it takes '
                        f'{sorted(accepted_arguments(backbone_class))}')
    arguments = {}
    for klass in reversed(backbone_class.__mro__):
        if '__init__' in vars(klass) and issubclass(klass, DiffusionBackbone):
            arguments.update(constructor_defaults(klass))
    arguments.update((key, value) for key, value in backbone.items() if key != 'type')
    return backbone_class, arguments


def declared_feature_info(backbone: dict) -> Tuple[FeatureLevel, ...]:
    """The ``feature_info`` a backbone config will have, from configuration files alone (:func:`resolve_spec`).

    Nothing is built and no weight is read. A ``model_dir`` that exists contributes its configuration files (the
    model's, ``vae/``'s and ``scheduler/``'s); one that does not is described by ``arch``, ``vae`` and
    ``noise_scheduler``. A VAE multiplies every stride by its latent stride; cross-attention maps add one channel per
    context token (``num_tokens``, or the count the context file holds).

    Args:
        backbone (dict): The backbone config, ``dict(type='mmdiff.DiffusionUNetBackbone', ...)`` (or another
            registered :class:`DiffusionBackbone`; no type means ``DiffusionUNetBackbone``).

    Returns:
        tuple[FeatureLevel, ...]: One record per output, in output order.
    """
    backbone_class, args = backbone_arguments(backbone)
    return resolve_spec(backbone_class.family, args['arch'], args['model_dir'], args['vae'], args['vae_latents'],
                        args['context'], args['noise_scheduler'], args['timesteps'], args['out_strides'],
                        args['out_blocks'], args['attention_maps'], args['resample_missing_strides'],
                        args['projection_channels'], args['timestep_fusion'], args['class_label'],
                        args['pyramid'], for_build=False).feature_info


def declared_out_channels(backbone: dict) -> List[int]:
    """The channels a backbone config will output, for a neck's ``in_channels``: those of
    :func:`declared_feature_info`.

    Args:
        backbone (dict): The backbone config (see :func:`declared_feature_info`).

    Returns:
        list[int]: Channels per output, in output order.
    """
    return [level.channels for level in declared_feature_info(backbone)]
