"""The build-time check that a diffusion backbone's data preprocessor maps pixels [0, 255] to [-1, 1]."""
import warnings
from pathlib import Path

import pytest
from mmengine.config import Config

import mmdiff  # noqa: F401  registers the backbones
from mmdiff.utils.model_check import check_pixel_normalisation
from mmdiff.utils.config_scope import enter_config_scope

ROOT = Path(__file__).resolve().parents[2]
# the one shipped config whose published recipe feeds the teacher ImageNet-normalised pixels (docs/fidelity.md)
IMAGENET_NORMALISED = 'configs/repfusion/repfusion_adm-64-mid-policy_resnet18_1xb64-200e_tiny-imagenet.py'


def model_config(**model) -> Config:
    cfg = Config(dict(default_scope='mmpretrain', model=dict(type='ImageClassifier', **model)))
    enter_config_scope(cfg)
    return cfg


def messages(cfg: Config) -> list:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        check_pixel_normalisation(cfg)
    # the first registry lookups import mmcv and mmdet modules, which warn of their own deprecations
    return [str(warning.message) for warning in caught if 'expects pixels normalised' in str(warning.message)]


BACKBONE = dict(type='mmdiff.DiffusionUNetBackbone', arch='adm-tiny')


@pytest.mark.parametrize('mean, std', [([127.5] * 3, [127.5] * 3), ([128.0] * 3, [128.0] * 3), ([127.5], [127.5])])
def test_preprocessors_that_map_to_minus_one_one_pass_silently(mean, std):
    cfg = model_config(backbone=BACKBONE, data_preprocessor=dict(mean=mean, std=std))
    assert messages(cfg) == []


def test_a_missing_mean_and_std_is_reported():
    assert messages(model_config(backbone=BACKBONE, data_preprocessor=dict(to_rgb=True))) == [
        "model.backbone expects pixels normalised to [-1.0, 1.0], but model's data preprocessor sets no mean and "
        'std: images reach it in [0, 255]. Set mean=std=127.5']
    assert len(messages(model_config(backbone=BACKBONE))) == 1  # no preprocessor at all


def test_the_top_level_preprocessor_counts_when_the_model_has_none():
    """mmpretrain's dataset bases set ``data_preprocessor`` at the top; mmengine's Runner hands it to the model."""
    cfg = model_config(backbone=BACKBONE)
    cfg.data_preprocessor = dict(mean=[127.5] * 3, std=[127.5] * 3)
    assert messages(cfg) == []
    cfg.data_preprocessor = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
    assert messages(cfg)[0].startswith("model.backbone expects pixels normalised to [-1.0, 1.0], but the config's "
                                       'data preprocessor (mean=[123.675')
    cfg.model.data_preprocessor = dict(mean=[127.5] * 3, std=[127.5] * 3)  # the model's own wins
    assert messages(cfg) == []


def test_imagenet_statistics_are_reported_with_what_they_map_to():
    cfg = model_config(backbone=BACKBONE, data_preprocessor=dict(mean=[123.675, 116.28, 103.53],
                                                                 std=[58.395, 57.12, 57.375]))
    assert messages(cfg) == [
        "model.backbone expects pixels normalised to [-1.0, 1.0], but model's data preprocessor (mean=[123.675, "
        '116.28, 103.53], std=[58.395, 57.12, 57.375]) maps pixels 0 and 255 to [-2.12, -2.04, -1.8] and [2.25, '
        '2.43, 2.64]. mean=std=127.5 maps them to -1 and 1']


def test_the_nearest_enclosing_preprocessor_is_the_one_checked():
    """A wrapped model with its own preprocessor: the outer one does not feed the backbone."""
    cfg = model_config(backbone=dict(type='mmdiff.DiffusionUNetBackbone'),
                       data_preprocessor=dict(mean=[0.0] * 3, std=[1.0] * 3),
                       teacher=dict(type='ImageClassifier', backbone=BACKBONE,
                                    data_preprocessor=dict(mean=[127.5] * 3, std=[127.5] * 3)))
    assert [message.split(' expects')[0] for message in messages(cfg)] == ['model.backbone']
    cfg.model.teacher.data_preprocessor.std = [255.0] * 3
    reported = messages(cfg)
    assert len(reported) == 2 and 'model.teacher.backbone expects' in reported[1]
    assert "but model.teacher's data preprocessor (mean=[127.5" in reported[1]


def test_other_backbones_are_not_checked():
    assert messages(model_config(backbone=dict(type='ResNet', depth=18))) == []


def test_of_the_shipped_configs_only_the_documented_one_is_reported():
    reported = {}
    for path in sorted((ROOT / 'configs').rglob('*.py')):
        if '_base_' in path.parts:
            continue
        cfg = Config.fromfile(str(path))
        enter_config_scope(cfg)
        found = messages(cfg)
        if found:
            reported[str(path.relative_to(ROOT))] = found
    assert list(reported) == [IMAGENET_NORMALISED]
    assert reported[IMAGENET_NORMALISED][0].startswith('model.teacher expects pixels normalised to [-1.0, 1.0]')
