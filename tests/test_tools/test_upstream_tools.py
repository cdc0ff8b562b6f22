"""Every shipped config trains and tests under its codebase's own installed tools, as an OpenMMLab user runs them.

For each config: mmdet's, mmseg's or mmpretrain's ``tools/train.py`` (``site-packages/<pkg>/.mim/tools/``) trains a
downstream config that inherits it and changes only its sizes (tests/test_utils/tiny_variants.py: the tiny twin of
its U-Net, two iterations, batches of two), from a working directory outside the repository, with mmdiff found only
through the config's ``custom_imports`` and the data found only through the ``MMDIFF_*_ROOT`` variables (tiny
generated datasets in each format); then the same package's ``tools/test.py`` evaluates the checkpoint it wrote.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import mmdet
import mmpretrain
import mmseg
import pytest
from mmengine.config import Config

from mmdiff.datasets.synthetic_shapes import (make_shapes_classification_dataset, make_shapes_dataset,
                                              make_shapes_segmentation_dataset)
from tests.test_utils.detection_demo import ROOT
from tests.test_utils.tiny_datasets import TINY_DATASETS
from tests.test_utils.tiny_variants import tiny_variant_text

pytestmark = pytest.mark.slow  # two tool runs per config: `make test` runs them, `make test-quick` does not

CONFIGS = sorted(path for path in (ROOT / 'configs').rglob('*.py') if '_base_' not in path.parts)
TOOLS = {package.__name__: Path(package.__file__).parent / '.mim' / 'tools' for package in (mmdet, mmseg, mmpretrain)}
# what each codebase's test tool prints for the configs' evaluators
METRICS = {'mmdet': 'coco/bbox_mAP', 'mmseg': 'mIoU', 'mmpretrain': 'accuracy/top1'}
NO_DETECTIONS = 'The testing results of the whole dataset is empty.'
CACHED_PROBE = ROOT / 'configs/linear_probe/linear-probe_adm-tiny-b24-t150_cached_demo-shapes.py'
LIVE_PROBE = ROOT / 'configs/linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py'


DEMO_DATASETS = {
    'MMDIFF_DEMO_SHAPES_ROOT': lambda root: make_shapes_dataset(str(root), num_train=4, num_val=2, image_size=64),
    'MMDIFF_DEMO_SHAPES_SEG_ROOT': lambda root: make_shapes_segmentation_dataset(str(root), num_train=4, num_val=2,
                                                                                image_size=64),
    'MMDIFF_DEMO_SHAPES_CLS_ROOT': lambda root: make_shapes_classification_dataset(
        str(root), num_train_per_class=2, num_val_per_class=1, image_size=32),
}


@pytest.fixture(scope='module')
def data_env(tmp_path_factory) -> dict:
    """The environment of a user whose datasets are elsewhere: every ``MMDIFF_*_ROOT`` at a tiny generated set."""
    data = tmp_path_factory.mktemp('datasets')
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    for variable, make in TINY_DATASETS.items():
        env[variable] = make(data / variable.lower())
    for variable, make in DEMO_DATASETS.items():
        make(data / variable.lower())
        env[variable] = f'{data / variable.lower()}/'
    return env


def test_every_data_root_variable_of_the_configs_gets_a_tiny_dataset():
    read = set()
    for path in (ROOT / 'configs').rglob('*.py'):
        read |= set(re.findall(r'\{\{\$(MMDIFF_\w+_ROOT):', path.read_text()))
    assert read == set(TINY_DATASETS) | set(DEMO_DATASETS)


def run_tool(args: list, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=1200)


def generated_cifar(cfg: Config) -> dict:
    """mmpretrain's CIFAR10 checks its files' md5 sums against the real archive: read the generated ones with
    tests/test_utils/tiny_datasets.py's TinyCIFAR10 (the same class without that check) instead."""
    loaders = {name: dict(dataset=dict(type='TinyCIFAR10')) for name in ('train_dataloader', 'val_dataloader',
                                                                         'test_dataloader')
               if cfg.get(name) is not None and cfg[name].dataset.type == 'CIFAR10'}
    if not loaders:
        return {}
    imports = list((cfg.get('custom_imports') or {}).get('imports', []))
    return dict(loaders, custom_imports=dict(imports=imports + ['tests.test_utils.tiny_datasets'],
                                             allow_failed_imports=False))


def write_feature_cache(cwd: Path, env: dict) -> None:
    """The cached probe reads features the live probe's backbone wrote: extract them as its header says."""
    cache = 'work_dirs/feature_cache/linear-probe_adm-tiny-b24-t150_demo-shapes'
    for split in ('train', 'val'):
        result = run_tool([ROOT / 'tools/extract_features.py', LIVE_PROBE, '--split', split, '--out',
                           f'{cache}/{split}'], cwd, env)
        assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize('config', CONFIGS, ids=lambda path: str(path.relative_to(ROOT / 'configs')))
def test_a_config_trains_and_tests_under_its_codebases_own_tools(config, data_env, tmp_path):
    cfg = Config.fromfile(str(config))
    cwd = tmp_path / 'project'  # outside the repository
    cwd.mkdir()
    if config == CACHED_PROBE:
        write_feature_cache(cwd, data_env)
    cifar = generated_cifar(cfg)
    env = dict(data_env, PYTHONPATH=str(ROOT)) if cifar else data_env  # TinyCIFAR10 lives in the tests
    tiny = cwd / f'tiny_{config.name}'
    tiny.write_text(tiny_variant_text(config, cfg, cifar))
    work = tmp_path / 'work'
    train = run_tool([TOOLS[cfg.default_scope] / 'train.py', tiny, '--work-dir', work], cwd, env)
    assert train.returncode == 0, train.stderr[-4000:]
    assert re.search(r'Epoch\(train\)|Iter\(train\)', train.stdout + train.stderr)
    checkpoint = (work / 'last_checkpoint').read_text().strip()
    assert Path(checkpoint).is_file()
    if cfg.get('test_dataloader') is None:
        return  # a distillation or a pre-training: nothing to evaluate (its student or U-Net is, elsewhere)
    test = run_tool([TOOLS[cfg.default_scope] / 'test.py', tiny, checkpoint, '--work-dir', tmp_path / 'test'], cwd,
                    env)
    assert test.returncode == 0, test.stderr[-4000:]
    log = test.stdout + test.stderr
    assert re.search(r'(Epoch|Iter)\(test\) \[(\d+)/\2\]', log)  # the last test batch
    # a detector trained for two iterations may detect nothing, and mmdet then reports no COCO metric, saying so
    assert METRICS[cfg.default_scope] in log or (cfg.default_scope == 'mmdet' and NO_DETECTIONS in log)
