"""What a backbone output holds, declared before any forward pass."""
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class FeatureLevel:
    """One output of :class:`DiffusionUNetBackbone`.

    Args:
        channels (int): Channels of the output (after timestep fusion and projection).
        stride (int): Input pixels per output pixel: the output is ``ceil(H / stride) x ceil(W / stride)``.
        block (str): The U-Net submodule the features are tapped from.
        source_stride (int): Stride of that submodule's output; differs from ``stride`` when the level is resampled.
        timesteps (tuple[int, ...]): Noise steps fused into this output.
        fusion (str): How the timesteps are fused: ``'concat'``, ``'mean'`` or ``'stack'`` (an extra T axis:
            the output is ``(N, T, channels, h, w)``).
        attention_maps (tuple[str, ...]): The cross-attention maps whose mean is appended to the block's channels
            (one channel per context token, VPD's extra channels); empty for none.
    """
    channels: int
    stride: int
    block: str
    source_stride: int
    timesteps: Tuple[int, ...]
    fusion: str
    attention_maps: Tuple[str, ...] = ()

    def __str__(self) -> str:
        resampled = '' if self.source_stride == self.stride else f' (resampled from stride {self.source_stride})'
        return (f'stride {self.stride:>3}, {self.channels:>5} channels: {self.block} at t={list(self.timesteps)}, '
                f'{self.fusion}{resampled}'
                + (f', + the mean of {len(self.attention_maps)} cross-attention maps' if self.attention_maps else ''))
