"""Glue between a classification config and the feature cache, shared by the feature tools."""
import copy
import time
from functools import partial
from typing import Callable, Iterator, Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DATASETS, FUNCTIONS, MODELS
from mmengine.runner import set_random_seed
from torch import Tensor, nn
from torch.utils.data import DataLoader

from mmdiff.utils.choices import check_choice
from mmdiff.utils.config_scope import enter_config_scope
from mmdiff.utils.dataset_check import innermost_dataset
from mmdiff.utils.model_check import check_pixel_normalisation
from mmdiff.utils.runner_access import gt_labels
from .cache_format import FeatureCache, backbone_manifest
from .writer import extract_to_cache

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
    # a dataset wrapper (mmdiff.PerClassSubset, mmengine's ClassBalancedDataset ...) passes the pipeline inwards
    innermost_dataset(dataset_cfg)['pipeline'] = copy.deepcopy(
        innermost_dataset(cfg.test_dataloader.dataset)['pipeline'])
    return DATASETS.build(dataset_cfg), dataset_cfg


def init_seed(cfg: Config) -> int:
    """The seed the model is initialised with: the config's ``randomness.seed``, else 0."""
    seed = (cfg.get('randomness') or {}).get('seed')
    return 0 if seed is None else seed


def loader_workers(cfg: Config, num_workers: Optional[int]) -> int:
    """``num_workers`` when given (>= 0), else the config's ``test_dataloader.num_workers`` (0 when unset)."""
    if num_workers is None:
        return cfg.test_dataloader.get('num_workers', 0)
    if num_workers < 0:
        raise ValueError(f'num_workers must be >= 0 (0 reads in the main process), got {num_workers}')
    return num_workers


def loader_collate(cfg: Config) -> Callable:
    """The batch collation of the config's ``test_dataloader``, built as mmengine's Runner builds it: its
    ``collate_fn`` (a registered function's ``type`` and keyword arguments), else ``pseudo_collate``."""
    collate_cfg = dict(cfg.test_dataloader.get('collate_fn') or dict(type='pseudo_collate'))
    collate = collate_cfg.pop('type')
    if isinstance(collate, str):
        enter_config_scope(cfg)  # the scope whose registered functions the name may be
        name, collate = collate, FUNCTIONS.get(collate)
        if collate is None:
            raise ValueError(f'test_dataloader.collate_fn.type={name!r} is not a registered function; choose one of '
                             f'{sorted(FUNCTIONS.module_dict)} or a function registered in FUNCTIONS by a custom '
                             'import')
    return partial(collate, **collate_cfg)


def build_model_and_dataset(cfg: Config, split: str, device: str = 'cpu') -> Tuple[nn.Module, object, dict]:
    """The config's model (weights initialised, eval mode, on ``device``) and the ``split`` dataset with the test
    pipeline.

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
    model.to(device)
    model.eval()
    return model, dataset, dataset_cfg


def inputs_and_labels(samples: Sequence[dict], collate_fn: Callable = pseudo_collate) -> dict:
    """A batch collated by ``collate_fn`` and reduced to what extraction uses: ``inputs`` and ``labels`` (one
    ``(N,)`` tensor, or None without labels).

    Run in the DataLoader's workers, it sends the model's process one label tensor per batch instead of a
    ``DataSample`` per image, each label a shared-memory tensor (which costs more to receive than most pipelines
    take to read the image).
    """
    data = collate_fn(samples)
    return dict(inputs=data['inputs'], labels=gt_labels(data['data_samples']))


def collated_batches(dataset: Sequence, batches: Sequence[Sequence[int]], num_workers: int, pin_memory: bool,
                     collate_fn: Callable = pseudo_collate) -> DataLoader:
    """A DataLoader that yields, in order, the :func:`inputs_and_labels` of each batch of indices, collated by
    ``collate_fn`` and read by ``num_workers`` worker processes (0: in this process)."""
    return DataLoader(dataset, batch_sampler=batches, num_workers=num_workers, pin_memory=pin_memory,
                      collate_fn=partial(inputs_and_labels, collate_fn=collate_fn))


class ClassifierFeatureStream:
    """The feature stream (see :func:`extract_to_cache`) of a classifier over a dataset: DataLoader workers read
    and transform the samples while the model's data preprocessor and backbone run on the model's device.

    Args:
        model (nn.Module): An mmpretrain classifier (``data_preprocessor`` and ``backbone``), on its device.
        dataset (Sequence): The dataset, with a deterministic pipeline.
        num_workers (int): DataLoader worker processes; 0 reads in this process, and so does a call with a single
            batch (the cache's shape probe), where workers would only add their start-up.
        collate_fn (callable): Collates a batch's samples (:func:`loader_collate` gives the config's). Defaults to
            mmengine's ``pseudo_collate``.

    Attributes:
        wait_seconds (float): Time the model spent waiting for the next batch of samples, over all calls.
    """

    def __init__(self, model: nn.Module, dataset: Sequence, num_workers: int = 0,
                 collate_fn: Callable = pseudo_collate) -> None:
        self.model = model
        self.dataset = dataset
        self.num_workers = num_workers
        self.collate_fn = collate_fn
        self.wait_seconds = 0.0

    def __call__(self, batches: Sequence[Sequence[int]]) -> Iterator[Tuple[Sequence[Tensor], Tensor]]:
        device = next(self.model.parameters()).device
        workers = self.num_workers if len(batches) > 1 else 0
        samples = iter(collated_batches(self.dataset, batches, workers, device.type == 'cuda', self.collate_fn))
        for _ in batches:
            start = time.perf_counter()
            data = next(samples)
            self.wait_seconds += time.perf_counter() - start
            inputs = self.model.data_preprocessor(dict(inputs=data['inputs']), False)['inputs']
            yield self.model.backbone(inputs), data['labels']


def preprocessed_pixels(cfg: Config, split: str, batch_size: int = 64,
                        num_workers: int = 0) -> Tuple[Tensor, Tensor]:
    """The ``split`` images as the classifier's data preprocessor hands them to the backbone, with their labels:
    the input of a raw-pixel baseline.

    Returns:
        tuple: ``(N, C, H, W)`` float images (all of one size) and ``(N,)`` labels.
    """
    dataset, _ = build_split_dataset(cfg, split)
    preprocessor = MODELS.build(dict(dict(type='ClsDataPreprocessor'), **cfg.model.get('data_preprocessor', {})))
    batches = [list(range(start, min(start + batch_size, len(dataset))))
               for start in range(0, len(dataset), batch_size)]
    images, labels = [], []
    for data in collated_batches(dataset, batches, num_workers, pin_memory=False, collate_fn=loader_collate(cfg)):
        images.append(preprocessor(dict(inputs=data['inputs']), False)['inputs'].float())
        labels.append(data['labels'])
    return torch.cat(images), torch.cat(labels)


def extract_split(cfg: Config, split: str, cache_dir: str, device: str = 'cpu', num_workers: Optional[int] = None,
                  **kwargs) -> FeatureCache:
    """Write (or resume) the feature cache of one split of a classification config.

    In a distributed job every process calls this; each writes its own shards (see :func:`extract_to_cache`).

    Args:
        cfg (Config): A classification config whose backbone is a ``DiffusionUNetBackbone``.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        cache_dir (str): Output folder.
        device (str): Where the model runs. Defaults to ``'cpu'``.
        num_workers (int, optional): DataLoader workers; None takes the config's ``test_dataloader.num_workers``.
        **kwargs: ``shard_size``, ``batch_size``, ``pool_size``, ``dtype``, ``show_progress``, ``overwrite`` of
            :func:`extract_to_cache`.
    """
    workers = loader_workers(cfg, num_workers)
    model, dataset, dataset_cfg = build_model_and_dataset(cfg, split, device)
    described = dataset_cfg.to_dict()
    pipeline = innermost_dataset(described).pop('pipeline')
    manifest = dict(
        backbone_manifest(cfg.model.backbone.to_dict(), model.backbone.feature_info, kwargs.get('pool_size')),
        init_seed=init_seed(cfg), dataset=described, pipeline=pipeline)
    paths = [dataset.get_data_info(i).get('img_path') for i in range(len(dataset))]
    sources = paths if all(isinstance(path, str) for path in paths) else None  # None: generated in memory
    stream = ClassifierFeatureStream(model, dataset, workers, loader_collate(cfg))
    return extract_to_cache(stream, len(dataset), cache_dir, manifest, sources=sources, **kwargs)
