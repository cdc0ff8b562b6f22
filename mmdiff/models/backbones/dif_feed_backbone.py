"""DifFeed: decoder features fed back into the encoder of a second U-Net pass."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from mmdiff.registry import MODELS, register_module
from mmdiff.utils.choices import check_choice
from .core.taps import Tap, resolve_taps
from .diffusion_unet import DiffusionUNetBackbone
from .unet.taps import mirror_encoder_tap

Block = Union[int, str]


class FeedbackAdapter(nn.Module):
    """diffssl's ``C_B_R`` adapter: a 1x1 convolution without bias to the encoder block's width, BatchNorm, ReLU.

    Args:
        in_channels (int): Channels of the decoder feature.
        out_channels (int): Channels of the encoder block it is added to.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, feature: Tensor) -> Tensor:
        """``(B, in_channels, h, w)`` -> ``(B, out_channels, h, w)``."""
        return torch.relu(self.norm(self.conv(feature)))


class GatedFeedbackAdapter(nn.Module):
    """mmdiff's variant: Conv3x3-BN-ReLU scaled by a per-channel gate that starts at zero.

    A fresh adapter adds nothing, so before training the second pass reproduces the plain features exactly; the
    gate still receives a gradient (the ReLU output), and through it the convolution and the norm.

    Args:
        in_channels (int): Channels of the decoder feature.
        out_channels (int): Channels of the encoder block it is added to.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)
        self.gate = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, feature: Tensor) -> Tensor:
        """``(B, in_channels, h, w)`` -> ``(B, out_channels, h, w)``."""
        return self.gate * torch.relu(self.norm(self.conv(feature)))


FEEDBACK_ADAPTERS = {'conv1x1-bn-relu': FeedbackAdapter, 'gated-conv3x3-bn-relu': GatedFeedbackAdapter}


@register_module(MODELS)
class DifFeedBackbone(DiffusionUNetBackbone):
    """DifFeed (Mukhopadhyay et al. 2023): a first U-Net pass computes decoder features; trainable adapters map
    them back and add them to the encoder blocks at the same resolution in a second pass, whose taps make the
    pyramid (or the classifier's feature).

    Both passes see the same noised inputs. The first runs without gradient up to the deepest fed-back decoder
    block; the second runs to the last tap with the adapters' outputs added to their encoder blocks' outputs
    (and so to the next block's input and to those blocks' skip connections). The U-Net stays frozen; the
    gradient flows through it to the adapters. Every other argument, and the pyramid interface, is the parent's,
    so the detection and segmentation configs switch DifFeed on by changing the backbone type.

    The published setting (diffssl ``scripts/feedback.sh``) feeds the ADM-256 decoder blocks
    ``(21, 24, 27, 30, 33, 36)`` back to their mirrors ``38 - b`` (17, 14, 11, 8, 5, 2) through
    ``adapter='conv1x1-bn-relu'`` (its ``C_B_R``) and reads block 24 of the second pass.

    Args:
        feedback (Sequence, optional): What is fed back where. Each entry is a decoder layer (diffssl number or
            submodule name), fed back to its mirror encoder block (the skip connection it concatenates, see
            :func:`~mmdiff.models.backbones.unet.taps.mirror_encoder_tap`), or an explicit ``(decoder, encoder)``
            pair at the same stride. None feeds every tapped decoder layer back to its mirror: with
            ``out_blocks=(24, )``, block 24 to block 14 (mmdiff's lighter variant). Defaults to None.
        adapter (str): ``'conv1x1-bn-relu'`` (:class:`FeedbackAdapter`, the published ``C_B_R``) or
            ``'gated-conv3x3-bn-relu'`` (:class:`GatedFeedbackAdapter`: zero-started, so an untrained DifFeed gives
            the plain features). Defaults to ``'conv1x1-bn-relu'``.
        **kwargs: :class:`DiffusionUNetBackbone` arguments.

    Example:
        >>> import torch
        >>> self = DifFeedBackbone(arch='adm-tiny', out_strides=None, out_blocks=(24, ),
        ...                        feedback=(21, 24, 27, 30, 33, 36))
        >>> [(decoder.diffssl_index, encoder.diffssl_index) for decoder, encoder in self.feedback_pairs]
        [(21, 17), (24, 14), (27, 11), (30, 8), (33, 5), (36, 2)]
        >>> tuple(self(torch.rand(2, 3, 32, 32) * 2 - 1)[0].shape)
        (2, 64, 2, 2)
    """

    new_layer_prefixes = DiffusionUNetBackbone.new_layer_prefixes + ('adapters.', )

    def __init__(self,
                 feedback: Optional[Sequence[Union[Block, Tuple[Block, Block]]]] = None,
                 adapter: str = 'conv1x1-bn-relu',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        check_choice('adapter', adapter, FEEDBACK_ADAPTERS)
        self.feedback_pairs = self._resolve_feedback(feedback)
        self.adapters = nn.ModuleList(FEEDBACK_ADAPTERS[adapter](decoder.channels, encoder.channels)
                                      for decoder, encoder in self.feedback_pairs)

    @property
    def model_needs_grad(self) -> bool:
        """Always: the adapters learn through the (frozen) U-Net's second pass."""
        return True

    def _resolve_feedback(self, feedback) -> List[Tuple[Tap, Tap]]:
        if feedback is None:
            decoders = [tap for tap in self.output_taps if tap.stage == 'decoder' and tap.kind == 'layer']
            if not decoders:
                raise ValueError('feedback=None feeds back the tapped decoder layers, but no output is a decoder '
                                 'layer; give feedback explicitly')
            feedback = [tap.name for tap in decoders]
        if not feedback:
            raise ValueError('feedback is empty; give at least one decoder block to feed back')
        last_output = max(self.taps.index(tap) for tap in self.output_taps)
        pairs = []
        for entry in feedback:
            if isinstance(entry, (tuple, list)):
                if len(entry) != 2:
                    raise ValueError(f'feedback pair {entry!r} must be (decoder block, encoder block)')
                decoder, encoder = resolve_taps(self.taps, entry, self.family.name)
            else:
                decoder = resolve_taps(self.taps, [entry], self.family.name)[0]
                encoder = mirror_encoder_tap(self.taps, decoder)
            if decoder.stage != 'decoder':
                raise ValueError(f'feedback source {decoder.name!r} is in the {decoder.stage}; feed back a decoder '
                                 f'block')
            if encoder.stage != 'encoder' or encoder.kind == 'block':
                raise ValueError(f'feedback target {encoder.name!r} ({encoder.stage} {encoder.kind}) must be an '
                                 f'encoder layer, downsampler or conv_in')
            if decoder.stride != encoder.stride:
                raise ValueError(f'feedback {decoder.name!r} (stride {decoder.stride}) -> {encoder.name!r} '
                                 f'(stride {encoder.stride}): the resolutions differ; pair blocks at one stride')
            if self.taps.index(encoder) > last_output:
                raise ValueError(f'feedback target {encoder.name!r} comes after the last output '
                                 f'{self.taps[last_output].name!r}; feedback there changes no output')
            pairs.append((decoder, encoder))
        return pairs

    def run_model(self, sample: Tensor, timesteps: Tensor,
                  conditions: Dict[str, Optional[Union[Tensor, Tuple[int, int], float]]]) -> Dict[str, Tensor]:
        """First pass, without gradient, to the last fed-back decoder layer; then the second pass with each adapted
        decoder output added to its encoder layer's output (:class:`~mmdiff.models.backbones.unet.UNetPass`'s
        ``additions``)."""
        decoders = tuple(dict.fromkeys(decoder.name for decoder, _ in self.feedback_pairs))
        with torch.no_grad():
            first = self.model_pass(sample, timesteps, decoders, **conditions)
        additions: Dict[str, Tensor] = {}
        for (decoder, encoder), adapter in zip(self.feedback_pairs, self.adapters):
            feedback = adapter(first[decoder.name].float())
            additions[encoder.name] = additions[encoder.name] + feedback if encoder.name in additions else feedback
        return self.model_pass(sample, timesteps, super().pass_outputs, additions=additions,
                               checkpointing=self.with_cp, **conditions)
