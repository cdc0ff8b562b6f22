"""A re-statement of RepFusion's classification distillation (github Adamdad/Repfusion @ 2fe77c4,
``classification_distill/mmcls/models/classifiers/repfusion.py``), for equality tests only.

Written from ``PolicyNet_Cov`` / ``PolicyNet_Cov64``, the ``task_head`` of ``Repfusion32_ImageClassifier`` /
``Repfusion_Imagenet64_ImageClassifier`` and their ``forward_train``: the policy's softmax over 1000 steps, one step
sampled per image, the teacher run on the *clean* image with that step (no noise is added), both features globally
pooled, raw MSE after the student's 1x1 projector, a 3-layer MLP on the pooled teacher feature whose per-image
negative cross-entropy is the REINFORCE reward (no baseline), and the entropy bonus. mmcls averages each loss tensor
of the returned dict.
"""
from typing import Callable, Dict

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.distributions import Categorical


class PolicyNetCov(nn.Module):
    """``PolicyNet_Cov`` (32x32 images) or, with ``three_convs``, ``PolicyNet_Cov64`` (64x64)."""

    def __init__(self, three_convs: bool = False, action_num: int = 1000) -> None:
        super().__init__()
        self.three_convs = three_convs
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.conv3 = nn.Conv2d(16, 16, 5) if three_convs else None
        self.fc1 = nn.Linear(16 * (4 * 4 if three_convs else 5 * 5), 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, action_num)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        if self.three_convs:
            x = self.pool(F.relu(self.conv3(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc2(F.relu(self.fc1(x))))
        return F.softmax(self.fc3(x), dim=-1)


def task_head(teacher_dim: int, hidden: int, num_class: int) -> nn.Sequential:
    """``task_head``: Linear-ReLU-Linear-ReLU-Linear (hidden = teacher_dim on CIFAR-10, teacher_dim // 2 on 64 px)."""
    return nn.Sequential(nn.Linear(teacher_dim, hidden), nn.ReLU(True), nn.Linear(hidden, hidden), nn.ReLU(True),
                         nn.Linear(hidden, num_class))


def reference_losses(img: Tensor, gt_label: Tensor, policy: nn.Module, student: Callable[[Tensor], Tensor],
                     teacher: Callable[[Tensor, Tensor], Tensor], distill_layer: nn.Module, head: nn.Module,
                     entropy_reg: float) -> Dict[str, Tensor]:
    """``forward_train`` of ``Repfusion32_ImageClassifier``, each loss averaged as mmcls's ``_parse_losses`` does.

    Args:
        student: image -> the hooked student feature ``(N, C_s, h, w)``.
        teacher: (clean image, timesteps) -> the hooked teacher feature ``(N, C_t, H, W)``.
    """
    bs = img.shape[0]
    m = Categorical(policy(img))
    loss_entropy = -m.entropy() * entropy_reg
    timesteps = m.sample()
    s_feat = student(img)
    with torch.no_grad():
        t_feat = teacher(img, timesteps)
    s_feat = F.adaptive_avg_pool2d(distill_layer(s_feat), (1, 1)).view(bs, -1)
    t_feat = F.adaptive_avg_pool2d(t_feat, (1, 1)).view(bs, -1)
    loss_feat = F.mse_loss(s_feat, t_feat.detach())
    loss_teacher = F.cross_entropy(head(t_feat), gt_label, reduction='none')
    reward = -(loss_teacher.detach())
    loss_policy = -(m.log_prob(timesteps) * reward).mean()
    return dict(loss_feat=loss_feat, loss_teacher=loss_teacher.mean(), loss_policy=loss_policy,
                loss_entropy=loss_entropy.mean(), timesteps=timesteps)
