"""The tiny fake datasets of tests/test_utils/tiny_datasets.py load through every config that reads their data
roots: each of the config's dataloaders builds its dataset, with the config's own pipeline and default scope, from
the generated files."""
import ast
import copy
import json
from pathlib import Path
from typing import Dict, List

import pytest
from mmengine.config import Config
from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS, init_default_scope
from mmengine.utils import import_modules_from_strings
from mmpretrain.datasets import CIFAR10

from mmdiff.utils.dataset_check import innermost_dataset
from tests.test_utils.tiny_datasets import TINY_DATASETS, TinyCIFAR10, make_cifar10
from tests.test_utils.tiny_variants import SUBSET_DATASETS

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / 'configs'
MIN_SAMPLES = dict(train=4, val=2, test=2)


def text_with_local_bases(config: Path) -> str:
    """The config's text followed by that of its local ``_base_`` files, recursively (package bases such as
    ``'mmdet::...'`` hold no mmdiff variable)."""
    text = config.read_text()
    bases: List[str] = []
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(target, 'id', None) == '_base_' for target in node.targets):
            value = ast.literal_eval(node.value)
            bases = [value] if isinstance(value, str) else list(value)
    return text + ''.join(
        text_with_local_bases((config.parent / base).resolve()) for base in bases if '::' not in base)


# the configs that mention a tiny dataset's variable, themselves or in a local base; a config may still override
# every data root it inherits (the demo-shapes configs do)
CANDIDATE_CONFIGS = [
    config for config in sorted(CONFIG_DIR.rglob('*.py')) if '_base_' not in config.relative_to(CONFIG_DIR).parts
    and any(variable in text_with_local_bases(config) for variable in TINY_DATASETS)
]


@pytest.fixture(scope='module')
def tiny_roots(data_root_env) -> Dict[str, str]:
    """The session's tiny dataset of each variable (tests/conftest.py)."""
    return {variable: data_root_env[variable] for variable in TINY_DATASETS}


@pytest.fixture(scope='module')
def tiny_configs(tiny_roots) -> Dict[Path, Config]:
    """The candidate configs, parsed while every data root variable points at its tiny dataset."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for variable, root in tiny_roots.items():
            monkeypatch.setenv(variable, root)
        return {config: Config.fromfile(str(config)) for config in CANDIDATE_CONFIGS}


def tiny_dataset_cfgs(cfg: Config, roots: Dict[str, str]) -> Dict[str, dict]:
    """The dataset configs of the train, val and test dataloaders whose data root (inside a wrapper, if any) is one
    of ``roots``; a class-balanced subset keeps one sample per class, as in the configs' tiny twins."""
    dataset_cfgs = {}
    for split in MIN_SAMPLES:
        dataloader = cfg.get(f'{split}_dataloader')
        if dataloader is not None and innermost_dataset(dataloader.dataset).get('data_root') in roots.values():
            dataset_cfgs[split] = copy.deepcopy(dataloader.dataset)
            if dataset_cfgs[split].type in SUBSET_DATASETS:
                dataset_cfgs[split].labels_per_class = 1
    return dataset_cfgs


def build_datasets(cfg: Config, dataset_cfgs: Dict[str, dict]) -> Dict[str, BaseDataset]:
    """Build the datasets as the runner does, under the config's default scope and custom imports; mmpretrain's
    ``CIFAR10`` becomes :class:`TinyCIFAR10`, which skips the md5 check."""
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    datasets = {}
    with DATASETS.switch_scope_and_registry(cfg.default_scope) as registry:
        for split, dataset_cfg in dataset_cfgs.items():
            if dataset_cfg.type == CIFAR10.__name__:
                dataset_cfg.type = f'mmdiff.{TinyCIFAR10.__name__}'
            datasets[split] = registry.build(dataset_cfg)
    return datasets


def class_count(dataset: BaseDataset, cfg: Config) -> int:
    """The dataset's class count: its metainfo's, else (Flowers102 names no classes) the config's head's."""
    classes = dataset.metainfo.get('classes')
    return len(classes) if classes else cfg.model.head.num_classes


def labels(data_info: dict) -> List[int]:
    """A classification sample's label or a detection sample's instance labels."""
    if 'gt_label' in data_info:
        return [data_info['gt_label']]
    return [instance['bbox_label'] for instance in data_info.get('instances', [])]


@pytest.mark.parametrize('variable', TINY_DATASETS)
def test_every_tiny_dataset_feeds_a_config(variable, tiny_roots, tiny_configs):
    root = {variable: tiny_roots[variable]}
    assert any(tiny_dataset_cfgs(cfg, root) for cfg in tiny_configs.values()), f'no config reads {variable}'


@pytest.mark.parametrize('config', CANDIDATE_CONFIGS, ids=lambda path: str(path.relative_to(CONFIG_DIR)))
def test_config_dataloaders_load_the_tiny_datasets(config, tiny_roots, tiny_configs):
    cfg = tiny_configs[config]
    dataset_cfgs = tiny_dataset_cfgs(cfg, tiny_roots)
    if not dataset_cfgs:
        pytest.skip('every data root comes from a variable without a tiny dataset')
    assert 'train' in dataset_cfgs
    for split, dataset in build_datasets(cfg, dataset_cfgs).items():
        assert len(dataset) >= MIN_SAMPLES[split], split
        num_classes = class_count(dataset, cfg)
        for index in range(len(dataset)):
            assert all(0 <= label < num_classes for label in labels(dataset.get_data_info(index))), (split, index)
        sample = dataset[0]
        assert isinstance(sample, dict) and 'inputs' in sample, split


def test_coco_train_split_keeps_every_image_under_its_class_names(tiny_roots, tiny_configs):
    root = {'MMDIFF_COCO_ROOT': tiny_roots['MMDIFF_COCO_ROOT']}
    cfg = next(cfg for cfg in tiny_configs.values() if 'train' in tiny_dataset_cfgs(cfg, root))
    train = build_datasets(cfg, tiny_dataset_cfgs(cfg, root))['train']
    ann = json.loads(Path(root['MMDIFF_COCO_ROOT'], 'annotations', 'instances_train2017.json').read_text())
    assert train.filter_cfg == dict(filter_empty_gt=True, min_size=32)
    assert len(train) == len(ann['images'])
    category_names = {category['id']: category['name'] for category in ann['categories']}
    classes = train.metainfo['classes']
    loaded = sorted(classes[label] for index in range(len(train)) for label in labels(train.get_data_info(index)))
    assert loaded == sorted(category_names[annotation['category_id']] for annotation in ann['annotations'])


def test_mmpretrain_cifar10_rejects_generated_batches(tmp_path):
    """Why :class:`TinyCIFAR10` exists: ``download=False`` does not skip the md5 check, it raises."""
    root = make_cifar10(tmp_path)
    with pytest.raises(RuntimeError, match='Cannot find CIFAR10'):
        CIFAR10(data_root=root, split='train', download=False)
    assert len(TinyCIFAR10(data_root=root, split='train')) == 5
