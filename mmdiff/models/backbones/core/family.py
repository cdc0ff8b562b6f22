"""The seam between the shared backbone core and a family of denoising models (U-Nets, diffusion transformers).

The core (:class:`~mmdiff.models.backbones.core.diffusion_backbone.DiffusionBackbone`) owns everything that is the
same for every family: noising with the model's scheduler, timesteps, noise draws, the VAE latent path, the
conditioning files, the feature pyramid, the speed options, freezing and loading. A family owns only what differs,
through the methods of :class:`DiffusionFamily`:

- :meth:`~DiffusionFamily.resolve_model`: the model an ``arch`` preset or dict and a ``model_dir`` describe, from
  configuration files alone (nothing built, no weight read), checked against each other;
- :meth:`~DiffusionFamily.model_inputs`: what the model takes beside the noised sample;
- :meth:`~DiffusionFamily.list_taps`: its taps (name, stride, channels, kind, and for U-Nets the diffssl number),
  from the configuration alone;
- :meth:`~DiffusionFamily.build_model`: the model itself, random or loaded from the folder;
- :meth:`~DiffusionFamily.model_pass`: the explicit pass that returns the wanted taps and runs nothing behind the
  last one.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Collection, Dict, List, Mapping, Optional, Protocol, Tuple, Union

from torch import Tensor, nn

from .taps import Tap


@dataclass(frozen=True)
class ModelSource:
    """A denoising model as a backbone config names it, resolved without building it.

    Args:
        class_name (str): The diffusers class, e.g. ``'UNet2DConditionModel'``.
        config (Mapping): Its constructor arguments, defaults included.
        folder (str, optional): The local diffusers folder its weights load from; None for random weights.
    """
    class_name: str
    config: Mapping
    folder: Optional[str] = None


@dataclass(frozen=True)
class ModelInputs:
    """What a denoising model takes beside the noised sample and its timesteps.

    Args:
        in_channels (int): Channels of the sample.
        latent (bool): It denoises VAE latents: a pipeline folder must hold the VAE.
        cross_attention_dim (int, optional): Width of the tokens it cross-attends to; None without cross-attention.
        pooled_dim (int, optional): Width of the pooled text embedding it is conditioned on (SDXL's added
            conditioning, with the six time ids); None without one.
        num_classes (int, optional): Classes of a class-conditional model; None otherwise.
        null_class (int, optional): The label of its unconditional ("null") class, run when no label is given
            (DiT's ``num_embeds_ada_norm``); None: a label must be given.
        guided (bool): It embeds a distilled guidance scale (FLUX.1-dev), which must be given.
    """
    in_channels: int
    latent: bool
    cross_attention_dim: Optional[int] = None
    pooled_dim: Optional[int] = None
    num_classes: Optional[int] = None
    null_class: Optional[int] = None
    guided: bool = False


class ModelPass(Protocol):
    """A family's pass through a built model (for U-Nets, :class:`~mmdiff.models.backbones.unet.UNetPass`)."""

    def __call__(self, sample: Tensor, timesteps: Tensor, wanted: Collection[str], *,
                 additions: Optional[Mapping[str, Tensor]] = None, checkpointing: bool = False,
                 **conditions: Optional[Union[Tensor, Tuple[int, int], float]]) -> Dict[str, Tensor]:
        """The wanted taps ``name -> (B, C, h, w)`` of the model on ``sample`` ``(B, C, h, w)`` at ``timesteps``
        ``(B,)``; nothing behind the last wanted one runs."""

    def parameters_used(self, wanted: Collection[str]) -> List[nn.Parameter]:
        """The parameters a pass for ``wanted`` can give a gradient (the others are frozen when fine-tuning)."""


class DiffusionFamily(ABC):
    """A family of denoising models: what the shared core asks of it (see the module's docstring).

    Attributes:
        name (str): What the family's models are called in messages, e.g. ``'U-Net'``.
        module_name (str): The backbone attribute, and so the state-dict prefix, holding the model (``'unet'``).
    """
    name: str
    module_name: str

    @abstractmethod
    def resolve_model(self, arch: Union[str, dict, None], model_dir: Optional[str], for_build: bool) -> ModelSource:
        """The model ``arch`` and ``model_dir`` name, checked against each other and against what mmdiff drives.

        Args:
            arch (str | dict | None): A preset name, a dict of keyword arguments, or None for the folder's model.
            model_dir (str, optional): A local diffusers model or pipeline folder.
            for_build (bool): The model is about to be built: ``model_dir`` must exist. Otherwise (declaring
                channels) a missing folder is described by ``arch``.
        """

    @abstractmethod
    def model_inputs(self, source: ModelSource) -> ModelInputs:
        """What the model takes beside the noised sample."""

    def default_scheduler(self, source: ModelSource) -> Optional[dict]:
        """The noise schedule without ``noise_scheduler`` or a folder's ``scheduler/``: ``dict(type=..., **kwargs)``,
        or None for linear DDPM betas with T = 1000."""
        return None

    @abstractmethod
    def list_taps(self, source: ModelSource, input_stride: int, context_tokens: Optional[int]) -> List[Tap]:
        """The model's taps in forward order, from its configuration alone.

        Args:
            source (ModelSource): The model.
            input_stride (int): Image pixels per model input pixel (the VAE's latent stride, else 1).
            context_tokens (int, optional): Tokens of the cross-attention context: the channels of the
                cross-attention map taps (None: no map taps).
        """

    @abstractmethod
    def build_model(self, source: ModelSource) -> nn.Module:
        """The model: loaded from ``source.folder`` with ``local_files_only=True``, else with random weights."""

    @abstractmethod
    def model_pass(self, model: nn.Module, **options) -> ModelPass:
        """The explicit pass through ``model`` that returns the wanted taps, with the backbone's ``pass_options``
        (the transformers' ``modulated``)."""
