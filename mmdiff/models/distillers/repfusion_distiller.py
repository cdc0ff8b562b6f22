"""RepFusionDistiller: distil a frozen diffusion U-Net's features into an ordinary student backbone."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.registry import MODELS as MMENGINE_MODELS
from torch import Tensor, nn

from mmdiff.registry import MODELS, register_module
from mmdiff.utils.choices import check_choice
from mmdiff.utils.runner_access import gt_labels

ALIGNMENTS = ('pooled', 'dense')


def _output_channels(backbone: nn.Module, index: int, in_channels: int) -> int:
    """Channels of output ``index`` of a built backbone, from one small forward pass in eval mode (BN statistics
    untouched)."""
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        outputs = backbone(torch.zeros(1, in_channels, 64, 64))
    backbone.train(was_training)
    if isinstance(outputs, Tensor):
        outputs = (outputs, )
    if not -len(outputs) <= index < len(outputs):
        raise IndexError(f'student_index={index} is out of range for the {len(outputs)} outputs of the student '
                         f'{type(backbone).__name__}; valid: {-len(outputs)}..{len(outputs) - 1}')
    return outputs[index].shape[1]


def _reward_head(in_channels: int, hidden: Sequence[int], num_classes: int) -> nn.Module:
    """Linear, or an MLP ``in -> hidden[0] -> ... -> num_classes`` with ReLU between the layers."""
    widths = [in_channels, *hidden]
    layers: List[nn.Module] = []
    for width_in, width_out in zip(widths, widths[1:]):
        layers += [nn.Linear(width_in, width_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Linear(widths[-1], num_classes)) if layers else nn.Linear(in_channels,
                                                                                                 num_classes)


@register_module(MODELS)
class RepFusionDistiller(BaseModel):
    """Train a student backbone to reproduce a frozen diffusion U-Net's features (Yang & Wang, ICCV 2023).

    The teacher, a frozen :class:`~mmdiff.models.backbones.DiffusionUNetBackbone`, gives a feature map of each
    image at a noise step; a learnable 1x1 convolution maps the student's feature map to the teacher's width, and
    the two are aligned by MSE, after global average pooling (``'pooled'``) or position by position with the
    student's map resized to the teacher's (``'dense'``), L2-normalised over channels when ``normalize``. With a
    ``head`` and labels, the student's task loss is added.

    The noise step is either the teacher's configured one (fixed-t mode, ``timestep_policy=None``) or drawn per
    image by a :class:`~mmdiff.models.distillers.TimestepPolicy` trained by REINFORCE: a reward head (linear, or
    an MLP with ``reward_head_channels``) on the teacher's pooled feature learns the labels by cross-entropy, the
    negative cross-entropy of each image is its reward, and the policy loss is ``-log pi(t | x) * (reward -
    baseline)`` (a running-mean baseline with ``reward_baseline``, else none), minus ``entropy_weight`` times the
    policy's entropy (:class:`~mmdiff.engine.hooks.EntropyDecayHook` decays it).

    The reference's setting (Adamdad/Repfusion ``Repfusion32_ImageClassifier``; ``docs/fidelity.md``) is
    ``alignment='pooled', normalize=False``, the 3-layer MLP reward head, no baseline, all 1000 candidate
    timesteps with ``TimestepPolicy(arch='lenet', zero_init=False)``, and, for a class-conditional teacher,
    ``teacher_labels=True``.

    The student is ``backbone`` (then ``neck`` and ``head``), as in mmpretrain's ``ImageClassifier``, so
    ``tools/model_converters/export_student.py`` writes its weights under ``backbone.`` for any OpenMMLab config to
    load.

    Args:
        teacher (dict): A frozen ``DiffusionUNetBackbone`` config; its ``noise_mode='none'`` gives the clean image
            with the time embedding, as RepFusion does.
        backbone (dict): The student backbone config, e.g. ``dict(type='ResNet', depth=18)``.
        teacher_index (int): Which teacher output to distil. Defaults to -1.
        student_index (int): Which student output to align with it. Defaults to -1.
        alignment (str): ``'pooled'`` or ``'dense'``. Defaults to ``'pooled'``.
        normalize (bool): L2-normalise both features over channels before the MSE. Defaults to True.
        distill_weight (float): Weight of the alignment loss. Defaults to 1.0.
        neck (dict, optional): Student neck, e.g. ``dict(type='GlobalAveragePooling')``. Defaults to None.
        head (dict, optional): Student classification head (task loss and predictions). Defaults to None.
        timestep_policy (dict, optional): A ``TimestepPolicy`` config; ``timesteps`` defaults to all of the
            teacher's steps. None distils at the teacher's configured timestep. Defaults to None.
        num_classes (int, optional): Classes of the reward head; needed with a policy.
        reward_head_channels (Sequence[int]): Hidden widths of the reward head, an MLP with ReLU; empty for one
            linear layer. Defaults to () (the reference: ``(C, C)`` on CIFAR-10, ``(C / 2, C / 2)`` on
            ImageNet-64, for teacher channels C).
        reward_baseline (bool): Subtract a running-mean baseline from the reward. Defaults to True.
        entropy_weight (float): Initial weight of the policy's entropy bonus. Defaults to 0.01.
        baseline_momentum (float): Momentum of the reward baseline's running mean. Defaults to 0.9.
        teacher_labels (bool): Run a class-conditional teacher with each image's ground-truth label as its class
            (the reference's ImageNet-64 teacher); else with the teacher's ``class_label``. Defaults to False.
        data_preprocessor (dict, optional): E.g. mmpretrain's ``ClsDataPreprocessor`` mapping images to [-1, 1].
        init_cfg (dict, optional): mmengine initialisation config. Defaults to None.
    """

    def __init__(self,
                 teacher: dict,
                 backbone: dict,
                 teacher_index: int = -1,
                 student_index: int = -1,
                 alignment: str = 'pooled',
                 normalize: bool = True,
                 distill_weight: float = 1.0,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 timestep_policy: Optional[dict] = None,
                 num_classes: Optional[int] = None,
                 reward_head_channels: Sequence[int] = (),
                 reward_baseline: bool = True,
                 entropy_weight: float = 0.01,
                 baseline_momentum: float = 0.9,
                 teacher_labels: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        check_choice('alignment', alignment, ALIGNMENTS)
        if not 0 <= baseline_momentum < 1:
            raise ValueError(f'baseline_momentum={baseline_momentum} must be in [0, 1)')
        self.teacher = MMENGINE_MODELS.build(teacher)
        if not getattr(self.teacher, 'frozen', False):
            raise ValueError(f'the teacher must be a frozen DiffusionUNetBackbone (frozen=True), got '
                             f'{type(self.teacher).__name__} with frozen={getattr(self.teacher, "frozen", None)}')
        teacher_outputs = len(self.teacher.out_channels)
        if not -teacher_outputs <= teacher_index < teacher_outputs:
            raise IndexError(f'teacher_index={teacher_index} is out of range for the {teacher_outputs} teacher '
                             f'outputs; valid: {-teacher_outputs}..{teacher_outputs - 1}')
        self.teacher_index, self.student_index = teacher_index, student_index
        teacher_channels = self.teacher.out_channels[teacher_index]

        self.backbone = MMENGINE_MODELS.build(backbone)
        student_channels = _output_channels(self.backbone, student_index, self.teacher.in_channels)
        self.projector = nn.Conv2d(student_channels, teacher_channels, 1)
        self.neck = MMENGINE_MODELS.build(neck) if neck is not None else None
        self.head = MMENGINE_MODELS.build(head) if head is not None else None
        self.alignment, self.normalize, self.distill_weight = alignment, normalize, distill_weight

        self.timestep_policy = None
        if timestep_policy is not None:
            self.timestep_policy = self._build_policy(timestep_policy)
            if num_classes is None or num_classes < 1:
                raise ValueError(f'num_classes={num_classes}: the timestep policy is rewarded by a classifier on '
                                 f'the teacher features, so give the number of classes')
            self.reward_head = _reward_head(teacher_channels, reward_head_channels, num_classes)
        self.reward_baseline_enabled = reward_baseline
        self.teacher_labels = teacher_labels
        self.entropy_weight = entropy_weight
        self.baseline_momentum = baseline_momentum
        self.register_buffer('reward_baseline', torch.zeros(()))
        self.register_buffer('baseline_started', torch.zeros((), dtype=torch.bool))

    def _build_policy(self, cfg: dict) -> nn.Module:
        cfg = dict(cfg)
        steps = self.teacher.num_train_timesteps
        cfg.setdefault('timesteps', range(steps))
        cfg.setdefault('in_channels', self.teacher.in_channels)
        outside = [int(t) for t in cfg['timesteps'] if not 0 <= int(t) < steps]
        if outside:
            raise ValueError(f'timestep_policy timesteps {outside[:5]} are outside the teacher\'s range [0, {steps})')
        if len(self.teacher.timesteps) != 1:
            raise ValueError(f'the policy draws one timestep per image, but the teacher is configured with '
                             f'timesteps={tuple(self.teacher.timesteps)}; give it a single one')
        return MMENGINE_MODELS.build(cfg)

    # ------------------------------------------------------------------------------------------------ features
    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """The student's features: backbone outputs, through the neck when there is one."""
        features = self.backbone(inputs)
        features = (features, ) if isinstance(features, Tensor) else tuple(features)
        return tuple(self.neck(features)) if self.neck is not None else features

    def alignment_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        """MSE between the projected student map ``(N, C_s, h, w)`` and the teacher map ``(N, C_t, H, W)``."""
        student = self.projector(student)
        if self.alignment == 'pooled':
            student, teacher = student.mean((2, 3)), teacher.mean((2, 3))
        elif student.shape[-2:] != teacher.shape[-2:]:
            student = F.interpolate(student, size=teacher.shape[-2:], mode='bilinear', align_corners=False)
        if self.normalize:
            student, teacher = F.normalize(student, dim=1), F.normalize(teacher, dim=1)
        return F.mse_loss(student, teacher)

    # ---------------------------------------------------------------------------------------------------- modes
    def forward(self, inputs: Tensor, data_samples: Optional[list] = None, mode: str = 'tensor'):
        """mmengine's entry: ``'loss'`` (a dict of losses), ``'predict'`` (the head's predictions) or ``'tensor'``
        (the student's features)."""
        check_choice('mode', mode, ('loss', 'predict', 'tensor'))
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        return self.extract_feat(inputs)

    def loss(self, inputs: Tensor, data_samples: Optional[list] = None) -> Dict[str, Tensor]:
        """Alignment loss, the task loss with a head, and with a policy its reward-head, policy and entropy terms.

        Args:
            inputs (Tensor): Images ``(N, C, H, W)`` in [-1, 1].
            data_samples (list, optional): mmpretrain ``DataSample`` s with ``gt_label``.

        Returns:
            dict[str, Tensor]: ``loss_distill`` and, as they apply, ``loss_cls``, ``loss_reward_head``,
            ``loss_policy``, ``loss_entropy``; ``timestep_mean`` and ``policy_entropy`` are logged, not summed.
        """
        labels = gt_labels(data_samples)
        losses: Dict[str, Tensor] = {}
        timesteps = log_prob = entropy = None
        if self.timestep_policy is not None:
            if labels is None:
                raise ValueError('the timestep policy is rewarded through the labels; the batch has no gt_label')
            timesteps, log_prob, entropy = self.timestep_policy.sample(inputs)
        if self.teacher_labels and labels is None:
            raise ValueError('teacher_labels=True runs the teacher with the ground-truth labels; the batch has no '
                             'gt_label')
        conditioning = dict(class_labels=labels) if self.teacher_labels else {}
        with torch.no_grad():
            teacher = self.teacher(inputs, timesteps=timesteps, **conditioning)[self.teacher_index].float()
        student_outputs = self.backbone(inputs)
        student_outputs = (student_outputs, ) if isinstance(student_outputs, Tensor) else tuple(student_outputs)
        losses['loss_distill'] = self.distill_weight * self.alignment_loss(student_outputs[self.student_index],
                                                                           teacher)
        if self.head is not None and labels is not None:
            features = tuple(self.neck(student_outputs)) if self.neck is not None else student_outputs
            losses['loss_cls'] = self.head.loss(features, data_samples)['loss']
        if self.timestep_policy is not None:
            losses.update(self._policy_losses(teacher, labels, log_prob, entropy))
            losses['timestep_mean'] = timesteps.float().mean()
        return losses

    def _policy_losses(self, teacher: Tensor, labels: Tensor, log_prob: Tensor, entropy: Tensor) -> Dict[str, Tensor]:
        """REINFORCE (with a running-mean baseline if enabled); the reward is the reward head's negative
        cross-entropy."""
        cross_entropy = F.cross_entropy(self.reward_head(teacher.mean((2, 3))), labels, reduction='none')
        reward = -cross_entropy.detach()
        advantage = reward
        if self.reward_baseline_enabled:
            if not self.baseline_started:
                self.reward_baseline.fill_(reward.mean())
                self.baseline_started.fill_(True)
            advantage = reward - self.reward_baseline
            self.reward_baseline.mul_(self.baseline_momentum).add_((1 - self.baseline_momentum) * reward.mean())
        return dict(
            loss_reward_head=cross_entropy.mean(),
            loss_policy=-(log_prob * advantage).mean(),
            loss_entropy=-self.entropy_weight * entropy.mean(),
            policy_entropy=entropy.mean().detach())

    def predict(self, inputs: Tensor, data_samples: Optional[list] = None) -> List:
        """The student head's predictions (mmpretrain ``DataSample`` s)."""
        if self.head is None:
            raise ValueError('RepFusionDistiller has no head to predict with; give head=... to evaluate during '
                             'distillation, or fine-tune the exported student '
                              '(tools/model_converters/export_student.py)')
        return self.head.predict(self.extract_feat(inputs), data_samples)
