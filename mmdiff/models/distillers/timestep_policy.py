"""TimestepPolicy: a small CNN that looks at an image and proposes the noise step to take teacher features at."""
from typing import Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.distributions import Categorical

from mmdiff.registry import MODELS, register_module


@register_module(MODELS)
class TimestepPolicy(BaseModule):
    """A categorical distribution over candidate timesteps, conditioned on the image (RepFusion's policy).

    Strided 3x3 convolutions with ReLU, global average pooling and a linear layer give one logit per candidate.
    The linear layer starts at zero, so the policy starts uniform and every timestep is tried.

    Args:
        timesteps (Sequence[int]): The candidate noise steps, e.g. ``range(1000)`` (all) or a grid.
        in_channels (int): Image channels. Defaults to 3.
        channels (Sequence[int]): Width of each stride-2 convolution. Defaults to (32, 64).
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
                 channels: Sequence[int] = (32, 64),
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        timesteps = [int(t) for t in timesteps]
        if not timesteps:
            raise ValueError('timesteps is empty; give the candidate noise steps, e.g. range(1000)')
        if len(set(timesteps)) != len(timesteps):
            raise ValueError(f'timesteps {timesteps} has repeats; each candidate must appear once')
        if not channels:
            raise ValueError('channels is empty; give the width of at least one convolution')
        self.register_buffer('timesteps', torch.tensor(timesteps, dtype=torch.long), persistent=False)
        layers = []
        for width in channels:
            layers += [nn.Conv2d(in_channels, width, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            in_channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.logits = nn.Linear(in_channels, len(timesteps))
        nn.init.zeros_(self.logits.weight)
        nn.init.zeros_(self.logits.bias)

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``(N, K)`` over the K candidate timesteps of images ``(N, C, H, W)``."""
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
