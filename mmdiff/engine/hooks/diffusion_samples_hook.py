"""Save a grid of generated images while a diffusion model pre-trains, to see the generative side learn."""
import os.path as osp
from typing import Optional

from torch import nn
from mmengine.dist import is_main_process
from mmengine.hooks import EMAHook, Hook

from mmdiff.registry import HOOKS, register_module
from mmdiff.utils.choices import check_choice
from mmdiff.utils.diffusion_sampling import SAMPLERS, sample_images_across_ranks, save_image_grid
from mmdiff.utils.runner_access import unwrap_model


@register_module(HOOKS)
class DiffusionSamplesHook(Hook):
    """Every ``interval`` training iterations (and after the last), draw images and save them as a PNG grid.

    Grids go to ``{work_dir}/samples/iter_{N}.png``. The images come from the EMA weights when the run has an
    ``EMAHook`` (the weights its checkpoints hold in ``state_dict``), else from the trained weights. The seed is
    fixed, so successive grids start from the same noise and show how the model changes. A class-conditional
    U-Net draws the classes in turn. The grid is square (``ceil(sqrt(num_images))`` images per row). In a
    distributed run every process draws its share of the grid on its own device and rank 0 saves it.

    Args:
        interval (int): Training iterations between grids. Defaults to 1000.
        num_images (int): Images per grid. Defaults to 64.
        sampler (str): ``'ddim'`` or ``'ddpm'``. Defaults to ``'ddim'``.
        num_inference_steps (int): Denoising steps. Defaults to 50.
        seed (int): Seed of the initial noise. Defaults to 0.
    """
    priority = 'LOW'  # after EMAHook ('NORMAL') has updated the averaged weights

    def __init__(self, interval: int = 1000, num_images: int = 64, sampler: str = 'ddim',
                 num_inference_steps: int = 50, seed: int = 0) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        check_choice('sampler', sampler, SAMPLERS)
        self.interval = interval
        self.num_images = num_images
        self.sampler = sampler
        self.num_inference_steps = num_inference_steps
        self.seed = seed

    @staticmethod
    def _model(runner) -> nn.Module:
        """The EMA copy of the pretrainer when an EMAHook runs, else the trained pretrainer."""
        for hook in runner.hooks:
            if isinstance(hook, EMAHook) and hasattr(hook, 'ema_model'):
                return hook.ema_model.module
        return unwrap_model(runner.model)

    def save_grid(self, runner, path: str) -> None:
        model = self._model(runner)
        images = sample_images_across_ranks(model.unet, model.noise_scheduler, self.num_images, self.sampler,
                                            self.num_inference_steps, self.seed)
        if is_main_process():
            save_image_grid(images, path)
            runner.logger.info(f'saved {self.num_images} samples ({self.sampler}, {self.num_inference_steps} '
                               f'steps) to {path}')

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if self.every_n_train_iters(runner, self.interval) or self.is_last_train_iter(runner):
            self.save_grid(runner, osp.join(runner.work_dir, 'samples', f'iter_{runner.iter + 1}.png'))
