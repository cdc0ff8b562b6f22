"""DiffusionBackbone: noised multi-scale features of any diffusers denoising model, the core the families share."""
import contextlib
from typing import ContextManager, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdiff.utils.pretrained_init import is_pretrained, load_pretrained
from mmdiff.utils.choices import check_choice
from .backbone_inputs import (check_gradient_options, check_image_batch, check_noise_arguments,
                              check_per_image_timesteps, check_pretrained, per_image_class_labels)
from .family import DiffusionFamily
from .latent_context import LatentContext
from .noising import FixedNoise, noised_stack
from .pyramid import FUSIONS, FeatureLevel, assemble_level, level_feature, level_modules
from .spec import resolve_spec
from .speed_options import DTYPES, check_precision, compile_pass, prepare_model
from .taps import Tap, format_taps


class DiffusionBackbone(BaseModule):
    """Multi-scale features of a denoising model, taken from noised images (or noised VAE latents): the core every
    model family shares.

    The images (for a latent-diffusion model: their VAE latents) are noised to each of ``timesteps`` with the
    model's noise schedule, the model runs once on the whole (draws x timesteps x batch) stack, and the outputs
    of the tapped blocks are returned as a feature pyramid sorted by increasing stride, like any mm backbone.
    Taps at the same stride stay separate outputs, in forward order; the timesteps of one tap are fused into one
    output by ``timestep_fusion``. The model stops after the last tapped block. With a VAE, strides are relative
    to the image: latent stride (8) x model stride. ``feature_info``, ``out_channels`` and ``out_strides``
    describe the outputs before any forward pass, so a neck's ``in_channels`` can be checked against them.

    A registered subclass names its :attr:`family` (:class:`~mmdiff.models.backbones.core.family.DiffusionFamily`),
    which owns what differs between model families: building the model, listing its taps and the pass to them.
    Everything else is here, and the arguments mean the same for every family.

    Args:
        arch (str | dict | None): A preset of the family's :attr:`arch_settings` or a dict of the model's keyword
            arguments. With ``model_dir``, None takes the folder's architecture; a preset or dict is then checked
            against it.
        model_dir (str, optional): A local diffusers folder (``config.json`` + weights, or a pipeline folder
            with the model's folder (``unet/``, ``transformer/``), ``scheduler/`` and, for latent diffusion,
            ``vae/``), loaded with ``local_files_only=True``; of ``vae/`` only the encoder is kept. Defaults to None
            (random weights; load an mmdiff checkpoint with ``init_cfg``).
        vae (str | dict, optional): The ``AutoencoderKL`` of a latent-diffusion model: a preset of
            :data:`VAE_PRESETS` (``'sd'``, ``'sdxl'``, ``'sd3'``, ``'flux'``, Sana's ``AutoencoderDC`` ``'sana'``,
            and tiny ones) or its keyword arguments (``type='AutoencoderDC'`` for a deep-compression one). Images are
            encoded to the posterior mean x ``scaling_factor`` and the model runs on those
            latents. None takes ``model_dir``'s ``vae/`` when it has one (a given preset or dict is checked against
            it), else the model runs on pixels. Defaults to None.
        vae_latents (str): ``'scaled'``: the posterior mode, shifted and multiplied by the VAE's ``scaling_factor``
            (what the model was trained on); ``'unscaled'``: the raw mode, as VPD feeds it. Defaults to
            ``'scaled'``.
        context (dict, optional): What a model with cross-attention (``UNet2DConditionModel``) attends to, as
            :class:`LatentContext` arguments: ``dict(type='zero', num_tokens=77)``, ``dict(type='file',
            path='empty_prompt.pth')``, ``dict(type='learnable', path=None, num_tokens=77, adapter=False)``, or VPD's
            ``dict(type='file', path='class_embeddings.pth', num_tokens=150, adapter=True)``. For SDXL's added
            conditioning the file also holds the pooled text embedding
            (``tools/model_converters/make_prompt_embedding.py`` writes
            both) and the six time ids are the input size, crop (0, 0) and target size, as SDXL's pipeline makes
            them. Required for such a model, refused for others. Defaults to None.
        noise_scheduler (dict, optional): A diffusers scheduler as ``dict(type='DDPMScheduler', **config)``
            (``beta_schedule='linear'`` or ``'squaredcos_cap_v2'`` for the cosine schedule; ``'DDIMScheduler'``;
            ``'FlowMatchEulerDiscreteScheduler'``: ``x_t = (1 - t / T) x + (t / T) noise``). None takes
            ``model_dir``'s ``scheduler/`` when it has one (noised with its betas, or its flow matching), else the
            family's (flow matching for SD3 and FLUX, the linear DDPM schedule with T = 1000 for the others).
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
            ``(16, 32)`` with 150 class embeddings). They come from the same pass. Defaults to None.
        attention_maps_grad (bool): Whether a loss on the map channels trains what made the maps (the context
            adapter, the cross-attention projections). False detaches them, as VPD's checkpointed transformer
            blocks compute them without gradient (its published behaviour); the features still carry theirs.
            Defaults to True.
        resample_missing_strides (bool): With ``out_strides``, produce a stride the decoder lacks by bilinear
            upsampling (or average pooling) of the nearest one, e.g. stride 4 from a latent U-Net's stride 8.
            Defaults to False (such a stride is an error).
        projection_channels (Sequence[int], optional): Per output, the width of a trainable 1x1 convolution
            applied after fusion. Defaults to None (no projection).
        pyramid (str): How levels at other strides than their block's are made: ``'resample'`` (see
            ``resample_missing_strides``), or ``'simple'``: ViTDet's simple feature pyramid (Li et al. 2022) makes
            every stride of ``out_strides`` from one block (``out_blocks``' only entry, else the last) with
            trainable layers: x4 and x2 transposed convolutions (to 1/4 and 1/2 of the channels), x1, and x1/2
            max-pooling. Defaults to ``'resample'``.
        timestep_fusion (str): ``'concat'`` (channels add up, in timestep order), ``'mean'`` or ``'stack'``
            (outputs are ``(N, T, C, h, w)``, for fusion heads). Defaults to ``'concat'``.
        class_label (int, optional): The label a class-conditional model is run with, when ``forward`` is given
            no per-image ``class_labels``. None requires them at every call, or runs a model's null class where
            it has one (DiT). Defaults to None.
        frozen (bool): Run the model in eval mode under ``no_grad`` with no parameter requiring grad, also
            after ``train()``. Defaults to True.
        with_cp (bool): Gradient checkpointing of the model's blocks (fine-tuning only). Defaults to False.
        dtype (str): ``'float32'``, or ``'bfloat16'`` / ``'float16'`` to run the model under autocast; outputs
            are float32. Defaults to ``'float32'``.
        weights_dtype (str): The dtype the frozen model's weights are kept in: ``'bfloat16'`` / ``'float16'``
            (with the same ``dtype``) casts them once instead of at every autocast call and halves their memory;
            float32 checkpoints still load (cast on loading). The VAE encoder, context and projections stay
            float32. Defaults to ``'float32'``.
        channels_last (bool): Run the model's convolutions in the channels-last memory format (faster
            convolutions with bf16/fp16 on GPUs). Defaults to False.
        attention (str): ``'sdpa'``: PyTorch's fused ``scaled_dot_product_attention`` (flash / memory-efficient
            kernels where the device has them); ``'math'``: diffusers' explicit softmax(QK^T)V. Defaults to
            ``'sdpa'``.
        torch_compile (bool | dict): Compile the model pass with ``torch.compile`` (a dict gives its keyword
            arguments, e.g. ``dict(mode='max-autotune')``; ``dict(mode='reduce-overhead')`` replays CUDA
            graphs on a GPU, its features copied out of the graph memory). The first forward per input shape
            pays the compilation (about 1.5 minutes for ``'adm-tiny'`` on a 2-core CPU). Defaults to False.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)`` loads an mmdiff checkpoint (a
            converted one, or a :class:`~mmdiff.models.DiffusionPretrainer` run's) strictly: a missing,
            unexpected or misshaped model weight is an error. ``prefix='...'`` takes a sub-model's weights;
            ``weights='ema'`` (default) or ``'raw'`` picks a run's EMA or trained weights. Keep None otherwise: a
            layer initialiser would overwrite the model. Defaults to None.

    """
    family: Optional[DiffusionFamily] = None  # set by each registered subclass
    new_layer_prefixes = ('projections.', )  # layers a model checkpoint does not hold: they start fresh
    pixel_range = (-1.0, 1.0)  # what the data preprocessor must map pixels 0 and 255 to (checked at build)

    def __init__(self,
                 arch: Union[str, dict, None] = None,
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
                 pyramid: str = 'resample',
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
        if self.family is None:
            raise TypeError(f'{type(self).__name__} names no model family; build a registered subclass such as '
                            f'DiffusionUNetBackbone')
        check_pretrained(init_cfg)
        check_noise_arguments(noise_mode, num_noise_draws, noise_seed)
        check_choice('timestep_fusion', timestep_fusion, FUSIONS)
        check_precision(dtype, weights_dtype, frozen)
        check_gradient_options(attention_maps_grad, attention_maps, with_cp, frozen, self.family.name)

        # 1. the description, resolved once from configuration files; then the parts it names
        self.spec = resolve_spec(self.family, arch, model_dir, vae, vae_latents, context, noise_scheduler, timesteps,
                                 out_strides, out_blocks, attention_maps, resample_missing_strides,
                                 projection_channels, timestep_fusion, class_label, pyramid)
        self.add_module(self.family.module_name, self.family.build_model(self.spec.model))
        self.vae_encoder = None if self.spec.vae is None else self.spec.vae.build()
        self.context = None if self.spec.context is None else LatentContext(**self.spec.context)
        self.noise_scheduler = self.spec.scheduler.build()
        self.num_train_timesteps = self.spec.scheduler.num_train_timesteps
        self.timesteps = self.spec.timesteps
        self.register_buffer('_timesteps', torch.tensor(self.timesteps, dtype=torch.long), persistent=False)
        self.class_label = self.spec.class_label
        self.noise_mode = noise_mode
        self.num_noise_draws = num_noise_draws
        self.fixed_noise = FixedNoise(noise_seed)
        self.frozen = frozen
        self.with_cp = with_cp
        self.autocast_dtype = DTYPES[dtype]
        self.channels_last = channels_last
        self.attention_maps_grad = attention_maps_grad
        prepare_model(self.model, weights_dtype, channels_last, attention)
        self.model_pass = self.family.model_pass(self.model, **self.pass_options)
        self._compiled_pass = compile_pass(self.run_model, torch_compile)

        # 2. the outputs, as declared, and their projections
        self.taps = self.spec.taps
        self.downsample_factor = self.spec.downsample_factor
        self.feature_info: Tuple[FeatureLevel, ...] = self.spec.feature_info
        self.projections = level_modules(self.feature_info)  # 1x1 projections or simple-pyramid stages

        # 3. training mode
        self._input_range_checked = False
        self._freeze()

    @property
    def model(self) -> nn.Module:
        """The denoising model (for U-Nets also ``self.unet``)."""
        return getattr(self, self.family.module_name)

    # ------------------------------------------------------------------------------------------------ building
    def init_weights(self) -> None:
        """Load ``init_cfg``'s checkpoint strictly, with mmdiff's safe loader: every model weight must be there with
        its shape (:func:`~mmdiff.utils.pretrained_init.load_pretrained`).

        Only new layers (:attr:`new_layer_prefixes`: the projections) may be missing; they keep their fresh
        initialisation. Without a ``Pretrained`` init_cfg this is :meth:`BaseModule.init_weights`.
        """
        if not is_pretrained(self.init_cfg):
            super().init_weights()
            return
        load_pretrained(self, self.init_cfg, 'this backbone', self.new_layer_prefixes)
        self._is_init = True

    # ----------------------------------------------------------------------------------------------- training
    @property
    def pass_options(self) -> dict:
        """The family's options for its model pass (:meth:`DiffusionFamily.model_pass`); none by default."""
        return {}

    @property
    def output_taps(self) -> Tuple[Tap, ...]:
        """The tap of each output, in output order."""
        by_name = {tap.name: tap for tap in self.taps}
        return tuple(by_name[level.block] for level in self.feature_info)

    @property
    def pass_outputs(self) -> Tuple[str, ...]:
        """The model outputs one forward needs: the output taps and their cross-attention maps."""
        return tuple(dict.fromkeys([level.block for level in self.feature_info]
                                   + [name for level in self.feature_info for name in level.attention_maps]))

    @property
    def model_needs_grad(self) -> bool:
        """Whether gradients must flow through the model: to fine-tune it, or to reach a learnable context."""
        return not self.frozen or (self.context is not None and any(
            p.requires_grad for p in self.context.parameters()))

    def _freeze(self) -> None:
        """Freeze the VAE encoder, and the whole model when ``frozen`` or else every model parameter the pass
        never uses (the blocks behind the last output, the layers behind it in its block, the output head): left
        trainable, they would make DDP wait for gradients that never come."""
        if self.vae_encoder is not None:
            self.vae_encoder.eval()
            self.vae_encoder.requires_grad_(False)
        if self.frozen:
            self.model.eval()
            self.model.requires_grad_(False)
            return
        used = {id(p) for p in self.model_pass.parameters_used(self.pass_outputs)}
        for parameter in self.model.parameters():
            if id(parameter) not in used:
                parameter.requires_grad_(False)

    def train(self, mode: bool = True) -> 'DiffusionBackbone':
        """Set training mode; the frozen model stays in eval mode."""
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
        return self.spec.in_channels

    def describe_taps(self) -> str:
        """A table of every tappable block of this model with its diffssl number, channels and stride."""
        return format_taps(self.taps)

    def noised(self, images: Tensor, per_image: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Stack draws x timesteps x images ``(N, C, H, W)`` and noise them as configured: ``(K*T*N, C, H, W)``
        samples and ``(K*T*N,)`` steps (:func:`noised_stack`); ``per_image`` ``(N,)`` replaces the configured
        timesteps with one step per image (T = 1)."""
        timesteps = self._timesteps if per_image is None else per_image.to(images.device)
        return noised_stack(images, timesteps, self.num_noise_draws, per_image is not None, self.noise_mode,
                            self.fixed_noise, self.noise_scheduler)

    def conditions(self, batch_size: int, size: Tuple[int, int],
                   labels: Optional[Tensor]) -> Dict[str, Optional[Union[Tensor, Tuple[int, int], float]]]:
        """What the model is conditioned on for a ``(K*T*N)`` batch of images of ``size`` (H, W): the context
        ``(B, L, D)``, the class ``labels`` ``(B,)``, the pooled text embedding ``(B, P)`` and the images' size
        (the family's pass makes the size conditioning it needs from it, such as SDXL's time ids)."""
        context = None if self.context is None else self.context(batch_size)
        pooled = None if self.spec.inputs.pooled_dim is None else self.context.pooled_embedding(batch_size)
        return dict(context=context, labels=labels, pooled=pooled, image_size=(int(size[0]), int(size[1])))

    def run_model(self, sample: Tensor, timesteps: Tensor,
                  conditions: Dict[str, Optional[Union[Tensor, Tuple[int, int], float]]]) -> Dict[str, Tensor]:
        """The model pass of one forward, up to the last output and no further (the family's pass).

        This is the seam a subclass overrides to change the pass (DifFeed runs two, with feedback
        ``additions``); it returns every name in :attr:`pass_outputs`.

        Args:
            sample (Tensor): Noised images or latents ``(B, C, h, w)``.
            timesteps (Tensor): Their noise steps ``(B,)``.
            conditions (dict): :meth:`conditions`' context, labels, pooled embedding and image size.

        Returns:
            dict[str, Tensor]: Tap name -> ``(B, C, h, w)`` output.
        """
        return self.model_pass(sample, timesteps, self.pass_outputs, checkpointing=self.with_cp, **conditions)

    def model_precision(self, inputs: Tensor) -> ContextManager:
        """The region the model runs in: ``dtype``'s autocast, none for float32 (which a meta tensor's device, used to
        check shapes without values, lacks)."""
        return (contextlib.nullcontext() if self.autocast_dtype == torch.float32 else
                torch.autocast(inputs.device.type, dtype=self.autocast_dtype))

    def prepare_inputs(self, inputs: Tensor, timesteps: Optional[Tensor] = None,
                       class_labels: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, dict]:
        """What the model pass of :meth:`forward` is given: the noised (draws x timesteps x images) stack
        ``(K*T*N, C, h, w)`` (the images padded to the model's downsampling, encoded by the VAE), its steps
        ``(K*T*N,)`` and :meth:`conditions`. The arguments are :meth:`forward`'s."""
        check_image_batch(inputs, self.in_channels, first_batch=not self._input_range_checked)
        self._input_range_checked = True
        if timesteps is not None:
            timesteps = check_per_image_timesteps(timesteps, inputs.shape[0], self.timesteps, self.num_train_timesteps)
        labels = per_image_class_labels(self.spec.inputs.num_classes, self.class_label, class_labels,
                                        inputs.shape[0], inputs.device, self.family.name)
        size = inputs.shape[-2:]
        # 1. pad to a multiple of the model's total downsampling, so skip connections line up
        pad_h = -size[0] % self.downsample_factor
        pad_w = -size[1] % self.downsample_factor
        images = F.pad(inputs, (0, pad_w, 0, pad_h)) if pad_h or pad_w else inputs
        # 2. a latent-diffusion model denoises the VAE's latents of the images
        if self.vae_encoder is not None:
            full_precision = (contextlib.nullcontext() if images.device.type == 'meta' else
                              torch.autocast(images.device.type, enabled=False))
            with torch.no_grad(), full_precision:
                images = self.vae_encoder(images.float())
        # 3. noise every image to every timestep (and every draw) in one batch
        sample, timesteps = self.noised(images, timesteps)
        if self.channels_last:
            sample = sample.contiguous(memory_format=torch.channels_last)
        if labels is not None:  # every draw and timestep of an image has its label
            labels = labels.repeat(sample.shape[0] // labels.shape[0])
        return sample, timesteps, self.conditions(sample.shape[0], size, labels)

    def forward(self, inputs: Tensor, timesteps: Optional[Tensor] = None,
                class_labels: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        """Noise the images, run the model to the last tap and return the pyramid.

        Args:
            inputs (Tensor): Images ``(N, C, H, W)`` normalised to [-1, 1]; any H and W.
            timesteps (Tensor, optional): One noise step per image ``(N,)``, in place of the configured one (e.g.
                drawn by RepFusion's timestep policy); needs a backbone configured with a single timestep.
                Defaults to None.
            class_labels (Tensor, optional): One label per image ``(N,)`` for a class-conditional model, in
                place of ``class_label`` (e.g. the ground truth, as RepFusion's ImageNet-64 teacher takes it).
                Defaults to None.

        Returns:
            tuple[Tensor]: One tensor per :attr:`feature_info` entry, by increasing stride:
            ``(N, channels, ceil(H / stride), ceil(W / stride))``, or ``(N, T, channels, h, w)`` with
            ``timestep_fusion='stack'``.
        """
        sample, timesteps, conditions = self.prepare_inputs(inputs, timesteps, class_labels)
        # 1. run the model to the last output and no further
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.model_needs_grad), self.model_precision(inputs):
            features = self._compiled_pass(sample, timesteps, conditions)
        # 2. assemble the pyramid, level by declared level (VPD's cross-attention maps appended where asked)
        projections = [None] * len(self.feature_info) if self.projections is None else self.projections
        return tuple(
            assemble_level(level_feature(features, level, self.attention_maps_grad), level, inputs.shape[-2:],
                           self.num_noise_draws, projection)
            for level, projection in zip(self.feature_info, projections))
