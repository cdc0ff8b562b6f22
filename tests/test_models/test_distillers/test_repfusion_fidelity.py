"""RepFusion as published: the policy networks, the losses, the teacher hook points, per-image class labels, the
entropy schedule and the configs, against the re-statement in tests/test_utils/repfusion_reference.py."""
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdiff.engine.hooks import GUARD_HOOKS, EntropyDecayHook
from mmdiff.models import TimestepPolicy
from mmdiff.models.backbones import DiffusionUNetBackbone
from mmdiff.models.backbones.unet.adm_architecture import infer_adm_architecture
from mmdiff.models.backbones.unet.adm_key_map import convert_adm_to_diffusers
from tests.test_utils.repfusion_reference import PolicyNetCov, reference_losses, task_head
from tests.test_utils.test_adm_checkpoint import IMAGE_SIZE, small_adm

ROOT = Path(__file__).resolve().parents[3]
REPFUSION = ROOT / 'configs/repfusion'
CIFAR10 = REPFUSION / 'repfusion_ddpm-cifar10-mid-policy_resnet18-cifar_1xb128-200e_cifar10.py'
TINY_IMAGENET = REPFUSION / 'repfusion_adm-64-mid-policy_resnet18_1xb64-200e_tiny-imagenet.py'


def copy_policy(ours: TimestepPolicy, reference: PolicyNetCov) -> None:
    """mmdiff's LeNet policy layers, in order, into the reference's named layers."""
    layers = [m for m in ours.features if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))] + [ours.logits]
    names = ['conv1', 'conv2'] + (['conv3'] if reference.three_convs else []) + ['fc1', 'fc2', 'fc3']
    assert len(layers) == len(names)
    for layer, name in zip(layers, names):
        getattr(reference, name).load_state_dict(layer.state_dict())


@pytest.mark.parametrize('arch, size', [('lenet', 32), ('lenet-64', 64)])
def test_lenet_policies_compute_the_reference_distribution(arch, size):
    torch.manual_seed(0)
    ours = TimestepPolicy(range(1000), arch=arch, zero_init=False)
    reference = PolicyNetCov(three_convs=arch == 'lenet-64')
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    copy_policy(ours, reference)
    images = torch.randn(3, 3, size, size)
    torch.testing.assert_close(ours.probabilities(images), reference(images), atol=1e-7, rtol=1e-5)
    assert ours.probabilities(images).std() > 0  # default init: not the uniform start of zero_init
    with pytest.raises(ValueError, match=rf"TimestepPolicy\(arch='{arch}'\) takes {size}x{size} images, got \(16, 16\)"):
        ours(torch.randn(1, 3, 16, 16))


def build_published_cifar10():
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(str(CIFAR10))
    cfg.model.teacher.update(arch='ddpm-cifar10', model_dir=None)  # random weights: the folder is not in CI
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


def test_published_cifar10_losses_are_the_reference_losses():
    from mmpretrain.structures import DataSample
    cfg, model = build_published_cifar10()
    model.train()
    reference_policy = PolicyNetCov()
    copy_policy(model.timestep_policy, reference_policy)
    head = task_head(256, 256, 10)
    head.load_state_dict(model.reward_head.state_dict())

    unet = model.teacher.unet
    hooked = {}
    unet.mid_block.resnets[1].conv2.register_forward_hook(lambda module, args, output: hooked.update(teacher=output))
    model.backbone.layer4[1].relu.register_forward_hook(lambda module, args, output: hooked.update(student=output))

    def reference_teacher(img, timesteps):  # the whole diffusers U-Net on the clean image; the hook keeps conv2
        unet(img, timesteps, return_dict=False)
        return hooked['teacher']

    def reference_student(img):  # 'backbone.layer4.1.relu': the block's last ReLU call, its output
        model.backbone(img)
        return hooked['student']

    images = torch.rand(4, 3, 32, 32) * 2 - 1
    labels = torch.tensor([0, 3, 7, 9])
    torch.manual_seed(5)
    ours = model.loss(images, [DataSample().set_gt_label(int(label)) for label in labels])
    torch.manual_seed(5)
    theirs = reference_losses(images, labels, reference_policy, reference_student, reference_teacher,
                              model.projector, head, entropy_reg=0.1)
    assert ours['timestep_mean'] == theirs['timesteps'].float().mean()  # the same draws from the same policy
    for key, reference_key in [('loss_distill', 'loss_feat'), ('loss_reward_head', 'loss_teacher'),
                               ('loss_policy', 'loss_policy'), ('loss_entropy', 'loss_entropy')]:
        torch.testing.assert_close(ours[key], theirs[reference_key], rtol=1e-5, atol=1e-6, msg=key)
    assert set(ours) == {'loss_distill', 'loss_reward_head', 'loss_policy', 'loss_entropy', 'timestep_mean',
                         'policy_entropy'}  # no student head: the student never sees a label


def test_published_cifar10_config_builds_the_reference_parts():
    cfg, model = build_published_cifar10()
    assert model.timestep_policy.timesteps.tolist() == list(range(1000))
    assert model.timestep_policy.arch == 'lenet'
    assert [level.block for level in model.teacher.feature_info] == ['mid_block.resnets.1.conv2']
    assert (model.teacher.out_channels, model.teacher.out_strides) == ((256, ), (8, ))
    assert model.teacher.noise_mode == 'none' and not model.normalize and model.alignment == 'pooled'
    assert [tuple(m.weight.shape) for m in model.reward_head if isinstance(m, torch.nn.Linear)] == [(256, 256),
                                                                                                 (256, 256),
                                                                                                 (10, 256)]
    assert tuple(model.projector.weight.shape) == (256, 512, 1, 1) and not model.reward_baseline_enabled
    assert cfg.model.data_preprocessor.mean == [128.0] * 3 and cfg.model.data_preprocessor.std == [128.0] * 3
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4)
    assert cfg.param_scheduler == [dict(type='MultiStepLR', by_epoch=True, milestones=[100, 150], gamma=0.1)]
    assert cfg.train_cfg.max_epochs == 200 and cfg.train_dataloader.batch_size == 128
    # the reference's two hooks, then mmdiff's guard hooks, which change no training step
    assert cfg.custom_hooks == [dict(type='mmdiff.EntropyDecayHook', start=0.1, decay_epochs=100),
                                dict(type='EMAHook', momentum=0.001, priority='ABOVE_NORMAL'),
                                *(dict(type=hook) for hook in GUARD_HOOKS)]


def test_published_tiny_imagenet_config_names_the_reference_parts():
    cfg = Config.fromfile(str(TINY_IMAGENET))
    teacher = cfg.model.teacher
    assert (teacher.arch, teacher.class_label, teacher.out_blocks) == ('adm-64', None, ('mid_block.resnets.1.conv2', ))
    assert cfg.model.teacher_labels and cfg.model.entropy_weight == 0.0 and cfg.model.reward_head_channels == (384,
                                                                                                               384)
    assert cfg.model.timestep_policy == dict(type='mmdiff.TimestepPolicy', arch='lenet-64', zero_init=False)
    assert (cfg.optim_wrapper.type, cfg.optim_wrapper.loss_scale, cfg.optim_wrapper.optimizer.nesterov) == (
        'AmpOptimWrapper', 512.0, True)
    kwargs = {k: v for k, v in teacher.items() if k not in ('type', 'init_cfg')}
    with torch.device('meta'):
        backbone = DiffusionUNetBackbone(**kwargs)
    assert (backbone.out_channels, backbone.out_strides) == ((768, ), (8, ))  # 192 x 4 channels at 8x8 of 64


def test_adm_teacher_hook_point_is_the_references_and_takes_each_images_label():
    """'mid_block.resnets.1.conv2' is guided-diffusion's 'middle_block.2.out_layers.3' (the residual branch of the
    second middle resnet, before its skip is added), and per-image labels reach the class embedding."""
    adm = small_adm(num_classes=5)
    state = adm.state_dict()
    config = infer_adm_architecture(state).unet_config(IMAGE_SIZE, num_head_channels=16)
    backbone = DiffusionUNetBackbone(arch=dict(config), timesteps=(0, ), noise_mode='none', out_strides=None,
                                     out_blocks=('mid_block.resnets.1.conv2', ))
    backbone.unet.load_state_dict(convert_adm_to_diffusers(state, config, False), strict=True)
    hooked = {}
    adm.middle_block[2].out_layers[3].register_forward_hook(lambda module, args, output: hooked.update(out=output))
    images = torch.rand(3, 3, IMAGE_SIZE, IMAGE_SIZE) * 2 - 1
    timesteps, labels = torch.tensor([5, 300, 900]), torch.tensor([4, 0, 2])
    with torch.no_grad():
        adm(images, timesteps, labels)
        ours = backbone(images, timesteps=timesteps, class_labels=labels)[0]
        other_labels = backbone(images, timesteps=timesteps, class_labels=torch.tensor([1, 1, 1]))[0]
    assert hooked['out'].abs().mean() > 1e-3
    torch.testing.assert_close(ours, hooked['out'], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(ours, other_labels)
    with pytest.raises(ValueError, match=r'class label 5 is outside the U-Net\'s classes \[0, 5\)'):
        backbone(images, timesteps=timesteps, class_labels=torch.tensor([5, 0, 0]))
    with pytest.raises(ValueError, match=r'class_label=None: give forward\(\) one label per image'):
        backbone(images)


def test_entropy_decays_per_epoch_as_the_reference_hook():
    model = SimpleNamespace(entropy_weight=0.1)
    runner = SimpleNamespace(model=model, epoch=0, iter=0)
    hook = EntropyDecayHook(start=0.1, decay_epochs=100)
    hook.before_train(runner)
    weights = []
    for epoch in (0, 50, 99, 100, 150):
        runner.epoch, runner.iter = epoch, epoch * 10
        hook.before_train_epoch(runner)
        hook.before_train_iter(runner, 0)  # per-epoch decay leaves the iterations alone
        weights.append(model.entropy_weight)
    assert weights == pytest.approx([0.1, 0.05, 0.001, 0.0, 0.0])
    with pytest.raises(ValueError, match=r'give decay_iters \(10\) or decay_epochs \(5\), not both'):
        EntropyDecayHook(decay_iters=10, decay_epochs=5)
