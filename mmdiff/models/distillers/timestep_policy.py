"""TimestepPolicy: a small CNN that looks at an image and proposes the noise step to take teacher features at."""
from typing import Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.distributions import Categorical

from mmdiff.registry import MODELS, register_module
from mmdiff.utils.choices import check_choice

POLICY_ARCHS = ('conv', 'lenet', 'lenet-64')


def _strided_convs(in_channels: int, channels: Sequence[int]) -> Tuple[nn.Sequential, int]:
    """mmdiff's policy trunk: stride-2 3x3 convolutions with ReLU, then global average pooling."""
    if not channels:
        raise ValueError('channels is empty; give the width of at least one convolution')
    layers = []
    for width in channels:
        layers += [nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
        in_channels = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()), in_channels


def _lenet(in_channels: int, num_convs: int, flat_size: int) -> Tuple[nn.Sequential, int]:
    """RepFusion's ``PolicyNet_Cov`` (2 convolutions, 32 px) / ``PolicyNet_Cov64`` (3, 64 px) trunk: 5x5
    convolutions (6, 16, 16 channels) each with ReLU and 2x2 max-pooling, flattened, then Linear-ReLU 120 and 84."""
    widths = (6, 16, 16)[:num_convs]
    layers = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 5), nn.ReLU(), nn.MaxPool2d(2, 2)]
        in_channels = width
    layers += [nn.Flatten(), nn.Linear(16 * flat_size**2, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU()]
    return nn.Sequential(*layers), 84


@register_module(MODELS)
class TimestepPolicy(BaseModule):
    """A categorical distribution over candidate timesteps, conditioned on the image (RepFusion's policy).

    ``arch='conv'`` (mmdiff's): strided 3x3 convolutions with ReLU, global average pooling and a linear layer,
    for any image size. ``arch='lenet'`` / ``'lenet-64'``: the reference's ``PolicyNet_Cov`` for 32x32 and
    ``PolicyNet_Cov64`` for 64x64 images (Adamdad/Repfusion ``classifiers/repfusion.py``). A final linear layer
    gives one logit per candidate; ``zero_init`` starts it at zero, so the policy starts uniform (the reference
    keeps PyTorch's default initialisation: ``zero_init=False``).

    Args:
        timesteps (Sequence[int]): The candidate noise steps, e.g. ``range(1000)`` (all) or a grid.
        in_channels (int): Image channels. Defaults to 3.
        arch (str): ``'conv'``, ``'lenet'`` or ``'lenet-64'``. Defaults to ``'conv'``.
        channels (Sequence[int]): Width of each stride-2 convolution of ``arch='conv'``. Defaults to (32, 64).
        zero_init (bool): Start the logits at zero. Defaults to True.
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.

    Example:
        >>> policy = TimestepPolicy(timesteps=(10, 100, 400))
        >>> timesteps, log_prob, entropy = policy.sample(torch.rand(2, 3, 16, 16))
        >>> timesteps.shape, log_prob.shape, round(float(entropy[0]), 4)  # uniform at the start: log 3
        (torch.Size([2]), torch.Size([2]), 1.0986)
    """

    def __init__(self,
                 timesteps: Sequence[int],
                 in_channels: int = 3,
                 arch: str = 'conv',
                 channels: Sequence[int] = (32, 64),
                 zero_init: bool = True,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        timesteps = [int(t) for t in timesteps]
        if not timesteps:
            raise ValueError('timesteps is empty; give the candidate noise steps, e.g. range(1000)')
        if len(set(timesteps)) != len(timesteps):
            raise ValueError(f'timesteps {timesteps} has repeats; each candidate must appear once')
        check_choice('arch', arch, POLICY_ARCHS)
        self.arch = arch
        self.register_buffer('timesteps', torch.tensor(timesteps, dtype=torch.long), persistent=False)
        if arch == 'conv':
            self.features, width = _strided_convs(in_channels, channels)
        else:
            self.features, width = _lenet(in_channels, *((2, 5) if arch == 'lenet' else (3, 4)))
        self.logits = nn.Linear(width, len(timesteps))
        if zero_init:
            nn.init.zeros_(self.logits.weight)
            nn.init.zeros_(self.logits.bias)

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``(N, K)`` over the K candidate timesteps of images ``(N, C, H, W)``."""
        if self.arch != 'conv':
            size = 32 if self.arch == 'lenet' else 64
            if tuple(images.shape[-2:]) != (size, size):
                raise ValueError(f"TimestepPolicy(arch={self.arch!r}) takes {size}x{size} images, got "
                                 f"{tuple(images.shape[-2:])}; use arch='conv' for other sizes")
        return self.logits(self.features(images))

    def distribution(self, images: Tensor) -> Categorical:
        """The policy's distribution over candidate indices for each image."""
        return Categorical(logits=self(images).float())

    def sample(self, images: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Draw one timestep per image.

        Returns:
            tuple[Tensor, Tensor, Tensor]: The drawn noise steps ``(N,)``, their log-probabilities ``(N,)``
            (differentiable, for the REINFORCE loss) and the distribution's entropy per image ``(N,)``.
        """
        distribution = self.distribution(images)
        index = distribution.sample()
        return self.timesteps[index], distribution.log_prob(index), distribution.entropy()

    def probabilities(self, images: Tensor) -> Tensor:
        """The probability ``(N, K)`` of each candidate timestep for each image."""
        return self.distribution(images).probs
