"""One explicit pass through a diffusers U-Net that returns the tapped outputs and stops after the last one.

:class:`UNetPass` lays the U-Net out as a flat plan of steps in forward order (``conv_in``, then each resnet,
attention and resampler of every block, the block outputs, the middle block's layers, ...), each named after the tap
it produces (:func:`~mmdiff.models.backbones.unet.taps.list_unet_taps`). A pass for a set of wanted taps runs the
plan up to the last wanted step and no further, like timm's ``forward_intermediates(stop_early=True)``: the layers,
resamplers and blocks behind it are never called. It calls the U-Net's own modules; only a resnet whose residual
branch is tapped (``....resnets.k.conv2``) is run through its parts, to return that branch before the shortcut is
added. There are no hooks, no exceptions and no state kept between calls, so the pass traces and exports
(``torch.jit.trace``, ``torch.export``, ONNX).

``additions`` is the one seam for feedback (DifFeed): tensors added to named encoder outputs, where they flow on to
the next layer and into the skip connection that layer pushes.

A text-conditioned U-Net's transformers also yield their cross-attention maps (``....transformer_blocks.b.attn2.map``,
VPD's extra channels): a transformer whose map is wanted runs through its parts
(:func:`~mmdiff.diffusers_compat.transformer_with_maps`) and returns maps and output together.
"""
from dataclasses import dataclass
from typing import Callable, Collection, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from mmdiff.diffusers_compat import (ResnetBlock2D, check_map_support, cross_attention_map_names, embedding_modules,
                                is_plain_attention, resnet_from_residual, resnet_residual, resnet_residual_modules,
                                time_embedding, transformer_with_maps)

# what a step does: see UNetPass._apply
STEP_KINDS = ('conv_in', 'resnet', 'residual', 'attention', 'resample', 'output')


@dataclass(frozen=True)
class PassStep:
    """One step of the plan.

    Args:
        name (str): The tap it produces (a submodule path, or a block name for a block's output).
        kind (str): One of :data:`STEP_KINDS`.
        module (nn.Module, optional): The U-Net module it calls (None for a block output).
        pops_skip (bool): A decoder resnet, whose input is the hidden state concatenated with the last skip.
        pushes_skip (bool): Its output becomes a skip connection (encoder layers, downsamplers, ``conv_in``).
        mid_attention (bool): An attention of the middle block, which diffusers calls with the time embedding.
        maps (tuple[str]): The cross-attention map names of a ``Transformer2DModel`` step, one per block.
    """
    name: str
    kind: str
    module: Optional[nn.Module] = None
    pops_skip: bool = False
    pushes_skip: bool = False
    mid_attention: bool = False
    maps: Tuple[str, ...] = ()


def _attention_step(attention: nn.Module, name: str, pushes_skip: bool = False,
                    mid_attention: bool = False) -> PassStep:
    maps = tuple(cross_attention_map_names(attention, name))
    return PassStep(name, 'attention', attention, pushes_skip=pushes_skip, mid_attention=mid_attention, maps=maps)


def _layer_steps(block: nn.Module, prefix: str, decoder: bool) -> List[PassStep]:
    """Steps of the (resnet, attention) layers of a down or up block, then its resampler."""
    steps = []
    attentions = getattr(block, 'attentions', None)
    for k, resnet in enumerate(block.resnets):
        attention = attentions[k] if attentions is not None and k < len(attentions) else None
        steps.append(PassStep(f'{prefix}.resnets.{k}.conv2', 'residual', resnet, pops_skip=decoder))
        steps.append(PassStep(f'{prefix}.resnets.{k}', 'resnet', resnet, pops_skip=decoder,
                              pushes_skip=not decoder and attention is None))
        if attention is not None:
            steps.append(_attention_step(attention, f'{prefix}.attentions.{k}', pushes_skip=not decoder))
    resamplers = block.downsamplers if not decoder else block.upsamplers
    if resamplers is not None:
        kind = 'upsamplers' if decoder else 'downsamplers'
        steps.append(PassStep(f'{prefix}.{kind}.0', 'resample', resamplers[0], pushes_skip=not decoder))
    steps.append(PassStep(prefix, 'output'))
    return steps


def _mid_steps(mid_block: nn.Module) -> List[PassStep]:
    """``resnets.0``, then (attention, resnet) pairs, then the block output ``mid_block``."""
    steps = [PassStep('mid_block.resnets.0.conv2', 'residual', mid_block.resnets[0]),
             PassStep('mid_block.resnets.0', 'resnet', mid_block.resnets[0])]
    for k, (attention, resnet) in enumerate(zip(mid_block.attentions, mid_block.resnets[1:])):
        if attention is not None:
            steps.append(_attention_step(attention, f'mid_block.attentions.{k}', mid_attention=True))
        steps.append(PassStep(f'mid_block.resnets.{k + 1}.conv2', 'residual', resnet))
        steps.append(PassStep(f'mid_block.resnets.{k + 1}', 'resnet', resnet))
    return steps + [PassStep('mid_block', 'output')]


class UNetPass:
    """The step plan of a diffusers ``UNet2DModel`` / ``UNet2DConditionModel`` and the pass that runs it.

    Args:
        unet (nn.Module): The U-Net (``conv_in``, ``down_blocks``, ``mid_block``, ``up_blocks``). Its modules are
            called, not copied.

    Example:
        >>> import torch
        >>> from mmdiff.models.backbones.unet import build_unet
        >>> unet_pass = UNetPass(build_unet('adm-tiny', None))
        >>> sample, timesteps = torch.rand(2, 3, 32, 32), torch.tensor([10, 10])
        >>> out = unet_pass(sample, timesteps, wanted=('mid_block', 'up_blocks.1.attentions.1'))
        >>> {name: tuple(feature.shape) for name, feature in out.items()}
        {'mid_block': (2, 64, 1, 1), 'up_blocks.1.attentions.1': (2, 64, 2, 2)}
    """

    def __init__(self, unet: nn.Module) -> None:
        self.unet = unet
        steps = [PassStep('conv_in', 'conv_in', unet.conv_in, pushes_skip=True)]
        for j, block in enumerate(unet.down_blocks):
            steps += _layer_steps(block, f'down_blocks.{j}', decoder=False)
        if unet.mid_block is not None:
            steps += _mid_steps(unet.mid_block)
        for j, block in enumerate(unet.up_blocks):
            steps += _layer_steps(block, f'up_blocks.{j}', decoder=True)
        self.steps = tuple(steps)
        self._position = {}
        for index, step in enumerate(self.steps):
            self._position.update({name: index for name in step.maps + (step.name, )})

    @property
    def step_names(self) -> List[str]:
        """Every name a pass can return, in forward order (a transformer's maps before its output)."""
        return list(self._position)

    def plan(self, wanted: Collection[str]) -> tuple:
        """The steps a pass for ``wanted`` runs: up to the last wanted one, the rest pruned; a resnet's residual
        branch is split off only where it is wanted (elsewhere the resnet runs whole)."""
        unknown = [name for name in wanted if name not in self._position]
        if unknown or not wanted:
            raise KeyError(f'{unknown or "nothing"} cannot be returned by this U-Net pass; valid names are: '
                           f'{", ".join(self._position)}')
        last = max(self._position[name] for name in wanted)
        for step in self.steps[:last + 1]:
            if any(name in wanted for name in step.maps):
                check_map_support(step.module, step.name)
        return tuple(step for step in self.steps[:last + 1] if step.kind != 'residual' or step.name in wanted)

    def parameters_used(self, wanted: Collection[str]) -> List[nn.Parameter]:
        """The parameters of the U-Net modules a pass for ``wanted`` calls: only they can get a gradient."""
        modules = embedding_modules(self.unet)
        steps = self.plan(wanted)
        completed = {step.name for step in steps if step.kind == 'resnet'}
        for step in steps:
            if step.kind == 'residual' and step.name.rsplit('.', 1)[0] not in completed:
                modules += resnet_residual_modules(step.module)  # only its residual branch runs: not its shortcut
            elif step.module is not None:
                modules.append(step.module)
        return [p for module in modules for p in module.parameters()]

    def __call__(self,
                 sample: Tensor,
                 timesteps: Tensor,
                 wanted: Collection[str],
                 context: Optional[Tensor] = None,
                 labels: Optional[Tensor] = None,
                 pooled: Optional[Tensor] = None,
                 image_size: Optional[Tuple[int, int]] = None,
                 additions: Optional[Mapping[str, Tensor]] = None,
                 checkpointing: bool = False) -> Dict[str, Tensor]:
        """Run the U-Net up to the last wanted output.

        Args:
            sample (Tensor): The U-Net input ``(B, C, h, w)``; h and w multiples of its total downsampling.
            timesteps (Tensor): Noise steps ``(B,)``.
            wanted (Collection[str]): Names from :attr:`step_names` (the tap names).
            context (Tensor, optional): Cross-attention tokens ``(B, L, D)`` of a ``UNet2DConditionModel``.
            labels (Tensor, optional): Class labels ``(B,)`` of a class-conditional U-Net.
            pooled (Tensor, optional): SDXL's pooled text embedding ``(B, P)``, for a U-Net with
                ``addition_embed_type='text_time'``.
            image_size (tuple[int, int], optional): The images' (H, W): SDXL's time ids are (H, W, 0, 0, H, W), the
                original size, crop and target size its pipeline passes by default.
            additions (Mapping[str, Tensor], optional): Tensors added to these outputs before they flow on (the
                feedback seam); they must be encoder outputs ahead of the last wanted one. Defaults to None.
            checkpointing (bool): Gradient checkpointing of each layer while gradients are enabled.

        Returns:
            dict[str, Tensor]: Each wanted output (an encoder output includes its addition); a cross-attention map
            is ``(B, L, h, w)``.
        """
        additions = {} if additions is None else additions
        steps = self.plan(wanted)
        reached = {step.name for step in steps}
        late = [name for name in additions if name not in reached]
        if late:
            raise KeyError(f'additions to {late} come after the last wanted output of this pass')
        call = _checkpointed if checkpointing and torch.is_grad_enabled() else _direct
        emb = time_embedding(self.unet, timesteps, labels, sample.dtype, pooled, image_size)
        hidden, skips, residual = sample, [], None
        outputs: Dict[str, Tensor] = {}
        for step in steps:
            if step.kind == 'residual':
                residual = call(resnet_residual, step.module, self._resnet_input(step, hidden, skips, peek=True), emb)
                emitted = residual
            else:
                if any(name in wanted for name in step.maps):
                    hidden, maps = call(transformer_with_maps, step.module, hidden, context)
                    outputs.update((name, head_mean) for name, head_mean in zip(step.maps, maps) if name in wanted)
                else:
                    hidden = self._apply(step, hidden, skips, emb, context, residual, call)
                residual = None
                if step.name in additions:
                    hidden = hidden + additions[step.name].to(hidden.dtype)
                if step.pushes_skip:
                    skips.append(hidden)
                emitted = hidden
            if step.name in wanted:
                outputs[step.name] = emitted
        return outputs

    @staticmethod
    def _resnet_input(step: PassStep, hidden: Tensor, skips: List[Tensor], peek: bool) -> Tensor:
        """A decoder resnet reads the hidden state concatenated with the last skip (popped unless ``peek``)."""
        if not step.pops_skip:
            return hidden
        return torch.cat([hidden, skips[-1] if peek else skips.pop()], dim=1)

    def _apply(self, step: PassStep, hidden: Tensor, skips: List[Tensor], emb: Tensor, context: Optional[Tensor],
               residual: Optional[Tensor], call: Callable) -> Tensor:
        module = step.module
        if step.kind == 'conv_in':
            return module(hidden)
        if step.kind == 'resnet':
            hidden = self._resnet_input(step, hidden, skips, peek=False)
            if residual is not None:  # its residual branch was tapped: complete the resnet from it
                return resnet_from_residual(module, hidden, residual)
            return call(module, hidden, emb)
        if step.kind == 'attention':
            if not is_plain_attention(module):  # a Transformer2DModel: cross-attention to the context
                return call(_cross_attention, module, hidden, context)
            return call(_mid_attention, module, hidden, emb) if step.mid_attention else call(module, hidden)
        if step.kind == 'resample':
            return call(module, hidden, emb) if isinstance(module, ResnetBlock2D) else call(module, hidden)
        return hidden  # a block's output: the hidden state as it leaves the block


def _cross_attention(transformer: nn.Module, hidden: Tensor, context: Optional[Tensor]) -> Tensor:
    return transformer(hidden, encoder_hidden_states=context, return_dict=False)[0]


def _mid_attention(attention: nn.Module, hidden: Tensor, emb: Tensor) -> Tensor:
    return attention(hidden, temb=emb)


def _direct(function: Callable, *args) -> Tensor:
    return function(*args)


def _checkpointed(function: Callable, *args) -> Tensor:
    return checkpoint(function, *args, use_reentrant=False)
