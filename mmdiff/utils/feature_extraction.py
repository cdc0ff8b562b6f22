"""Glue between a classification config and the feature cache, shared by the feature tools."""
import copy
from typing import Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS, MODELS
from mmengine.runner import set_random_seed
from torch import Tensor, nn

from mmdiff.datasets.feature_cache import BatchFunction, FeatureCache, backbone_manifest, extract_to_cache
from .choices import check_choice
from .model_check import check_pixel_normalisation
from .runner_access import gt_labels
from .runner_config import enter_config_scope

SPLITS = ('train', 'val', 'test')


def build_split_dataset(cfg: Config, split: str) -> Tuple[object, dict]:
    """The ``split`` dataset of a config, read with ``test_dataloader``'s (deterministic) pipeline.

    Returns:
        tuple: (dataset, the dataset config as built).
    """
    check_choice('split', split, SPLITS)
    if cfg.get(f'{split}_dataloader') is None:
        raise ValueError(f'the config has no {split}_dataloader')
    enter_config_scope(cfg)
    dataset_cfg = copy.deepcopy(cfg[f'{split}_dataloader'].dataset)
    dataset_cfg.pipeline = copy.deepcopy(cfg.test_dataloader.dataset.pipeline)
    return DATASETS.build(dataset_cfg), dataset_cfg


def init_seed(cfg: Config) -> int:
    """The seed the model is initialised with: the config's ``randomness.seed``, else 0."""
    seed = (cfg.get('randomness') or {}).get('seed')
    return 0 if seed is None else seed


def build_model_and_dataset(cfg: Config, split: str) -> Tuple[nn.Module, object, dict]:
    """The config's model (weights initialised, eval mode) and the ``split`` dataset with the test pipeline.

    Extraction must be deterministic, so every split is read with ``test_dataloader``'s pipeline, and the model
    is built right after seeding with :func:`init_seed`: weights that no checkpoint sets (a random-weight
    baseline, fresh projections) are the same for every split and every process.

    Returns:
        tuple: (model, dataset, the dataset config as built).
    """
    dataset, dataset_cfg = build_split_dataset(cfg, split)
    check_pixel_normalisation(cfg)
    set_random_seed(init_seed(cfg))
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    return model, dataset, dataset_cfg


def preprocessed_pixels(cfg: Config, split: str, batch_size: int = 64) -> Tuple[Tensor, Tensor]:
    """The ``split`` images as the classifier's data preprocessor hands them to the backbone, with their labels:
    the input of a raw-pixel baseline.

    Returns:
        tuple: ``(N, C, H, W)`` float images (all of one size) and ``(N,)`` labels.
    """
    dataset, _ = build_split_dataset(cfg, split)
    preprocessor = MODELS.build(dict(dict(type='ClsDataPreprocessor'), **cfg.model.get('data_preprocessor', {})))
    batches = [preprocessed_batch(preprocessor, dataset, range(start, min(start + batch_size, len(dataset))))
               for start in range(0, len(dataset), batch_size)]
    return torch.cat([images.float() for images, _ in batches]), torch.cat([labels for _, labels in batches])


def preprocessed_batch(preprocessor: nn.Module, dataset: Sequence, indices: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """Collate the samples at ``indices`` and preprocess them: ``(inputs (N, C, H, W), labels (N,))``."""
    data = preprocessor(pseudo_collate([dataset[index] for index in indices]), False)
    return data['inputs'], gt_labels(data['data_samples'])


def classifier_batch_features(model: nn.Module, dataset: Sequence) -> BatchFunction:
    """A batch function for :func:`extract_to_cache`: preprocess the samples and run the model's backbone."""

    def batch_features(indices: Sequence[int]) -> Tuple[Sequence[Tensor], Tensor]:
        inputs, labels = preprocessed_batch(model.data_preprocessor, dataset, indices)
        return model.backbone(inputs), labels

    return batch_features


def extract_split(cfg: Config, split: str, cache_dir: str, **kwargs) -> FeatureCache:
    """Write (or resume) the feature cache of one split of a classification config.

    Args:
        cfg (Config): A classification config whose backbone is a ``DiffusionUNetBackbone``.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        cache_dir (str): Output folder.
        **kwargs: ``shard_size``, ``batch_size``, ``pool_size``, ``dtype``, ``show_progress``, ``overwrite`` of
            :func:`extract_to_cache`.
    """
    model, dataset, dataset_cfg = build_model_and_dataset(cfg, split)
    manifest = dict(
        backbone_manifest(cfg.model.backbone.to_dict(), model.backbone.feature_info, kwargs.get('pool_size')),
        init_seed=init_seed(cfg),
        dataset={key: value for key, value in dataset_cfg.to_dict().items() if key != 'pipeline'},
        pipeline=dataset_cfg.pipeline)
    paths = [dataset.get_data_info(i).get('img_path') for i in range(len(dataset))]
    sources = paths if all(isinstance(path, str) for path in paths) else None  # None: generated in memory
    return extract_to_cache(classifier_batch_features(model, dataset), len(dataset), cache_dir, manifest,
                            sources=sources, **kwargs)
