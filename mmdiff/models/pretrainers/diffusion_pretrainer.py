"""DiffusionPretrainer: train a diffusers U-Net as a denoising diffusion model with mmengine's runner."""
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from mmengine.model import BaseModel
from torch import Tensor

from mmdiff.registry import MODELS, register_module
from mmdiff.utils.choices import check_choice
from mmdiff.utils.runner_access import gt_labels
from ..backbones.core.sources import resolve_scheduler
from ..backbones.unet.builder import build_unet

PREDICTION_TYPES = ('epsilon', 'v_prediction')
PRETRAINING_SCHEDULERS = ('DDPMScheduler', 'DDIMScheduler')  # the DDPM objective's betas


@register_module(MODELS)
class DiffusionPretrainer(BaseModel):
    """Denoising diffusion pre-training (Ho et al. 2020, the "simple" loss) of the U-Net that
    :class:`~mmdiff.models.DiffusionUNetBackbone` wraps.

    Each step draws a timestep t uniformly from [0, T) and Gaussian noise per image, noises the images with the
    noise schedule (``add_noise``) and regresses the U-Net's output on the noise (``prediction_type='epsilon'``)
    or on the velocity ``sqrt(abar_t) eps - sqrt(1 - abar_t) x0`` (``'v_prediction'``, Salimans & Ho 2022),
    with mean squared error. The prediction type is the noise scheduler's ``prediction_type``, so the samplers
    built from the same scheduler config read the output the same way.

    The state dict is ``unet.*``, the layout of the backbone's U-Net: a checkpoint of this model loads into a
    ``DiffusionUNetBackbone`` with the same ``arch`` through ``init_cfg=dict(type='Pretrained',
    checkpoint=...)``. With mmengine's ``EMAHook`` the checkpoint's ``state_dict`` holds the EMA weights (and
    ``ema_state_dict`` the raw ones), so the backbone loads the EMA weights by default.

    Args:
        arch (str | dict | None): The U-Net: a preset of :data:`~mmdiff.models.backbones.UNET_PRESETS`, a dict of
            ``UNet2DModel`` arguments, or None with ``model_dir``. Its output must have as many channels as its
            input (learned-variance U-Nets, ``learn_sigma=True``, need a variational loss this model lacks).
        model_dir (str, optional): A local diffusers folder to start from (fine-tuning on a new domain).
            Defaults to None (random initialisation).
        noise_scheduler (dict, optional): ``dict(type='DDPMScheduler', **config)``; its ``prediction_type`` is
            ``'epsilon'`` or ``'v_prediction'``. None takes ``model_dir``'s ``scheduler/``, else the linear DDPM
            schedule with T = 1000 (the backbone's default). Defaults to None.
        data_preprocessor (dict, optional): Batches images; it must map them to [-1, 1], e.g.
            ``dict(type='ClsDataPreprocessor', mean=[127.5] * 3, std=[127.5] * 3)``. Defaults to None.
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None (diffusers' initialisation).
    """

    def __init__(self,
                 arch: Union[str, dict, None],
                 model_dir: Optional[str] = None,
                 noise_scheduler: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.unet = build_unet(arch, model_dir)
        if isinstance(self.unet, UNet2DConditionModel):
            raise ValueError('DiffusionPretrainer trains image-space UNet2DModel U-Nets; a UNet2DConditionModel '
                             '(latent diffusion with text conditioning) needs its VAE and text encoder')
        if self.unet.config.out_channels != self.unet.config.in_channels:
            raise ValueError(f'the U-Net outputs {self.unet.config.out_channels} channels for '
                             f'{self.unet.config.in_channels} input channels (a learned-variance model, '
                             f'learn_sigma=True); DiffusionPretrainer trains noise or velocity prediction only, so '
                             f'use an arch with out_channels == in_channels (adm_unet_config(..., '
                             f'learn_sigma=False))')
        schedule = resolve_scheduler(noise_scheduler, model_dir)
        check_choice('the pre-training noise_scheduler type', schedule.type, PRETRAINING_SCHEDULERS)
        self.noise_scheduler = schedule.build()
        check_choice('noise_scheduler prediction_type', self.prediction_type, PREDICTION_TYPES)

    @property
    def prediction_type(self) -> str:
        return self.noise_scheduler.config.prediction_type

    @property
    def num_classes(self) -> Optional[int]:
        """Classes of a class-conditional U-Net (``num_class_embeds``), else None."""
        return self.unet.config.num_class_embeds

    def _class_labels(self, data_samples: Optional[List]) -> Optional[Tensor]:
        if self.num_classes is None:
            return None
        labels = gt_labels(data_samples)
        if labels is None:
            raise ValueError(f'the U-Net is class-conditional (num_class_embeds={self.num_classes}), so every '
                             f'sample needs a gt_label')
        return labels.to(self.unet.device)

    def loss(self, images: Tensor, class_labels: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """The denoising loss of a batch.

        Args:
            images (Tensor): ``(N, C, H, W)`` images in [-1, 1].
            class_labels (Tensor, optional): ``(N,)`` labels of a class-conditional U-Net.

        Returns:
            dict: ``loss``, the mean squared error of the prediction over the batch.
        """
        num_train_timesteps = self.noise_scheduler.config.num_train_timesteps
        timesteps = torch.randint(0, num_train_timesteps, (images.shape[0], ), device=images.device)
        noise = torch.randn_like(images)
        noised = self.noise_scheduler.add_noise(images, noise, timesteps)
        if self.prediction_type == 'epsilon':
            target = noise
        else:
            target = self.noise_scheduler.get_velocity(images, noise, timesteps)
        prediction = self.unet(noised, timesteps, class_labels=class_labels).sample
        return dict(loss=F.mse_loss(prediction.float(), target.float()))

    def forward(self, inputs: Tensor, data_samples: Optional[List] = None, mode: str = 'loss') -> Dict[str, Tensor]:
        """``mode='loss'``: the denoising loss of the batch (the only mode; sample images with
        :func:`mmdiff.utils.diffusion_sampling.sample_images` or ``tools/misc/sample_diffusion.py``)."""
        if mode != 'loss':
            raise ValueError(f"mode={mode!r} is not supported by DiffusionPretrainer; choose one of ['loss'] (it "
                             f"has no predictions to evaluate: draw samples with tools/misc/sample_diffusion.py)")
        return self.loss(inputs, self._class_labels(data_samples))
