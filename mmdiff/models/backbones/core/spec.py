"""One backbone config resolved once: the description the constructor builds from and the declared channels read.

:func:`resolve_spec` turns a backbone's arguments (arch preset or dict, ``model_dir``, VAE, conditioning, scheduler,
timesteps and taps) into a :class:`BackboneSpec` from configuration files alone: no module is built and no weight
is read. :class:`~mmdiff.models.backbones.core.diffusion_backbone.DiffusionBackbone` builds its parts from it, and
:func:`~mmdiff.models.backbones.core.declared.declared_feature_info` returns its ``feature_info`` for tools and tests
that check a neck's or head's literal ``in_channels``.
"""
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

from mmdiff.utils.choices import check_choice
from .backbone_inputs import check_class_label, check_timesteps
from .family import DiffusionFamily, ModelInputs, ModelSource
from .feature_info import FeatureLevel, declare_feature_info
from .latent_context import CONTEXT_TYPES, DEFAULT_NUM_TOKENS, load_conditioning_file
from .sources import SchedulerSource, VAESource, resolve_scheduler, resolve_vae
from .taps import Tap
from .vae_encoder import VAE_LATENTS


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone config describes, resolved without building anything.

    Args:
        family (DiffusionFamily): The model family.
        model (ModelSource): The denoising model.
        inputs (ModelInputs): What it takes beside the noised sample.
        vae (VAESource, optional): The VAE of a latent model; None for a pixel model.
        context (dict, optional): :class:`~mmdiff.models.backbones.core.latent_context.LatentContext` arguments
            (``dim`` and ``pooled_dim`` filled in); None for a model without cross-attention.
        scheduler (SchedulerSource): The noise schedule.
        timesteps (tuple[int, ...]): The noise steps.
        class_label (int, optional): The label a class-conditional model runs with when a call gives none.
        taps (tuple[Tap, ...]): Every tap of the model, in forward order.
        feature_info (tuple[FeatureLevel, ...]): The outputs, in output order.
    """
    family: DiffusionFamily
    model: ModelSource
    inputs: ModelInputs
    vae: Optional[VAESource]
    context: Optional[dict]
    scheduler: SchedulerSource
    timesteps: Tuple[int, ...]
    class_label: Optional[int]
    taps: Tuple[Tap, ...]
    feature_info: Tuple[FeatureLevel, ...]

    @property
    def input_stride(self) -> int:
        """Image pixels per model input pixel: the VAE's latent stride, else 1."""
        return 1 if self.vae is None else self.vae.latent_stride

    @property
    def in_channels(self) -> int:
        """Channels of the images: the VAE's input, else the model's."""
        return self.inputs.in_channels if self.vae is None else self.vae.config['in_channels']

    @property
    def downsample_factor(self) -> int:
        """The largest tap stride: inputs are padded to a multiple of it, so skip connections line up."""
        return max(tap.stride for tap in self.taps)


def _check_vae(vae: Optional[VAESource], latents: str, model: ModelSource, inputs: ModelInputs, family: str,
               model_dir: Optional[str]) -> None:
    check_choice('vae_latents', latents, VAE_LATENTS)
    if vae is None:
        if inputs.latent and model_dir is not None:
            raise FileNotFoundError(f'{model_dir!r} holds a latent-diffusion {family} ({model.class_name}) but no '
                                    f'vae/ folder with the autoencoder that makes its latents; add vae/ (only its '
                                    f'encoder is kept) or give vae=')
        if latents != 'scaled':
            raise ValueError(f'vae_latents={latents!r} chooses how VAE latents are scaled, but this {family} runs on '
                             f'pixels (no vae)')
    elif vae.config['latent_channels'] != inputs.in_channels:
        raise ValueError(f'the VAE makes {vae.config["latent_channels"]}-channel latents, but the {family} takes '
                         f'{inputs.in_channels} input channels')


def _context(context: Optional[dict], inputs: ModelInputs, family: str, model: ModelSource) -> Optional[dict]:
    """The :class:`LatentContext` arguments of a model with cross-attention; None for one without."""
    dim = inputs.cross_attention_dim
    if dim is None:
        if context is not None:
            raise ValueError(f'context={context!r} was given, but the {family} ({model.class_name}) has no '
                             f'cross-attention')
        return None
    if not isinstance(context, dict):
        raise ValueError(f'the {family} cross-attends to a {dim}-dimensional context: give context=dict(type=...) '
                         f'with type one of {list(CONTEXT_TYPES)}, got {context!r}')
    return dict(context, dim=dim, pooled_dim=inputs.pooled_dim, described=family)


def _context_tokens(context: Optional[dict], must_exist: bool, needed: bool) -> Optional[int]:
    """Tokens of a context: its ``num_tokens``, else its file's, else (no file) the default; None without a context,
    or when the file is not written yet and neither building nor any channel needs the count."""
    if context is None:
        return None
    if context.get('num_tokens') is not None:
        return context['num_tokens']
    path = context.get('path')
    if path is None:
        return DEFAULT_NUM_TOKENS
    if os.path.isfile(path) or must_exist:
        return load_conditioning_file(path)[0].shape[0]
    if needed:
        raise ValueError(f'the cross-attention maps add one channel per context token, but the context file '
                         f'{path!r} does not exist and the context gives no num_tokens')
    return None


def resolve_spec(family: DiffusionFamily,
                 arch: Union[str, dict, None],
                 model_dir: Optional[str],
                 vae: Union[str, dict, None],
                 vae_latents: str,
                 context: Optional[dict],
                 noise_scheduler: Optional[dict],
                 timesteps: Union[int, Sequence[int]],
                 out_strides: Optional[Sequence[int]],
                 out_blocks: Optional[Sequence[Union[str, int]]],
                 attention_maps: Optional[Sequence[int]],
                 resample_missing_strides: bool,
                 projection_channels: Optional[Sequence[int]],
                 timestep_fusion: str,
                 class_label: Optional[int] = None,
                 pyramid: str = 'resample',
                 for_build: bool = True) -> BackboneSpec:
    """Resolve a backbone's arguments (those of :class:`DiffusionBackbone` of the same names) into its spec.

    Args:
        family (DiffusionFamily): The model family.
        for_build (bool): The parts are about to be built: ``model_dir`` and the context file must exist. False
            (declaring channels) describes a ``model_dir`` or file that is not there yet by the other arguments.
            Defaults to True.

    Returns:
        BackboneSpec: The resolved description.
    """
    model = family.resolve_model(arch, model_dir, for_build)  # checks the diffusers version first (sources.py)
    inputs = family.model_inputs(model)
    class_label = check_class_label(inputs.num_classes, class_label, family.name)
    class_label = inputs.null_class if class_label is None else class_label
    vae_source = resolve_vae(vae, vae_latents, model_dir)
    _check_vae(vae_source, vae_latents, model, inputs, family.name, None if model.folder is None else model_dir)
    context_arguments = _context(context, inputs, family.name, model)
    tokens = _context_tokens(context, must_exist=for_build, needed=attention_maps is not None)
    scheduler = resolve_scheduler(noise_scheduler, model_dir, family.default_scheduler(model))
    steps = check_timesteps(timesteps, scheduler.num_train_timesteps)
    taps = tuple(family.list_taps(model, 1 if vae_source is None else vae_source.latent_stride, tokens))
    feature_info = declare_feature_info(taps, steps, timestep_fusion, out_strides, out_blocks,
                                        resample_missing_strides, attention_maps, tokens, projection_channels,
                                        family.name, pyramid)
    return BackboneSpec(family, model, inputs, vae_source, context_arguments, scheduler, steps, class_label, taps,
                        feature_info)
