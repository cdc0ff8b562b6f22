"""Seeded Gaussian noise that depends on the pixel position only, never on the batch or the canvas size, and the
noising of a (draws x timesteps x images) stack with the model's own scheduler: DDPM / DDIM betas, or flow
matching."""
from typing import Dict, Tuple

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from torch import Tensor


class FixedNoise:
    """Deterministic standard-normal noise maps, cut from an unbounded seeded plane.

    The plane is made of ``tile_size`` x ``tile_size`` tiles; each tile is drawn from its own generator, seeded
    from ``(seed, draw, channels, tile row, tile column)``. A pixel's noise therefore depends only on the seed,
    the draw and its position, so an image gets the same noise alone, inside any batch, and whatever padding its
    batch needed. Generated planes are cached per device and dtype and grown on demand.

    Args:
        seed (int): Seed of the plane.
        tile_size (int): Side of the independently seeded tiles. Defaults to 64.

    Example:
        >>> noise = FixedNoise(seed=0)
        >>> a = noise.sample(num_draws=2, channels=3, height=40, width=50, device='cpu', dtype=torch.float32)
        >>> b = noise.sample(num_draws=2, channels=3, height=90, width=70, device='cpu', dtype=torch.float32)
        >>> a.shape, bool((b[:, :, :40, :50] == a).all())
        (torch.Size([2, 3, 40, 50]), True)
    """

    def __init__(self, seed: int, tile_size: int = 64) -> None:
        if tile_size < 1:
            raise ValueError(f'tile_size must be a positive number of pixels, got {tile_size}')
        self.seed = seed
        self.tile_size = tile_size
        self._planes: Dict[Tuple[int, int, str, torch.dtype], Tensor] = {}

    def _tile(self, draw: int, channels: int, row: int, column: int) -> Tensor:
        state = np.random.SeedSequence([self.seed, draw, channels, row, column]).generate_state(2, np.uint64)[0]
        generator = torch.Generator().manual_seed(int(state) & (2**63 - 1))
        return torch.randn(channels, self.tile_size, self.tile_size, generator=generator)

    def _plane(self, num_draws: int, channels: int, rows: int, columns: int) -> Tensor:
        return torch.stack([
            torch.cat([
                torch.cat([self._tile(draw, channels, row, column) for column in range(columns)], dim=2)
                for row in range(rows)
            ], dim=1) for draw in range(num_draws)
        ])

    def sample(self, num_draws: int, channels: int, height: int, width: int, device: torch.device | str,
               dtype: torch.dtype) -> Tensor:
        """Noise maps of shape ``(num_draws, channels, height, width)``, the top-left corner of the plane.

        The sizes are taken as Python ints (a tracer may hand them over as 0-d tensors): the noise depends on them
        only through the seeds, so a traced or exported model holds it as a constant.
        """
        num_draws, channels, height, width = int(num_draws), int(channels), int(height), int(width)
        key = (num_draws, channels, str(device), dtype)
        plane = self._planes.get(key)
        if plane is None or plane.shape[-2] < height or plane.shape[-1] < width:
            rows = -(-height // self.tile_size)
            columns = -(-width // self.tile_size)
            if plane is not None:  # grow without ever shrinking, so later large requests reuse the work
                rows = max(rows, plane.shape[-2] // self.tile_size)
                columns = max(columns, plane.shape[-1] // self.tile_size)
            plane = self._plane(num_draws, channels, rows, columns).to(device=device, dtype=dtype)
            self._planes[key] = plane
        return plane[:, :, :height, :width]


def noised_stack(images: Tensor, timesteps: Tensor, num_draws: int, per_image: bool, noise_mode: str,
                 fixed_noise: FixedNoise, scheduler) -> Tuple[Tensor, Tensor]:
    """Stack draws x timesteps x images and noise each to its step with the scheduler's ``add_noise``.

    Args:
        images (Tensor): Clean images or latents ``(N, C, H, W)``.
        timesteps (Tensor): The T configured steps ``(T,)``, or with ``per_image`` one step per image ``(N,)``.
        num_draws (int): K noise draws per (image, step).
        per_image (bool): ``timesteps`` holds one step per image (T = 1).
        noise_mode (str): ``'fixed'`` (``fixed_noise``, the same for an image in any batch), ``'random'`` or
            ``'none'`` (the clean stack).
        fixed_noise (FixedNoise): The seeded noise of ``'fixed'``.
        scheduler: A diffusers scheduler (:func:`add_noise`).

    Returns:
        tuple[Tensor, Tensor]: Samples ``(K*T*N, C, H, W)``, draws outermost, and their steps ``(K*T*N,)``.
    """
    num_images = images.shape[0]
    steps = 1 if per_image else timesteps.shape[0]
    clean = images.float().unsqueeze(0).unsqueeze(0).expand(num_draws, steps, *images.shape)
    if per_image:
        timesteps = timesteps.view(1, 1, num_images).expand(num_draws, 1, num_images).reshape(-1)
    else:
        timesteps = timesteps.view(1, steps, 1).expand(num_draws, steps, num_images).reshape(-1)
    if noise_mode == 'none':
        return clean.reshape(-1, *images.shape[1:]), timesteps
    if noise_mode == 'fixed':
        noise = fixed_noise.sample(num_draws, *images.shape[1:], device=images.device, dtype=torch.float32)
        noise = noise.view(num_draws, 1, 1, *images.shape[1:]).expand_as(clean)
    else:
        noise = torch.randn_like(clean)
    noisy = add_noise(scheduler, clean.reshape(-1, *images.shape[1:]), noise.reshape(-1, *images.shape[1:]), timesteps)
    return noisy, timesteps


def add_noise(scheduler, clean: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
    """Noise ``clean`` ``(B, C, H, W)`` to ``timesteps`` ``(B,)`` in [0, T) as the model was trained.

    A flow-matching scheduler (SD3, FLUX, Sana) interpolates towards the noise, ``x_t = (1 - sigma) x + sigma *
    noise`` with ``sigma = t / T`` (the model is then given the step ``t = 1000 sigma``, as its pipelines do);
    the others (DDPM / DDIM betas) use their ``add_noise``: ``sqrt(alpha_bar_t) x + sqrt(1 - alpha_bar_t) noise``.
    """
    if isinstance(scheduler, FlowMatchEulerDiscreteScheduler):
        sigma = (timesteps.to(clean.dtype) / scheduler.config.num_train_timesteps).view(-1, 1, 1, 1)
        return (1 - sigma) * clean + sigma * noise
    return scheduler.add_noise(clean, noise, timesteps)
