"""Drawing images from a trained U-Net with diffusers' DDPM or DDIM sampler, and saving them as a grid."""
import math
import os
from typing import Optional, Sequence

import torch
from diffusers import DDIMScheduler, DDPMScheduler
from mmengine.dist import all_gather_object, get_dist_info
from torch import Tensor, nn

from mmdiff.diffusers_compat import randn_tensor

from .choices import check_choice

SAMPLERS = {'ddpm': DDPMScheduler, 'ddim': DDIMScheduler}


@torch.no_grad()
def sample_images(unet: nn.Module,
                  noise_scheduler: DDPMScheduler,
                  num_images: int,
                  sampler: str = 'ddim',
                  num_inference_steps: int = 50,
                  seed: int = 0,
                  class_labels: Optional[Tensor] = None,
                  image_indices: Optional[Sequence[int]] = None) -> Tensor:
    """Run the reverse diffusion from Gaussian noise.

    The sampler is built from the training scheduler's config (same betas, T and ``prediction_type``). Image ``i``
    of the ``num_images`` has its own generator, seeded ``seed + i``: its initial noise (and DDPM's step noise)
    is the same whichever images are drawn with it, so a grid can be split across processes (see
    :func:`sample_images_across_ranks`). DDIM is deterministic given the seed (eta = 0).

    Args:
        unet (nn.Module): A ``UNet2DModel``; it runs in eval mode and is put back in its previous mode.
        noise_scheduler (DDPMScheduler): The schedule the U-Net was trained with.
        num_images (int): Images to draw.
        sampler (str): ``'ddim'`` or ``'ddpm'``. Defaults to ``'ddim'``.
        num_inference_steps (int): Denoising steps, at most T. Defaults to 50.
        seed (int): Seed of the initial noise (and of DDPM's step noise). Defaults to 0.
        class_labels (Tensor, optional): ``(num_images,)`` labels for a class-conditional U-Net; None draws its
            classes in turn (0, 1, ..., K - 1, 0, ...). Refused for an unconditional U-Net.
        image_indices (Sequence[int], optional): Which of the ``num_images`` to draw. Defaults to None (all).

    Returns:
        Tensor: ``(len(image_indices), C, H, W)`` images in [-1, 1], on the U-Net's device.
    """
    check_choice('sampler', sampler, SAMPLERS)
    num_train_timesteps = noise_scheduler.config.num_train_timesteps
    if not 1 <= num_inference_steps <= num_train_timesteps:
        raise ValueError(f'num_inference_steps={num_inference_steps} must lie in [1, {num_train_timesteps}] (the '
                         f'training schedule has T = {num_train_timesteps})')
    indices = list(range(num_images)) if image_indices is None else list(image_indices)
    if any(not 0 <= index < num_images for index in indices):
        raise ValueError(f'image_indices must lie in [0, {num_images}) (num_images={num_images}), got {indices}')
    num_classes = unet.config.num_class_embeds
    if num_classes is None and class_labels is not None:
        raise ValueError('class_labels were given, but the U-Net is unconditional (num_class_embeds=None)')
    if num_classes is not None and class_labels is None:
        class_labels = torch.arange(num_images) % num_classes
    if class_labels is not None:
        class_labels = class_labels[indices].to(unet.device)
    scheduler = SAMPLERS[sampler].from_config(noise_scheduler.config)
    scheduler.set_timesteps(num_inference_steps)
    size = unet.config.sample_size
    height, width = (size, size) if isinstance(size, int) else size
    generator = [torch.Generator().manual_seed(seed + index) for index in indices]
    images = randn_tensor((len(indices), unet.config.in_channels, height, width), generator=generator)
    images = images.to(unet.device) * scheduler.init_noise_sigma
    was_training = unet.training
    unet.eval()
    for timestep in scheduler.timesteps:
        prediction = unet(scheduler.scale_model_input(images, timestep), timestep, class_labels=class_labels).sample
        images = scheduler.step(prediction, timestep, images, generator=generator).prev_sample
    unet.train(was_training)
    return images.clamp(-1, 1)


def sample_images_across_ranks(unet: nn.Module, noise_scheduler: DDPMScheduler, num_images: int,
                               sampler: str = 'ddim', num_inference_steps: int = 50, seed: int = 0) -> Tensor:
    """:func:`sample_images` split across the processes of a distributed job: rank ``r`` of ``w`` draws images
    ``r, r + w, ...`` on its own device, and every rank gets the whole set, the same as one process draws.

    Returns:
        Tensor: ``(num_images, C, H, W)`` images in [-1, 1], on the CPU.
    """
    rank, world_size = get_dist_info()
    share = list(range(rank, num_images, world_size))
    images = sample_images(unet, noise_scheduler, num_images, sampler, num_inference_steps, seed,
                           image_indices=share).cpu() if share else None
    gathered = sorted(((index, image) for indices, drawn in all_gather_object((share, images))
                       for index, image in zip(indices, drawn if drawn is not None else [])), key=lambda pair: pair[0])
    return torch.stack([image for _, image in gathered])


def save_image_grid(images: Tensor, path: str, nrow: Optional[int] = None) -> None:
    """Save images in [-1, 1] as one PNG grid, ``nrow`` images per row with 2-pixel borders.

    Args:
        images (Tensor): ``(N, C, H, W)`` with C = 1 or 3 (RGB).
        path (str): Output file; its folder is created.
        nrow (int, optional): Images per row. Defaults to None: ``ceil(sqrt(N))``, a square grid.
    """
    from torchvision.utils import save_image
    nrow = nrow or math.ceil(math.sqrt(len(images)))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_image(images.float().cpu() * 0.5 + 0.5, path, nrow=nrow, padding=2)
