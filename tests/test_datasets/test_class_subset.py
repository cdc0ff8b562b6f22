"""PerClassSubset: the first N samples of every class, the same subset everywhere, wrapped datasets in the feature
tools; the CIFAR-10 JPEG configs read through it."""
from pathlib import Path

import pytest
from mmengine.config import Config

from mmdiff.datasets.class_subset import PerClassSubset, first_per_class
from mmdiff.feature_cache.extraction import build_split_dataset
from mmdiff.registry import DATASETS
from tests.test_utils.tiny_datasets import make_cifar10_jpeg
from tests.test_utils.tool_runs import ROOT

PROBE = ROOT / 'configs/linear_probe/linear-probe_adm-cifar32-b18-t50_cifar10-32px.py'
CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck')


@pytest.fixture(scope='module')
def cifar_jpeg(tmp_path_factory) -> str:
    return make_cifar10_jpeg(tmp_path_factory.mktemp('cifar10-jpeg'), num_train=3, num_val=1)


def folder_dataset(root: str) -> dict:
    return dict(type='mmpretrain.CustomDataset', data_root=root, data_prefix='train', pipeline=[])


def test_first_per_class_keeps_the_order_and_names_short_classes():
    assert first_per_class([2, 0, 2, 1, 0, 2, 1], 2).tolist() == [0, 1, 2, 3, 4, 6]
    with pytest.raises(ValueError, match=r'labels_per_class=3 exceeds what these classes hold \(class: samples\): '
                       r'\{0: 2, 1: 2\}; choose at most 2'):
        first_per_class([2, 0, 2, 1, 0, 2, 1], 3)
    with pytest.raises(ValueError, match='labels_per_class=0 must be a positive integer'):
        first_per_class([0, 1], 0)


def test_subset_holds_the_first_files_of_every_class_folder(cifar_jpeg):
    subset = DATASETS.build(dict(type='mmdiff.PerClassSubset', labels_per_class=2, dataset=folder_dataset(cifar_jpeg)))
    assert isinstance(subset, PerClassSubset) and len(subset) == 20
    assert subset.metainfo['classes'] == CLASSES
    paths = [Path(subset.get_data_info(index)['img_path']) for index in range(len(subset))]
    assert [(path.parent.name, path.name) for path in paths] == [(name, f'{index:04d}.jpg') for name in CLASSES
                                                                 for index in range(2)]
    assert [subset.get_cat_ids(index) for index in range(len(subset))] == [[label] for label in range(10)
                                                                           for _ in range(2)]
    assert subset[3]['gt_label'] == 1 and subset[3]['img_path'] == str(paths[3])
    with pytest.raises(ValueError, match='choose at most 3'):
        PerClassSubset(folder_dataset(cifar_jpeg), labels_per_class=4)


def test_feature_tools_read_a_wrapped_split_with_the_test_pipeline(cifar_jpeg, monkeypatch):
    # the probe config's train split is a PerClassSubset of the train folder: the tools hand the test pipeline to
    # the dataset inside the wrapper (a ``pipeline`` on the wrapper itself would not build)
    monkeypatch.setenv('MMDIFF_CIFAR10_JPEG_ROOT', cifar_jpeg)
    cfg = Config.fromfile(str(PROBE))
    cfg.train_dataloader.dataset.labels_per_class = 1
    cfg.test_dataloader.dataset.pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    dataset, built = build_split_dataset(cfg, 'train')
    assert len(dataset) == 10 and built.type == 'mmdiff.PerClassSubset' and 'pipeline' not in built
    assert built.dataset.pipeline == cfg.test_dataloader.dataset.pipeline
    sample = dataset[0]
    assert tuple(sample['inputs'].shape) == (3, 32, 32) and sample['data_samples'].gt_label.item() == 0
