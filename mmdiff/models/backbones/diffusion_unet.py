"""DiffusionUNetBackbone: noised multi-scale features from a diffusers U-Net."""
import contextlib
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdiff.registry import MODELS, register_module
from mmdiff.utils.choices import check_choice
from mmdiff.utils.checkpoint_weights import check_weights_fit, checkpoint_weights
from mmdiff.utils.safe_checkpoint import load_checkpoint_file
from .backbone_inputs import (check_class_label, check_image_batch, check_noise_arguments, check_per_image_timesteps,
                              check_pretrained, check_timesteps, per_image_class_labels)
from .feature_info import declare_feature_info
from .fixed_noise import FixedNoise, noised_stack
from .pyramid import FUSIONS, assemble_level
from .speed_options import DTYPES, check_precision, compile_pass, prepare_unet
from .unet_builder import build_context, build_noise_scheduler, build_unet, build_vae_encoder
from .unet_configs import UNET_PRESETS
from .unet_pass import UNetPass
from .unet_taps import format_taps, list_unet_taps


@register_module(MODELS)
class DiffusionUNetBackbone(BaseModule):
    """Multi-scale features of a denoising U-Net, taken from noised images (or noised VAE latents).

    The images (for a latent-diffusion model: their VAE latents) are noised to each of ``timesteps`` with the
    model's noise schedule, the U-Net runs once on the whole (draws x timesteps x batch) stack, and the outputs
    of the tapped blocks are returned as a feature pyramid sorted by increasing stride, like any mm backbone.
    Taps at the same stride stay separate outputs, in forward order; the timesteps of one tap are fused into one
    output by ``timestep_fusion``. The U-Net stops after the last tapped block. With a VAE, strides are relative
    to the image: latent stride (8) x U-Net stride.
    ``feature_info``, ``out_channels`` and ``out_strides`` describe the outputs before any
    forward pass, so a neck's ``in_channels`` can be checked against them.

    Args:
        arch (str | dict | None): A preset from :attr:`arch_settings` (``'adm-256u'``: guided-diffusion's
            ImageNet 256x256 unconditional U-Net, ``'adm-tiny'``: its six-level layout with a few channels;
            ``'sd15'``: Stable Diffusion 1.5's latent U-Net, ``'sd-tiny'``: its layout with a few channels) or a
            dict of U-Net keyword arguments, with ``type='UNet2DConditionModel'`` for a text-conditioned U-Net
            (default ``'UNet2DModel'``). With ``model_dir``, None takes the folder's architecture; a preset or
            dict is then checked against it. Defaults to ``'adm-256u'``.
        model_dir (str, optional): A local diffusers folder (``config.json`` + weights, or a pipeline folder
            with ``unet/``, ``scheduler/`` and, for latent diffusion, ``vae/``), loaded with
            ``local_files_only=True``; of ``vae/`` only the encoder is kept. Defaults to None (random
            weights; load an mmdiff checkpoint with ``init_cfg``).
        vae (str | dict, optional): The ``AutoencoderKL`` of a latent-diffusion U-Net: a preset of
            :data:`VAE_PRESETS` (``'sd'``, ``'sd-tiny'``) or its keyword arguments. Images are encoded to the
            posterior mean x ``scaling_factor`` and the U-Net runs on those latents. None takes ``model_dir``'s
            ``vae/`` when it has one (a given preset or dict is checked against it), else the U-Net runs on
            pixels. Defaults to None.
        vae_latents (str): ``'scaled'``: the posterior mode, shifted and multiplied by the VAE's ``scaling_factor``
            (what the U-Net was trained on); ``'unscaled'``: the raw mode, as VPD feeds it. Defaults to
            ``'scaled'``.
        context (dict, optional): What a ``UNet2DConditionModel`` cross-attends to, as
            :class:`LatentContext` arguments: ``dict(type='zero', num_tokens=77)``, ``dict(type='file',
            path='empty_prompt.pth')``, ``dict(type='learnable', path=None, num_tokens=77, adapter=False)``, or VPD's
            ``dict(type='file', path='class_embeddings.pth', num_tokens=150, adapter=True)``. Required for such a
            U-Net, refused for others. Defaults to None.
        noise_scheduler (dict, optional): A diffusers scheduler as ``dict(type='DDPMScheduler', **config)``
            (``beta_schedule='linear'`` or ``'squaredcos_cap_v2'`` for the cosine schedule). None takes
            ``model_dir``'s ``scheduler/`` when it has one, else the linear DDPM schedule with T = 1000.
            Defaults to None.
        timesteps (int | Sequence[int]): Noise step(s) in [0, T). Defaults to (150,).
        noise_mode (str): ``'fixed'``: seeded noise that depends only on the pixel position, identical for an
            image whatever its batch (reproducible evaluation); ``'random'``: fresh noise each call (training
            augmentation); ``'none'``: the clean image with the time embedding of ``timesteps`` only.
            Defaults to ``'fixed'``.
        noise_seed (int): Seed of the ``'fixed'`` noise. Defaults to 0.
        num_noise_draws (int): Features are averaged over this many noise draws (an ensemble, as DIFT does).
            Defaults to 1.
        out_strides (Sequence[int], optional): Strides of the pyramid; each level is the decoder's last layer
            at that stride. ``out_blocks`` takes over from the default. Defaults to (4, 8, 16, 32).
        out_blocks (Sequence[str | int], optional): Taps by submodule name (``'mid_block'``,
            ``'up_blocks.1.attentions.1'``) or by diffssl block number (1-based; 24 is the papers' block).
            Defaults to None.
        attention_maps (Sequence[int], optional): Output strides whose features get VPD's cross-attention maps
            appended as extra channels: the mean over the encoder's and decoder's cross-attention layers at that
            stride of their softmax(QK^T) averaged over heads, one channel per context token (VPD:
            ``(16, 32)`` with 150 class embeddings). They come from the same U-Net pass. Defaults to None.
        attention_maps_grad (bool): Whether a loss on the map channels trains what made the maps (the context
            adapter, the cross-attention projections). False detaches them, as VPD's checkpointed transformer
            blocks compute them without gradient (its published behaviour); the features still carry theirs.
            Defaults to True.
        resample_missing_strides (bool): With ``out_strides``, produce a stride the decoder lacks by bilinear
            upsampling (or average pooling) of the nearest one, e.g. stride 4 from a latent U-Net's stride 8.
            Defaults to False (such a stride is an error).
        projection_channels (Sequence[int], optional): Per output, the width of a trainable 1x1 convolution
            applied after fusion. Defaults to None (no projection).
        timestep_fusion (str): ``'concat'`` (channels add up, in timestep order), ``'mean'`` or ``'stack'``
            (outputs are ``(N, T, C, h, w)``, for fusion heads). Defaults to ``'concat'``.
        class_label (int, optional): The label a class-conditional U-Net is run with, when ``forward`` is given
            no per-image ``class_labels``. None (for such a U-Net) requires them at every call. Defaults to None.
        frozen (bool): Run the U-Net in eval mode under ``no_grad`` with no parameter requiring grad, also
            after ``train()``. Defaults to True.
        with_cp (bool): Gradient checkpointing of the U-Net's blocks (fine-tuning only). Defaults to False.
        dtype (str): ``'float32'``, or ``'bfloat16'`` / ``'float16'`` to run the U-Net under autocast; outputs
            are float32. Defaults to ``'float32'``.
        weights_dtype (str): The dtype the frozen U-Net's weights are kept in: ``'bfloat16'`` / ``'float16'``
            (with the same ``dtype``) casts them once instead of at every autocast call and halves their memory;
            float32 checkpoints still load (cast on loading). The VAE encoder, context and projections stay
            float32. Defaults to ``'float32'``.
        channels_last (bool): Run the U-Net's convolutions in the channels-last memory format (faster
            convolutions with bf16/fp16 on GPUs). Defaults to False.
        attention (str): ``'sdpa'``: PyTorch's fused ``scaled_dot_product_attention`` (flash / memory-efficient
            kernels where the device has them); ``'math'``: diffusers' explicit softmax(QK^T)V. Defaults to
            ``'sdpa'``.
        torch_compile (bool | dict): Compile the U-Net pass with ``torch.compile`` (a dict gives its keyword
            arguments, e.g. ``dict(mode='max-autotune')``; ``dict(mode='reduce-overhead')`` replays CUDA
            graphs on a GPU, its features copied out of the graph memory). The first forward per input shape
            pays the compilation (about 1.5 minutes for ``'adm-tiny'`` on a 2-core CPU). Defaults to False.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)`` loads an mmdiff checkpoint (a
            converted one, or a :class:`~mmdiff.models.DiffusionPretrainer` run's) strictly: a missing,
            unexpected or misshaped U-Net weight is an error. ``prefix='...'`` takes a sub-model's weights;
            ``weights='ema'`` (default) or ``'raw'`` picks a run's EMA or trained weights. Keep None otherwise: a
            layer initialiser would overwrite the U-Net. Defaults to None.

    Example:
        >>> import torch
        >>> from mmdiff.models import DiffusionUNetBackbone
        >>> self = DiffusionUNetBackbone(arch='adm-tiny', timesteps=(90, 150))
        >>> self.out_channels, self.out_strides
        ((64, 64, 128, 128), (4, 8, 16, 32))
        >>> for level in self(torch.rand(1, 3, 32, 32) * 2 - 1):
        ...     print(tuple(level.shape))
        (1, 64, 8, 8)
        (1, 64, 4, 4)
        (1, 128, 2, 2)
        (1, 128, 1, 1)
    """
    arch_settings = UNET_PRESETS
    new_layer_prefixes = ('projections.', )  # layers a U-Net checkpoint does not hold: they start fresh
    pixel_range = (-1.0, 1.0)  # what the data preprocessor must map pixels 0 and 255 to (checked at build)

    def __init__(self,
                 arch: Union[str, dict, None] = 'adm-256u',
                 model_dir: Optional[str] = None,
                 vae: Union[str, dict, None] = None,
                 vae_latents: str = 'scaled',
                 context: Optional[dict] = None,
                 noise_scheduler: Optional[dict] = None,
                 timesteps: Union[int, Sequence[int]] = (150, ),
                 noise_mode: str = 'fixed',
                 noise_seed: int = 0,
                 num_noise_draws: int = 1,
                 out_strides: Optional[Sequence[int]] = (4, 8, 16, 32),
                 out_blocks: Optional[Sequence[Union[str, int]]] = None,
                 attention_maps: Optional[Sequence[int]] = None,
                 attention_maps_grad: bool = True,
                 resample_missing_strides: bool = False,
                 projection_channels: Optional[Sequence[int]] = None,
                 timestep_fusion: str = 'concat',
                 class_label: Optional[int] = None,
                 frozen: bool = True,
                 with_cp: bool = False,
                 dtype: str = 'float32',
                 weights_dtype: str = 'float32',
                 channels_last: bool = False,
                 attention: str = 'sdpa',
                 torch_compile: Union[bool, dict] = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_pretrained(init_cfg)
        check_noise_arguments(noise_mode, num_noise_draws, noise_seed)
        check_choice('timestep_fusion', timestep_fusion, FUSIONS)
        check_precision(dtype, weights_dtype, frozen)
        if not attention_maps_grad and attention_maps is None:
            raise ValueError('attention_maps_grad=False detaches the cross-attention maps, but attention_maps is None '
                             '(no maps are appended); give attention_maps or leave attention_maps_grad=True')
        if with_cp and frozen:
            raise ValueError('with_cp=True checkpoints gradients, but a frozen U-Net has none; set frozen=False '
                             'to fine-tune with gradient checkpointing')

        # 1. the U-Net, its VAE and context, and its noise schedule
        self.unet = build_unet(arch, model_dir)
        self.vae_encoder = build_vae_encoder(self.unet, vae, vae_latents, model_dir)
        self.context = build_context(self.unet, context)
        self.noise_scheduler = build_noise_scheduler(noise_scheduler, model_dir)
        self.num_train_timesteps = self.noise_scheduler.config.num_train_timesteps
        self.timesteps = check_timesteps(timesteps, self.num_train_timesteps)
        self.register_buffer('_timesteps', torch.tensor(self.timesteps, dtype=torch.long), persistent=False)
        self.class_label = check_class_label(self.unet, class_label)
        self.noise_mode = noise_mode
        self.num_noise_draws = num_noise_draws
        self.fixed_noise = FixedNoise(noise_seed)
        self.timestep_fusion = timestep_fusion
        self.frozen = frozen
        self.with_cp = with_cp
        self.autocast_dtype = DTYPES[dtype]
        self.channels_last = channels_last
        prepare_unet(self.unet, weights_dtype, channels_last, attention)
        self.unet_pass = UNetPass(self.unet)
        self._unet_pass = compile_pass(self.run_unet, torch_compile)

        # 2. the taps and the pyramid they make
        latent_stride = 1 if self.vae_encoder is None else self.vae_encoder.latent_stride
        context_tokens = None if self.context is None else self.context.num_tokens
        self.taps = list_unet_taps(self.unet, input_stride=latent_stride, context_tokens=context_tokens)
        self.downsample_factor = max(tap.stride for tap in self.taps)
        self.feature_info = declare_feature_info(self.taps, self.timesteps, timestep_fusion, out_strides, out_blocks,
                                                 resample_missing_strides, attention_maps, context_tokens,
                                                 projection_channels)
        by_name = {tap.name: tap for tap in self.taps}
        self._levels = [(by_name[level.block], level.stride) for level in self.feature_info]
        self.output_taps = tuple(tap for tap, _ in self._levels)
        self._level_maps = [level.attention_maps for level in self.feature_info]
        self.attention_maps_grad = attention_maps_grad
        self.projections = None if projection_channels is None else nn.ModuleList(
            nn.Conv2d(level.projected_from, level.channels, kernel_size=1) for level in self.feature_info)

        # 3. training mode
        self._input_range_checked = False
        self._freeze()

    # ------------------------------------------------------------------------------------------------ building
    def init_weights(self) -> None:
        """Load ``init_cfg``'s checkpoint strictly: every U-Net weight must be there with its shape.

        Only new layers (:attr:`new_layer_prefixes`: the projections) may be missing; they keep their fresh
        initialisation. Without a ``Pretrained`` init_cfg this is :meth:`BaseModule.init_weights`.
        """
        if not isinstance(self.init_cfg, dict) or self.init_cfg.get('type') != 'Pretrained':
            super().init_weights()
            return
        checkpoint = load_checkpoint_file(self.init_cfg['checkpoint'])
        weights = self.init_cfg.get('weights', 'ema')
        state = checkpoint_weights(checkpoint, weights, repr(self.init_cfg['checkpoint']))
        prefix = self.init_cfg.get('prefix')
        if prefix:
            state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
        own = self.state_dict()
        check_weights_fit(own, state, self.init_cfg['checkpoint'], 'this backbone', self.new_layer_prefixes)
        self.load_state_dict(state, strict=False)
        fresh = sorted(own.keys() - state.keys())
        kind = f'{weights} ' if 'ema_state_dict' in checkpoint else ''
        print_log(f'loaded {len(state)} {kind}backbone weights from {self.init_cfg["checkpoint"]}'
                  + (f'; kept the fresh initialisation of {fresh}' if fresh else ''), logger='current')
        self._is_init = True

    # ----------------------------------------------------------------------------------------------- training
    @property
    def pass_outputs(self) -> Tuple[str, ...]:
        """The U-Net outputs one forward needs: the output taps and their cross-attention maps."""
        return tuple(dict.fromkeys([tap.name for tap in self.output_taps]
                                   + [name for maps in self._level_maps for name in maps]))

    @property
    def unet_needs_grad(self) -> bool:
        """Whether gradients must flow through the U-Net: to fine-tune it, or to reach a learnable context."""
        return not self.frozen or (self.context is not None and any(
            p.requires_grad for p in self.context.parameters()))

    def _freeze(self) -> None:
        """Freeze the VAE encoder, and the whole U-Net when ``frozen`` or else every U-Net parameter the pass
        never uses (the blocks behind the last output, the layers behind it in its block, the output head): left
        trainable, they would make DDP wait for gradients that never come."""
        if self.vae_encoder is not None:
            self.vae_encoder.eval()
            self.vae_encoder.requires_grad_(False)
        if self.frozen:
            self.unet.eval()
            self.unet.requires_grad_(False)
            return
        used = {id(p) for module in self.unet_pass.modules_used(self.pass_outputs) for p in module.parameters()}
        for parameter in self.unet.parameters():
            if id(parameter) not in used:
                parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> 'DiffusionUNetBackbone':
        """Set training mode; the frozen U-Net stays in eval mode."""
        super().train(mode)
        self._freeze()
        return self

    # ------------------------------------------------------------------------------------------------ forward
    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each output, in output order."""
        return tuple(level.channels for level in self.feature_info)

    @property
    def out_strides(self) -> Tuple[int, ...]:
        """Stride of each output, in output order."""
        return tuple(level.stride for level in self.feature_info)

    @property
    def in_channels(self) -> int:
        """Channels of the input images."""
        return self.unet.config.in_channels if self.vae_encoder is None else self.vae_encoder.in_channels

    def describe_taps(self) -> str:
        """A table of every tappable block of this U-Net with its diffssl number, channels and stride."""
        return format_taps(self.taps)

    def noised(self, images: Tensor, per_image: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Stack draws x timesteps x images ``(N, C, H, W)`` and noise them as configured: ``(K*T*N, C, H, W)``
        samples and ``(K*T*N,)`` steps (:func:`noised_stack`); ``per_image`` ``(N,)`` replaces the configured
        timesteps with one step per image (T = 1)."""
        timesteps = self._timesteps if per_image is None else per_image.to(images.device)
        return noised_stack(images, timesteps, self.num_noise_draws, per_image is not None, self.noise_mode,
                            self.fixed_noise, self.noise_scheduler)

    def run_unet(self, sample: Tensor, timesteps: Tensor, context: Optional[Tensor],
                 labels: Optional[Tensor]) -> Dict[str, Tensor]:
        """The U-Net pass of one forward, up to the last output and no further (:class:`UNetPass`).

        This is the seam a subclass overrides to change the pass (DifFeed runs two, with feedback
        ``additions``); it returns every name in :attr:`pass_outputs`.

        Args:
            sample (Tensor): Noised images or latents ``(B, C, h, w)``.
            timesteps (Tensor): Their noise steps ``(B,)``.
            context (Tensor, optional): Cross-attention tokens ``(B, L, D)`` for a ``UNet2DConditionModel``.
            labels (Tensor, optional): Class labels ``(B,)`` for a class-conditional U-Net.

        Returns:
            dict[str, Tensor]: Tap name -> ``(B, C, h, w)`` output.
        """
        return self.unet_pass(sample, timesteps, self.pass_outputs, context=context, labels=labels,
                              checkpointing=self.with_cp)

    def forward(self, inputs: Tensor, timesteps: Optional[Tensor] = None,
                class_labels: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        """Noise the images, run the U-Net to the last tap and return the pyramid.

        Args:
            inputs (Tensor): Images ``(N, C, H, W)`` normalised to [-1, 1]; any H and W.
            timesteps (Tensor, optional): One noise step per image ``(N,)``, in place of the configured one (e.g.
                drawn by RepFusion's timestep policy); needs a backbone configured with a single timestep.
                Defaults to None.
            class_labels (Tensor, optional): One label per image ``(N,)`` for a class-conditional U-Net, in
                place of ``class_label`` (e.g. the ground truth, as RepFusion's ImageNet-64 teacher takes it).
                Defaults to None.

        Returns:
            tuple[Tensor]: One tensor per :attr:`feature_info` entry, by increasing stride:
            ``(N, channels, ceil(H / stride), ceil(W / stride))``, or ``(N, T, channels, h, w)`` with
            ``timestep_fusion='stack'``.
        """
        check_image_batch(inputs, self.in_channels, first_batch=not self._input_range_checked)
        self._input_range_checked = True
        if timesteps is not None:
            timesteps = check_per_image_timesteps(timesteps, inputs.shape[0], self.timesteps, self.num_train_timesteps)
        labels = per_image_class_labels(self.unet, self.class_label, class_labels, inputs.shape[0], inputs.device)
        size = inputs.shape[-2:]
        # 1. pad to a multiple of the U-Net's total downsampling, so skip connections line up
        pad_h = -size[0] % self.downsample_factor
        pad_w = -size[1] % self.downsample_factor
        images = F.pad(inputs, (0, pad_w, 0, pad_h)) if pad_h or pad_w else inputs
        # 2. a latent-diffusion U-Net denoises the VAE's latents of the images
        if self.vae_encoder is not None:
            with torch.no_grad():
                images = self.vae_encoder(images.float())
        # 3. noise every image to every timestep (and every draw) in one batch
        sample, timesteps = self.noised(images, timesteps)
        if self.channels_last:
            sample = sample.contiguous(memory_format=torch.channels_last)
        context = None if self.context is None else self.context(sample.shape[0])
        if labels is not None:  # every draw and timestep of an image has its label
            labels = labels.repeat(sample.shape[0] // labels.shape[0])
        # 4. run the U-Net to the last output and no further (in float32 without an autocast region, which a
        # meta tensor's device, used to check shapes without values, does not have)
        autocast = (contextlib.nullcontext() if self.autocast_dtype == torch.float32 else
                    torch.autocast(inputs.device.type, dtype=self.autocast_dtype))
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.unet_needs_grad), autocast:
            features = self._unet_pass(sample, timesteps, context, labels)
        # 5. assemble the pyramid (VPD's cross-attention maps appended where asked)
        return tuple(
            assemble_level(self._level_features(features, index), tap.stride, stride, size, self.num_noise_draws,
                           len(self.timesteps), self.timestep_fusion,
                           None if self.projections is None else self.projections[index])
            for index, (tap, stride) in enumerate(self._levels))

    def _level_features(self, features: Dict[str, Tensor], index: int) -> Tensor:
        """The tapped output of level ``index``, with the mean of its cross-attention maps appended."""
        feature = features[self._levels[index][0].name]
        maps = self._level_maps[index]
        if not maps:
            return feature
        mean_map = torch.stack([features[name] for name in maps]).mean(0)
        if not self.attention_maps_grad:
            mean_map = mean_map.detach()
        return torch.cat([feature, mean_map.to(feature.dtype)], dim=1)
