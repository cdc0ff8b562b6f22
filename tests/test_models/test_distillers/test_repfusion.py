"""RepFusionDistiller and its timestep policy: losses, a frozen teacher, and a policy that finds the planted step."""
import pytest
import torch
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import init_default_scope
from torch import nn

from mmdiff.engine.hooks import EntropyDecayHook
from mmdiff.models import RepFusionDistiller, TimestepPolicy

PLANTED = 400
CANDIDATES = (10, 100, 400, 700)
NUM_CLASSES = 4


@MMENGINE_MODELS.register_module(force=True)
class PlantedTeacher(nn.Module):
    """A stand-in teacher whose features carry the label (written in pixel (0, 0) of the image) only at step 400;
    at every other step they are fresh noise."""
    frozen = True
    in_channels = 3
    num_train_timesteps = 1000
    timesteps = (PLANTED, )
    out_channels = (NUM_CLASSES, )

    def forward(self, images, timesteps=None):
        labels = (images[:, 0, 0, 0] * NUM_CLASSES).round().long().clamp(0, NUM_CLASSES - 1)
        informative = nn.functional.one_hot(labels, NUM_CLASSES).float()[..., None, None].expand(-1, -1, 2, 2)
        noise = torch.randn(images.shape[0], NUM_CLASSES, 2, 2)
        planted = (timesteps == PLANTED).view(-1, 1, 1, 1)
        return (torch.where(planted, 4 * informative, noise), )


@MMENGINE_MODELS.register_module(force=True)
class TinyStudent(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())

    def forward(self, images):
        return (super().forward(images), )


def labelled_batch(size: int, generator: torch.Generator):
    from mmpretrain.structures import DataSample
    labels = torch.randint(0, NUM_CLASSES, (size, ), generator=generator)
    images = torch.rand(size, 3, 8, 8, generator=generator) * 2 - 1
    images[:, 0, 0, 0] = labels / NUM_CLASSES
    return images, [DataSample().set_gt_label(int(label)) for label in labels]


def digits_distiller(**kwargs) -> RepFusionDistiller:
    init_default_scope('mmpretrain')
    teacher = dict(type='mmdiff.DiffusionUNetBackbone', arch='adm-digits', timesteps=(100, ), out_strides=None,
                   out_blocks=(18, ), noise_mode='none', init_cfg=None)
    return RepFusionDistiller(teacher=teacher, backbone=dict(type='ResNet_CIFAR', depth=18),
                              neck=dict(type='GlobalAveragePooling'),
                              head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=512), **kwargs)


def test_the_policy_learns_the_planted_timestep():
    torch.manual_seed(0)
    init_default_scope('mmpretrain')
    model = RepFusionDistiller(teacher=dict(type='PlantedTeacher'), backbone=dict(type='TinyStudent'),
                               timestep_policy=dict(type='mmdiff.TimestepPolicy', timesteps=CANDIDATES),
                               num_classes=NUM_CLASSES, entropy_weight=0.01)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    probe, _ = labelled_batch(64, generator)
    start = model.timestep_policy.probabilities(probe).mean(0)
    assert torch.allclose(start, torch.full((4, ), 0.25))
    for _ in range(300):
        losses = model.loss(*labelled_batch(32, generator))
        optimizer.zero_grad()
        sum(value for name, value in losses.items() if name.startswith('loss')).backward()
        optimizer.step()
    mass = model.timestep_policy.probabilities(probe).mean(0)
    assert mass[CANDIDATES.index(PLANTED)] > 0.9, mass


def test_losses_are_finite_and_decrease_on_a_fixed_batch():
    torch.manual_seed(0)
    model = digits_distiller(timestep_policy=dict(type='mmdiff.TimestepPolicy', timesteps=(10, 100, 400)),
                             num_classes=NUM_CLASSES)
    images, samples = labelled_batch(8, torch.Generator().manual_seed(1))
    images = torch.nn.functional.interpolate(images, size=16)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    history = []
    for _ in range(15):
        losses = model.loss(images, samples)
        assert all(torch.isfinite(value) for value in losses.values()), losses
        optimizer.zero_grad()
        sum(value for name, value in losses.items() if name.startswith('loss')).backward()
        optimizer.step()
        history.append({name: float(value.detach()) for name, value in losses.items()})
    for name in ('loss_distill', 'loss_cls'):
        assert history[-1][name] < 0.7 * history[0][name], (name, history[0][name], history[-1][name])
    # the reward head sees features of a different sampled timestep each step: compare averages
    reward_head = [step['loss_reward_head'] for step in history]
    assert sum(reward_head[-5:]) < sum(reward_head[:5]), reward_head


def test_the_teacher_gets_no_gradients_and_stays_in_eval_mode():
    model = digits_distiller()  # fixed-t mode
    model.train()
    images, samples = labelled_batch(2, torch.Generator().manual_seed(0))
    losses = model.loss(torch.nn.functional.interpolate(images, size=16), samples)
    assert set(losses) == {'loss_distill', 'loss_cls'}
    sum(losses.values()).backward()
    assert all(not p.requires_grad and p.grad is None for p in model.teacher.parameters())
    assert not model.teacher.unet.training
    assert all(p.grad is not None for p in model.projector.parameters())


def test_dense_alignment_resizes_the_student_map():
    model = digits_distiller(alignment='dense')
    loss = model.alignment_loss(torch.rand(2, 512, 2, 2), torch.rand(2, 64, 8, 8))
    assert loss.shape == () and torch.isfinite(loss)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match=r"alignment='sum' is not supported; choose one of \['pooled', 'dense'\]"):
        digits_distiller(alignment='sum')
    with pytest.raises(ValueError, match='num_classes=None: the timestep policy is rewarded'):
        digits_distiller(timestep_policy=dict(type='mmdiff.TimestepPolicy', timesteps=(10, )))
    with pytest.raises(ValueError, match=r"timestep_policy timesteps \[1000\] are outside the teacher's range"):
        digits_distiller(timestep_policy=dict(type='mmdiff.TimestepPolicy', timesteps=(10, 1000)), num_classes=4)
    with pytest.raises(ValueError, match='timesteps .* has repeats'):
        TimestepPolicy(timesteps=(10, 10))
    with pytest.raises(ValueError, match='the teacher must be a frozen DiffusionUNetBackbone'):
        init_default_scope('mmpretrain')
        RepFusionDistiller(teacher=dict(type='mmdiff.DiffusionUNetBackbone', arch='adm-digits', frozen=False,
                                        init_cfg=None, out_strides=None, out_blocks=(18, )),
                           backbone=dict(type='ResNet_CIFAR', depth=18))


def test_per_image_timesteps_match_the_configured_step():
    from mmdiff.models import DiffusionUNetBackbone
    backbone = DiffusionUNetBackbone(arch='adm-digits', timesteps=(100, ), out_strides=None, out_blocks=(18, ),
                                     init_cfg=None)
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    configured = backbone(images)[0]
    per_image = backbone(images, timesteps=torch.tensor([100, 400, 100]))[0]
    torch.testing.assert_close(per_image[[0, 2]], configured[[0, 2]])
    assert not torch.allclose(per_image[1], configured[1])
    with pytest.raises(ValueError, match=r"timestep 1000 is outside the scheduler's range \[0, 1000\)"):
        backbone(images, timesteps=torch.tensor([1, 2, 1000]))
    with pytest.raises(ValueError, match='per-image timesteps must be 3 integers, one per image'):
        backbone(images, timesteps=torch.tensor([1, 2]))


def test_the_entropy_bonus_decays_to_zero():
    from types import SimpleNamespace
    model = SimpleNamespace(entropy_weight=0.1)
    runner = SimpleNamespace(model=model, iter=0, max_iters=100)
    hook = EntropyDecayHook()
    hook.before_train(runner)
    weights = []
    for runner.iter in (0, 50, 100, 150):
        hook.before_train_iter(runner, 0)
        weights.append(model.entropy_weight)
    assert weights == pytest.approx([0.1, 0.05, 0.0, 0.0])
