"""Real handwritten digits that ship with scikit-learn, as an mmpretrain dataset: no download, no files.

scikit-learn's ``load_digits`` holds the 1,797 8x8 grey-level scans of the UCI "Optical Recognition of Handwritten
Digits" set (10 classes, 174-183 images each, 17 grey levels 0-16). :class:`DigitsDataset` rescales them to
0-255, upsamples them (bilinear) to ``image_size`` and splits them into train and test by a stratified shuffle
with ``split_seed``: with the defaults (``test_fraction=0.25``, ``split_seed=0``) the train split has 1,347
images and the test split 450, every class in both in proportion. The split depends on the seed only, so every
model of an experiment sees the same held-out images. Configs reach it with
``custom_imports=dict(imports=['mmdiff'])``.
"""
from typing import List, Optional

import cv2
import numpy as np
from mmpretrain.datasets import BaseDataset

from mmdiff.registry import DATASETS, register_module
from mmdiff.utils.choices import check_choice

SPLITS = ('train', 'test')
NUM_DIGITS = 1797
DIGIT_CLASSES = tuple(str(digit) for digit in range(10))


def split_indices(labels: np.ndarray, test_fraction: float, split_seed: int) -> dict:
    """Stratified train/test indices of the digits: ``{'train': array, 'test': array}``, each sorted."""
    from sklearn.model_selection import train_test_split
    train, test = train_test_split(np.arange(len(labels)), test_size=test_fraction, stratify=labels,
                                   random_state=split_seed)
    return dict(train=np.sort(train), test=np.sort(test))


@register_module(DATASETS)
class DigitsDataset(BaseDataset):
    """scikit-learn's handwritten digits as ``image_size`` x ``image_size`` 3-channel uint8 images in memory.

    Samples carry ``img`` (H, W, 3) uint8 (grey, the same in every channel), ``gt_label`` and ``scan_index``
    (the image's index in ``sklearn.datasets.load_digits()``), so the pipeline starts after loading, e.g.
    ``[dict(type='PackInputs')]``.

    Args:
        split (str): ``'train'`` or ``'test'``.
        image_size (int): Side of the upsampled images, a multiple of 8. Defaults to 16.
        test_fraction (float): Fraction of each class held out for the test split, in (0, 1). Defaults to 0.25.
        split_seed (int): Seed of the stratified shuffle. Defaults to 0.
        labels_per_class (int, optional): Keep only the first this many images of each class (in scan order) of
            the train split, for label-efficiency experiments; None keeps them all. Defaults to None.
        **kwargs: ``pipeline``, ``indices``, ``lazy_init`` ... of mmpretrain's ``BaseDataset``.
    """
    METAINFO = {'classes': DIGIT_CLASSES}

    def __init__(self, split: str = 'train', image_size: int = 16, test_fraction: float = 0.25,
                 split_seed: int = 0, labels_per_class: Optional[int] = None, **kwargs) -> None:
        check_choice('split', split, SPLITS)
        if not isinstance(image_size, int) or image_size < 8 or image_size % 8:
            raise ValueError(f'image_size={image_size!r} must be a positive multiple of 8 (the scans are 8x8)')
        if not 0 < test_fraction < 1:
            raise ValueError(f'test_fraction={test_fraction!r} must lie in (0, 1)')
        if labels_per_class is not None:
            if split != 'train':
                raise ValueError(f'labels_per_class={labels_per_class} subsamples the train split, but '
                                 f'split={split!r}; the test split is always whole')
            if not isinstance(labels_per_class, int) or labels_per_class < 1:
                raise ValueError(f'labels_per_class={labels_per_class!r} must be a positive integer or None')
        self.labels_per_class = labels_per_class
        self.split = split
        self.image_size = image_size
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        super().__init__(ann_file='', test_mode=split == 'test', **kwargs)

    def load_data_list(self) -> List[dict]:
        from sklearn.datasets import load_digits
        digits = load_digits()
        indices = split_indices(digits.target, self.test_fraction, self.split_seed)[self.split]
        if self.labels_per_class is not None:
            indices = np.sort(np.concatenate([indices[digits.target[indices] == digit][:self.labels_per_class]
                                              for digit in range(len(DIGIT_CLASSES))]))
        data_list = []
        for index in indices:
            grey = np.round(digits.images[index] * (255 / 16)).astype(np.uint8)
            grey = cv2.resize(grey, (self.image_size, self.image_size), interpolation=cv2.INTER_LINEAR)
            data_list.append(dict(img=np.repeat(grey[..., None], 3, axis=2), gt_label=int(digits.target[index]),
                                  scan_index=int(index)))
        return data_list
