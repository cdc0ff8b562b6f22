"""mmpretrain dataset over a feature cache, so classification heads train at disk speed.

Pair it with ``CachedFeatureBackbone`` and a plain ``ClsDataPreprocessor`` (no normalisation); configs reach it
with ``custom_imports=dict(imports=['mmdiff'])``.
"""
from typing import Dict

import torch
from mmpretrain.structures import DataSample
from torch.utils.data import Dataset

from mmdiff.registry import DATASETS, register_module
from .cache_format import FeatureCache, manifest_differences, weights_sha256, to_json


@register_module(DATASETS)
class CachedFeatureDataset(Dataset):
    """Samples ``dict(inputs=features, data_samples=DataSample(gt_label))`` read from a feature cache.

    The cache must have been written for exactly the backbone and dataset the config names: the manifest's
    backbone config, checkpoint hash and dataset config are compared with ``expected_backbone`` and
    ``expected_dataset``, and any difference is an error that lists it.

    Args:
        cache_dir (str): A folder written by ``tools/feature_tools/extract_features.py``.
        expected_backbone (dict): The backbone config the features must come from.
        expected_dataset (dict): The dataset config they must come from (its ``pipeline`` is not compared:
            extraction always uses the deterministic test pipeline).
        level (int): Which backbone output to serve. Defaults to -1.
    """

    def __init__(self, cache_dir: str, expected_backbone: dict, expected_dataset: dict, level: int = -1) -> None:
        self.cache = FeatureCache(cache_dir)
        manifest = self.cache.manifest
        expected = dict(backbone=expected_backbone, weights_sha256=weights_sha256(expected_backbone),
                        dataset=self._without_pipeline(expected_dataset))
        found = dict(backbone=manifest['backbone'], weights_sha256=manifest.get('weights_sha256'),
                     dataset=self._without_pipeline(manifest['dataset']))
        differences = manifest_differences(found, expected)
        if differences:
            raise ValueError(f'the feature cache {cache_dir!r} is stale: (cache, config) differ in {differences}; '
                             f're-extract it with tools/feature_tools/extract_features.py')
        self.features = self.cache.level(level)
        self.level = level

    @staticmethod
    def _without_pipeline(dataset: Dict) -> Dict:
        return {key: value for key, value in to_json(dataset).items() if key != 'pipeline'}

    @property
    def metainfo(self) -> dict:
        return dict(taps=self.cache.manifest['taps'])

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> dict:
        features = torch.from_numpy(self.features[index].astype('float32'))
        return dict(inputs=features, data_samples=DataSample().set_gt_label(int(self.cache.labels[index])))
