"""A class-balanced subset of a classification dataset: the first ``labels_per_class`` samples of every class."""
import copy
from typing import List, Sequence, Union

import numpy as np
from torch.utils.data import Dataset

from mmdiff.registry import DATASETS, register_module


def first_per_class(labels: Sequence[int], labels_per_class: int) -> np.ndarray:
    """The indices of the first ``labels_per_class`` samples of every class, in the order of ``labels``.

    Args:
        labels (Sequence[int]): ``(N,)`` class index of every sample.
        labels_per_class (int): Samples to keep per class, >= 1.

    Returns:
        np.ndarray: ``(num_classes * labels_per_class,)`` sorted indices into ``labels``.

    Example:
        >>> first_per_class([0, 1, 0, 1, 0], 2).tolist()
        [0, 1, 2, 3]
    """
    if not isinstance(labels_per_class, (int, np.integer)) or labels_per_class < 1:
        raise ValueError(f'labels_per_class={labels_per_class!r} must be a positive integer')
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    short = {int(label): int(count) for label, count in zip(classes, counts) if count < labels_per_class}
    if short:
        raise ValueError(f'labels_per_class={labels_per_class} exceeds what these classes hold (class: samples): '
                         f'{short}; choose at most {min(counts)}')
    return np.sort(np.concatenate([np.flatnonzero(labels == label)[:labels_per_class] for label in classes]))


@register_module(DATASETS)
class PerClassSubset(Dataset):
    """The first ``labels_per_class`` samples of every class of a dataset, in the dataset's order: a fixed,
    class-balanced subset for few-label experiments and probes fitted on part of a large train split.

    Wraps any dataset with mmengine's ``get_cat_ids`` (mmpretrain's ``CustomDataset``, ``ImageNet``, ``CIFAR10``
    ...), like mmengine's ``ClassBalancedDataset``; the subset is the same on every run and every process.

    Args:
        dataset (dict | Dataset): The dataset, or its config.
        labels_per_class (int): Samples kept per class; every class must hold at least this many.

    Example::

        train_dataloader = dict(dataset=dict(
            type='mmdiff.PerClassSubset', labels_per_class=100,
            dataset=dict(type='CustomDataset', data_root='data/cifar10-jpeg/', data_prefix='train', pipeline=[...])))
    """

    def __init__(self, dataset: Union[dict, Dataset], labels_per_class: int) -> None:
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        labels = [self.dataset.get_cat_ids(index)[0] for index in range(len(self.dataset))]
        self.indices = first_per_class(labels, labels_per_class).tolist()

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's meta information (``classes`` ...)."""
        return copy.deepcopy(self.dataset.metainfo)

    def get_data_info(self, index: int) -> dict:
        """The annotation of the ``index``-th sample of the subset."""
        return self.dataset.get_data_info(self.indices[index])

    def get_cat_ids(self, index: int) -> List[int]:
        """The class of the ``index``-th sample of the subset, as a one-element list."""
        return self.dataset.get_cat_ids(self.indices[index])

    def __getitem__(self, index: int) -> dict:
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)
