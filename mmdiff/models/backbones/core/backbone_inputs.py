"""The checks of a diffusion backbone's arguments and of each call's inputs; every message names the valid values."""
import numbers
import os
import warnings
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from mmdiff.utils.checkpoint_weights import WEIGHT_KINDS
from mmdiff.utils.choices import check_choice
from mmdiff.utils.safe_checkpoint import check_local


def is_integer(value) -> bool:
    """An integer (``int``, ``numpy.int64``, ...) that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


NOISE_MODES = ('fixed', 'random', 'none')


def check_noise_arguments(noise_mode: str, num_noise_draws: int, noise_seed: int) -> None:
    """``noise_mode`` one of :data:`NOISE_MODES`, ``num_noise_draws`` an integer >= 1 (1 without noise),
    ``noise_seed`` an integer >= 0."""
    check_choice('noise_mode', noise_mode, NOISE_MODES)
    if not is_integer(num_noise_draws) or num_noise_draws < 1:
        raise ValueError(f'num_noise_draws must be an integer >= 1, got {num_noise_draws!r}')
    if noise_mode == 'none' and num_noise_draws > 1:
        raise ValueError(f'num_noise_draws={num_noise_draws} averages over noise draws, but noise_mode='
                         f"'none' adds no noise; use noise_mode='fixed' or 'random', or num_noise_draws=1")
    if not is_integer(noise_seed) or noise_seed < 0:
        raise ValueError(f'noise_seed must be an integer >= 0, got {noise_seed!r}')


def check_gradient_options(attention_maps_grad: bool, attention_maps, with_cp: bool, frozen: bool,
                           family: str) -> None:
    """Refuse ``attention_maps_grad=False`` without maps, and gradient checkpointing of a frozen model."""
    if not attention_maps_grad and attention_maps is None:
        raise ValueError('attention_maps_grad=False detaches the cross-attention maps, but attention_maps is None '
                         '(no maps are appended); give attention_maps or leave attention_maps_grad=True')
    if with_cp and frozen:
        raise ValueError(f'with_cp=True checkpoints gradients, but a frozen {family} has none; set frozen=False to '
                         f'fine-tune with gradient checkpointing')


def check_pretrained(init_cfg: Optional[dict]) -> None:
    """Fail at construction, before any training step, when a ``Pretrained`` init_cfg's checkpoint file is missing."""
    if not isinstance(init_cfg, dict) or init_cfg.get('type') != 'Pretrained':
        return
    check_choice("init_cfg['weights']", init_cfg.get('weights', 'ema'), WEIGHT_KINDS)
    checkpoint = str(init_cfg.get('checkpoint'))
    check_local(checkpoint)
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(
            f'backbone checkpoint {checkpoint!r} (init_cfg) does not exist. An mmdiff backbone checkpoint is '
            f'the state dict of a DiffusionUNetBackbone with the same arch: saved by an mmdiff run, or '
            f'converted from guided-diffusion weights by tools/model_converters/convert_adm_checkpoint.py (e.g. '
            f'256x256_diffusion_uncond.pt from openai/guided-diffusion with --preset 256x256_diffusion_uncond '
            f'for arch=\'adm-256u\'). Point the config\'s `pretrained` at that file, or set the backbone\'s '
            f'init_cfg=None to start from random weights.')


def check_timesteps(timesteps: Union[int, Sequence[int]], num_train_timesteps: int) -> Tuple[int, ...]:
    """The configured noise steps as distinct Python ints in ``[0, num_train_timesteps)``."""
    timesteps = (timesteps, ) if is_integer(timesteps) else timesteps
    if not isinstance(timesteps, Sequence) or isinstance(timesteps, str):
        raise TypeError(f'timesteps must be an integer or a sequence of integers, got {timesteps!r}')
    if not timesteps:
        raise ValueError(f'timesteps is empty; give at least one noise step in [0, {num_train_timesteps})')
    for t in timesteps:
        if not is_integer(t):
            raise TypeError(f'timesteps must be integers, got {t!r} of type {type(t).__name__}')
        if not 0 <= t < num_train_timesteps:
            raise ValueError(f'timestep {t} is outside the scheduler\'s range [0, {num_train_timesteps})')
    if len(set(timesteps)) != len(timesteps):
        raise ValueError(f'timesteps {tuple(timesteps)} repeat a step, which would repeat its features')
    return tuple(int(t) for t in timesteps)


def check_class_label(num_classes: Optional[int], class_label: Optional[int], model: str = 'U-Net') -> Optional[int]:
    """The label a class-conditional model (``num_classes`` classes; None: not class-conditional) runs with when a
    call gives none (None: every call must give them); ``model`` names it in the messages."""
    if class_label is not None and not is_integer(class_label):
        raise TypeError(f'class_label must be an integer class index or None, got {class_label!r}')
    if num_classes is None:
        if class_label is not None:
            raise ValueError(f'class_label={class_label} was given, but the {model} is not class-conditional')
    elif class_label is not None and not 0 <= class_label < num_classes:
        raise ValueError(f'the {model} is class-conditional ({num_classes} classes); set class_label to a label '
                         f'in [0, {num_classes}) or None (labels per image at each call), got {class_label!r}')
    return None if class_label is None else int(class_label)


def per_image_class_labels(num_classes: Optional[int], class_label: Optional[int], class_labels: Optional[Tensor],
                           num_images: int, device: torch.device, model: str = 'U-Net') -> Optional[Tensor]:
    """``(num_images,)`` labels of a class-conditional model: the given ones, checked, or ``class_label``."""
    if num_classes is None:
        if class_labels is not None:
            raise ValueError(f'class_labels were given, but the {model} is not class-conditional')
        return None
    if class_labels is None:
        if class_label is None:
            raise ValueError(f'the {model} is class-conditional ({num_classes} classes) and class_label=None: give '
                             f'forward() one label per image (class_labels), or set class_label')
        return torch.full((num_images, ), class_label, dtype=torch.long, device=device)
    return per_image_integers(class_labels, num_images, 'class_labels', 'class label', f"the {model}'s classes",
                              num_classes).to(device)


def check_per_image_timesteps(timesteps: Tensor, num_images: int, configured: Tuple[int, ...],
                              num_train_timesteps: int) -> Tensor:
    """One noise step per image ``(num_images,)`` in place of the ``configured`` single step, as a long tensor."""
    if len(configured) != 1:
        raise ValueError(f'per-image timesteps need a backbone configured with one timestep (its channels are '
                         f'declared for that many), got timesteps={tuple(configured)}')
    return per_image_integers(timesteps, num_images, 'per-image timesteps', 'timestep', "the scheduler's range",
                              num_train_timesteps)


def per_image_integers(values: Tensor, num_images: int, argument: str, item: str, range_name: str,
                       limit: int) -> Tensor:
    """``values`` checked to be ``(num_images,)`` integers in ``[0, limit)``, as a long tensor; the errors name
    ``argument`` (the tensor), ``item`` (one value) and ``range_name`` (what the range is)."""
    if values.shape != (num_images, ) or values.dtype.is_floating_point:
        raise ValueError(f'{argument} must be {num_images} integers, one per image, got a {values.dtype} tensor of '
                         f'shape {tuple(values.shape)}')
    outside = values[(values < 0) | (values >= limit)]
    if len(outside):
        raise ValueError(f'{item} {int(outside[0])} is outside {range_name} [0, {limit})')
    return values.long()


def check_image_batch(inputs: Tensor, channels: int, first_batch: bool) -> None:
    """A batch of ``(N, channels, H, W)`` images with pixels, finite, and (checked on the first batch) in [-1, 1].

    Values are checked on every batch on the CPU, and on an accelerator only on the first one, so that no batch
    after it waits for a host synchronisation; a traced or compiled graph, and a meta tensor (shapes without
    values), are checked for their shapes only.

    Args:
        inputs (Tensor): The batch.
        channels (int): The channels the backbone takes.
        first_batch (bool): The backbone has not yet checked a batch's value range.

    Raises:
        ValueError: For a wrong shape, an empty batch or image, or NaN / infinite values (counted).
    """
    if inputs.dim() != 4 or inputs.shape[1] != channels:
        raise ValueError(f'expected images of shape (N, {channels}, H, W), got {tuple(inputs.shape)}')
    if inputs.numel() == 0:
        raise ValueError(f'the batch of shape {tuple(inputs.shape)} holds no pixels; give at least one image of at '
                         f'least 1x1 pixels')
    if (torch.jit.is_tracing() or torch.compiler.is_compiling() or inputs.device.type == 'meta'
            or not (first_batch or inputs.device.type == 'cpu')):
        return
    bad = int((~torch.isfinite(inputs)).sum())
    if bad:
        raise ValueError(f'the input batch holds {bad} NaN or infinite values (of {inputs.numel()}); check the '
                         f'images and the data preprocessor')
    if first_batch:
        low, high = (value.item() for value in inputs.aminmax())
        if low < -1.5 or high > 1.5 or (low >= 0 and high > 0):
            warnings.warn(
                f'DiffusionUNetBackbone expects images normalised to [-1, 1] (data preprocessor mean=std='
                f'127.5), but the first batch spans [{low:.2f}, {high:.2f}]'
                + (' (no negative value: images in [0, 1]?)' if -1.5 <= low and high <= 1.5 else '')
                + '; this is checked once', stacklevel=3)
