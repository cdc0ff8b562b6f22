"""Every shipped config trains and tests under its codebase's own installed tools, as an OpenMMLab user runs them.

For each config: mmdet's, mmseg's or mmpretrain's ``tools/train.py`` (``site-packages/<pkg>/.mim/tools/``) trains a
downstream config that inherits it and changes only its sizes (tests/test_utils/tiny_variants.py: the tiny twin of
its U-Net, two iterations, batches of two), from a working directory outside the repository, with the data found
only through the ``MMDIFF_*_ROOT`` variables (tiny generated datasets in each format); then the same package's
``tools/test.py`` evaluates the checkpoint it wrote. One config per codebase and backbone family,
:data:`FRESH_INTERPRETER`, runs the tools in a fresh interpreter without the repository on its path, so that mmdiff
is found only through the config's ``custom_imports``; every other config runs them in this process (what the check
is about is the model and the config).
"""
import os
import re
from pathlib import Path

import mmdet
import mmpretrain
import mmseg
import pytest
import torch
from mmengine.config import Config

from mmdiff.engine.hooks import GUARD_HOOKS
from mmdiff.utils.safe_checkpoint import load_checkpoint_file

from tests.test_utils.tiny_datasets import DEMO_DATASETS, TINY_DATASETS
from tests.test_utils.tiny_variants import tiny_variant_text
from tests.test_utils.tool_runs import ROOT, run, run_in_process

pytestmark = pytest.mark.slow  # two tool runs per config: `make test` runs them, `make test-quick` does not

CONFIGS = sorted(path for path in (ROOT / 'configs').rglob('*.py') if '_base_' not in path.parts)
TOOLS = {package.__name__: Path(package.__file__).parent / '.mim' / 'tools' for package in (mmdet, mmseg, mmpretrain)}
# what each codebase's test tool prints for the configs' evaluators
METRICS = {'mmdet': 'coco/bbox_mAP', 'mmseg': 'mIoU', 'mmpretrain': 'accuracy/top1'}
NO_DETECTIONS = 'The testing results of the whole dataset is empty.'
CACHED_PROBE = ROOT / 'configs/linear_probe/linear-probe_adm-tiny-b24-t150_cached_demo-shapes.py'
LIVE_PROBE = ROOT / 'configs/linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py'
# one config per codebase and backbone (or model) family, the cheapest of its family, run by the installed tools in a
# fresh interpreter; every other config runs them in this process
FRESH_INTERPRETER = {
    'mmdet, ADM U-Net': 'mask_rcnn/mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py',
    'mmdet, distilled ResNet-18': 'mask_rcnn/mask-rcnn_r18-repfusion_fpn_1x_coco.py',
    'mmseg, ADM U-Net': 'upernet/upernet_adm-tiny-t10_demo-shapes-128x128.py',
    'mmseg, Stable Diffusion latent U-Net (VPD)': 'vpd/fpn_vpd-sd15_8xb2-80k_ade20k-512x512.py',
    'mmpretrain, ADM U-Net': 'linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py',
    'mmpretrain, DifFeed': 'classification_heads/diffeed-attention-head_adm-tiny-b24-t150_demo-shapes.py',
    'mmpretrain, cached features': 'linear_probe/linear-probe_adm-tiny-b24-t150_cached_demo-shapes.py',
    'mmpretrain, RepFusion distiller': 'repfusion/repfusion_adm-digits-b18-policy_resnet18-cifar_digits-16px.py',
    'mmpretrain, CIFAR ResNet-18 student': 'repfusion/resnet18-cifar_digits-16px_scratch.py',
    'mmpretrain, diffusion pre-training': 'diffusion_pretraining/ddpm_adm-digits_2k_digits-16px.py',
}
IN_PROCESS = [config for config in CONFIGS
              if str(config.relative_to(ROOT / 'configs')) not in FRESH_INTERPRETER.values()]


def test_every_data_root_variable_of_the_configs_gets_a_tiny_dataset():
    read = set()
    for path in (ROOT / 'configs').rglob('*.py'):
        read |= set(re.findall(r'\{\{\$(MMDIFF_\w+_ROOT):', path.read_text()))
    assert read == set(TINY_DATASETS) | set(DEMO_DATASETS)


def test_every_config_runs_once_and_every_codebase_has_a_fresh_interpreter_run():
    fresh = [ROOT / 'configs' / name for name in FRESH_INTERPRETER.values()]
    assert sorted(IN_PROCESS + fresh) == CONFIGS
    assert {label.split(',')[0] for label in FRESH_INTERPRETER} == set(TOOLS)
    assert {Config.fromfile(str(config)).default_scope for config in fresh} == set(TOOLS)


def generated_cifar(cfg: Config) -> dict:
    """mmpretrain's CIFAR10 checks its files' md5 sums against the real archive: read the generated ones with
    tests/test_utils/tiny_datasets.py's TinyCIFAR10 (the same class without that check) instead."""
    loaders = {name: dict(dataset=dict(type='mmdiff.TinyCIFAR10')) for name in ('train_dataloader', 'val_dataloader',
                                                                         'test_dataloader')
               if cfg.get(name) is not None and cfg[name].dataset.type == 'CIFAR10'}
    if not loaders:
        return {}
    imports = list((cfg.get('custom_imports') or {}).get('imports', []))
    return dict(loaders, custom_imports=dict(imports=imports + ['tests.test_utils.tiny_datasets'],
                                             allow_failed_imports=False))


def train_and_test(config: Path, data_env: dict, tmp_path: Path, fresh_interpreter: bool) -> None:
    """Train the tiny twin of ``config`` with its codebase's installed train tool, from a folder outside the
    repository, then evaluate the checkpoint it wrote with the installed test tool."""
    cfg = Config.fromfile(str(config))
    cwd = tmp_path / 'project'  # outside the repository
    cwd.mkdir()
    cifar = generated_cifar(cfg)
    if fresh_interpreter:
        env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
        env.update(data_env, **({'PYTHONPATH': str(ROOT)} if cifar else {}))  # TinyCIFAR10 lives in the tests

        def tool(script: Path, *args) -> object:
            return run([script, *args], cwd=cwd, env=env, timeout=1200)
    else:
        def tool(script: Path, *args) -> object:
            return run_in_process(script, args, cwd=cwd, env=data_env)
    if config == CACHED_PROBE:  # the cached probe reads features the live probe's backbone wrote, as its header says
        cache = 'work_dirs/feature_cache/linear-probe_adm-tiny-b24-t150_demo-shapes'
        for split in ('train', 'val'):
            extracted = run_in_process(ROOT / 'tools/feature_tools/extract_features.py', [
                LIVE_PROBE, '--split', split, '--out', f'{cache}/{split}'], cwd=cwd, env=data_env)
            assert extracted.returncode == 0, extracted.stderr[-3000:]
    tiny = cwd / f'tiny_{config.name}'
    tiny.write_text(tiny_variant_text(config, cfg, cifar))
    work = tmp_path / 'work'
    train = tool(TOOLS[cfg.default_scope] / 'train.py', tiny, '--work-dir', work)
    assert train.returncode == 0, train.stderr[-4000:]
    assert re.search(r'Epoch\(train\)|Iter\(train\)', train.stdout + train.stderr)
    checkpoint = (work / 'last_checkpoint').read_text().strip()
    assert Path(checkpoint).is_file()
    # RandomStateHook ran under the codebase's own tool: the checkpoint keeps the generators' states
    assert 'random_state' in load_checkpoint_file(checkpoint)
    if cfg.get('test_dataloader') is None:
        return  # a distillation or a pre-training: nothing to evaluate (its student or U-Net is, elsewhere)
    test = tool(TOOLS[cfg.default_scope] / 'test.py', tiny, checkpoint, '--work-dir', tmp_path / 'test')
    assert test.returncode == 0, test.stderr[-4000:]
    log = test.stdout + test.stderr
    assert re.search(r'(Epoch|Iter)\(test\) \[(\d+)/\2\]', log)  # the last test batch
    # a detector trained for two iterations may detect nothing, and mmdet then reports no COCO metric, saying so
    assert METRICS[cfg.default_scope] in log or (cfg.default_scope == 'mmdet' and NO_DETECTIONS in log)


@pytest.mark.parametrize('config', IN_PROCESS, ids=lambda path: str(path.relative_to(ROOT / 'configs')))
def test_a_config_trains_and_tests_under_its_codebases_own_tools(config, data_root_env, tmp_path):
    train_and_test(config, data_root_env, tmp_path, fresh_interpreter=False)


@pytest.mark.parametrize('config', FRESH_INTERPRETER.values(), ids=FRESH_INTERPRETER.keys())
def test_the_installed_tools_find_mmdiff_through_custom_imports_alone(config, data_root_env, tmp_path):
    train_and_test(ROOT / 'configs' / config, data_root_env, tmp_path, fresh_interpreter=True)


def test_every_shipped_config_lists_the_guard_hooks():
    for config in CONFIGS:
        listed = [hook['type'] for hook in Config.fromfile(str(config)).get('custom_hooks') or []]
        assert set(GUARD_HOOKS) <= set(listed), (config, listed)


def test_the_codebases_own_tools_run_mmdiffs_guards(data_root_env, tmp_path):
    """mmdet's own train tool stops a NaN loss with mmdiff's message and writes no checkpoint; its test tool refuses
    a checkpoint of another model (mmengine alone would load nothing of it and evaluate random weights)."""
    config = ROOT / 'configs/mask_rcnn/mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py'
    cfg = Config.fromfile(str(config))
    tiny = tmp_path / f'nan_{config.name}'
    tiny.write_text(tiny_variant_text(config, cfg, {}))
    work = tmp_path / 'work'
    train = run_in_process(TOOLS['mmdet'] / 'train.py', [
        tiny, '--work-dir', work, '--cfg-options', 'model.rpn_head.loss_cls.loss_weight=nan'], cwd=tmp_path,
        env=data_root_env)
    assert train.returncode != 0
    assert re.search(r'training stopped at iteration 1: the loss is nan .*no checkpoint was written', train.stderr), \
        train.stderr[-3000:]
    assert not list(work.glob('*.pth'))
    other = tmp_path / 'other_model.pth'
    torch.save(dict(state_dict=torch.nn.Conv2d(3, 8, 3).state_dict()), other)
    test = run_in_process(TOOLS['mmdet'] / 'test.py', [tiny, other, '--work-dir', tmp_path / 'test'], cwd=tmp_path,
                          env=data_root_env)
    assert test.returncode != 0
    assert re.search(r'does not fit the model of .*missing keys', test.stderr), test.stderr[-3000:]
