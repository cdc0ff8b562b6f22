"""RepFusion configs: distil on the digits, export the student, fine-tune it; the paper-scale configs build."""
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from tests.test_utils.tool_runs import ROOT, run_in_process

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: `make test` runs them, `make test-quick` does not

EXPORT = ROOT / 'tools/model_converters/export_student.py'
REPFUSION = ROOT / 'configs' / 'repfusion'
POLICY_DEMO = REPFUSION / 'repfusion_adm-digits-b18-policy_resnet18-cifar_digits-16px.py'
FIXED_DEMO = REPFUSION / 'repfusion_adm-digits-b18-t100_resnet18-cifar_digits-16px.py'
FINETUNE_DEMO = REPFUSION / 'resnet18-cifar_digits-16px_finetune-repfusion.py'
SHORT = ['train_cfg.max_iters=4', 'default_hooks.logger.interval=2', 'default_hooks.checkpoint.interval=4',
         'param_scheduler.0.end=2', 'param_scheduler.1.begin=2', 'param_scheduler.1.end=4',
         'model.teacher.init_cfg=None', 'train_dataloader.batch_size=16']  # no pre-trained DPM in CI


@pytest.fixture(scope='module')
def distilled(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp('distill')
    result = run_in_process(ROOT / 'tools/train.py', [POLICY_DEMO, '--work-dir', work, '--cfg-options', *SHORT])
    assert result.returncode == 0, result.stderr[-3000:]
    losses = re.findall(r'Iter\(train\) \[4/4\].*?loss_distill: ([\d.]+).*?loss_policy: (-?[\d.]+).*?'
                        r'policy_entropy: ([\d.]+).*?timestep_mean: ([\d.]+)', result.stdout + result.stderr)
    assert losses, (result.stdout + result.stderr)[-3000:]
    return work / 'iter_4.pth'


def test_the_fixed_timestep_ablation_trains(tmp_path):
    result = run_in_process(ROOT / 'tools/train.py', [FIXED_DEMO, '--work-dir', tmp_path, '--cfg-options', *SHORT])
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert 'loss_distill' in log and 'loss_policy' not in log


def test_the_exported_student_loads_into_an_mmpretrain_resnet18(distilled, tmp_path):
    student = tmp_path / 'student.pth'
    result = run_in_process(EXPORT, [distilled, '--out', student])
    assert result.returncode == 0, result.stderr[-3000:]
    exported = torch.load(student, map_location='cpu', weights_only=True)['state_dict']
    assert exported and all(key.startswith('backbone.') for key in exported)
    written = student.read_bytes()  # a second export replaces it only when asked
    again = run_in_process(EXPORT, [distilled, '--out', student, '--weights', 'raw'])
    assert again.returncode != 0 and 'already exists' in again.stderr and student.read_bytes() == written
    replaced = run_in_process(EXPORT, [distilled, '--out', student, '--overwrite'])
    assert replaced.returncode == 0

    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    resnet = MODELS.build(dict(type='ResNet_CIFAR', depth=18))
    incompatible = resnet.load_state_dict({key[len('backbone.'):]: value for key, value in exported.items()})
    assert not incompatible.missing_keys and not incompatible.unexpected_keys
    # and through the init_cfg the fine-tuning configs use
    resnet = MODELS.build(dict(type='ResNet_CIFAR', depth=18,
                               init_cfg=dict(type='Pretrained', checkpoint=str(student), prefix='backbone.')))
    resnet.init_weights()
    distilled_weights = torch.load(distilled, map_location='cpu', weights_only=False)['state_dict']
    for name, value in resnet.state_dict().items():
        torch.testing.assert_close(value, distilled_weights[f'backbone.{name}'], msg=name)


def test_the_distilled_student_fine_tunes(distilled, tmp_path):
    student = tmp_path / 'student.pth'
    assert run_in_process(EXPORT, [distilled, '--out', student]).returncode == 0
    result = run_in_process(ROOT / 'tools/train.py', [
        FINETUNE_DEMO, '--work-dir', tmp_path / 'work', '--cfg-options',
        f'model.backbone.init_cfg.checkpoint={student}', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'param_scheduler.0.end=1'])
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert f'Load checkpoint from {student}' in log or str(student) in log
    assert re.search(r'accuracy/top1: [\d.]+', log)


def test_export_refuses_a_checkpoint_that_is_not_a_distillation(tmp_path):
    checkpoint = tmp_path / 'classifier.pth'
    torch.save(dict(state_dict={'backbone.conv1.weight': torch.zeros(1), 'head.fc.weight': torch.zeros(1)}),
               checkpoint)
    result = run_in_process(EXPORT, [checkpoint, '--out', tmp_path / 'student.pth'])
    assert result.returncode != 0
    assert "is not a RepFusionDistiller checkpoint (no teacher. weights; its top-level modules are ['backbone.', " \
           "'head.'])" in result.stderr
    assert not (tmp_path / 'student.pth').exists()


def test_the_cifar10_distillation_builds_with_a_random_teacher():
    cfg = Config.fromfile(str(REPFUSION / 'repfusion-mmdiff_ddpm-cifar10-up0-policy100_resnet18-cifar_cifar10.py'))
    cfg.model.teacher.update(arch='ddpm-cifar10', model_dir=None)  # the diffusers folder is not in CI
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    model = MODELS.build(cfg.model)
    assert model.timestep_policy.timesteps.tolist() == list(range(100))
    assert sum(p.numel() for p in model.teacher.parameters()) == pytest.approx(35.7e6, rel=0.01)
    assert not any(p.requires_grad for p in model.teacher.parameters())


@pytest.mark.parametrize('config, student', [
    ('repfusion-mmdiff_adm-64-up1-policy50_resnet18_tiny-imagenet.py', 'ResNet'),
    ('repfusion-mmdiff_adm-64-up1-policy50_mobilenetv2_tiny-imagenet.py', 'MobileNetV2'),
])
def test_the_tiny_imagenet_distillations_name_their_parts(config, student):
    cfg = Config.fromfile(str(REPFUSION / config))
    assert cfg.model.teacher.arch == 'adm-64' and cfg.model.backbone.type == student
    assert cfg.model.num_classes == 200 and cfg.model.timestep_policy.timesteps == list(range(50))


def test_an_imagenet_layout_student_loads_into_the_mask_rcnn_resnet18():
    """The Tiny-ImageNet student (mmpretrain ResNet-18) has exactly the weights of mmdet's ResNet-18 backbone."""
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS
    student = PRETRAIN_MODELS.build(dict(type='ResNet', depth=18))
    cfg = Config.fromfile(str(ROOT / 'configs/mask_rcnn/mask-rcnn_r18-repfusion_fpn_1x_coco.py'))
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    init_default_scope('mmdet')
    from mmdet.registry import MODELS as DET_MODELS
    backbone = DET_MODELS.build(dict(cfg.model.backbone, init_cfg=None))
    incompatible = backbone.load_state_dict(student.state_dict())
    assert not incompatible.missing_keys and not incompatible.unexpected_keys
