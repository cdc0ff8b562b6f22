"""Tiny fake datasets in the on-disk layouts that the installed mmpretrain, mmdet and mmseg dataset classes read.

Each ``make_*`` generator writes a few small seeded images and the annotation files of one dataset under ``root``
and returns ``root`` as a string ending in '/', ready for the ``MMDIFF_*_ROOT`` environment variable that the configs
read (``'{{$MMDIFF_COCO_ROOT:data/coco/}}'``; they concatenate ``data_root + 'annotations/...'``). :data:`TINY_DATASETS`
maps each variable to its generator::

    for variable, generate in TINY_DATASETS.items():
        monkeypatch.setenv(variable, generate(tmp_path / variable))

Samples cycle through the first :data:`NUM_LABELS` classes of the dataset's class list, so every split holds each of
them and every label is valid for the full-size head. Images are 64x64 JPEGs unless a generator says otherwise.

CIFAR-10 needs :class:`TinyCIFAR10` in place of mmpretrain's ``CIFAR10``, which compares the md5 sum of every batch
file with the real archive's before loading (``download=False`` turns a failed check into an error, it does not skip
it), a check that no generated file can pass.
"""
import itertools
import json
import pickle
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple, Union

import cv2
import numpy as np
import scipy.io
from mmdet.datasets import CocoDataset
from mmpretrain.datasets import CIFAR10
from mmpretrain.datasets.categories import CUB_CATEGORIES, FGVCAIRCRAFT_CATEGORIES, OxfordIIITPet_CATEGORIES

from mmdiff.datasets.synthetic_shapes import (make_shapes_classification_dataset, make_shapes_dataset,
                                              make_shapes_segmentation_dataset)
from mmdiff.registry import DATASETS, register_module

PathLike = Union[str, Path]
NUM_LABELS = 2  # samples cycle through this many classes of each dataset
IMAGENET_WNIDS = ('n01440764', 'n01443537')  # tench and goldfish: ImageNet classes 0 and 1
TINY_IMAGENET_WNIDS = ('n01443537', 'n01629819')  # the first two of Tiny-ImageNet's sorted wnids
# COCO's category ids of CocoDataset.METAINFO['classes'], in that order (the ids skip 12, 26, 29, 30, ...)
COCO_CATEGORY_IDS = (*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70, *range(72, 83),
                     *range(84, 91))
COCO_DRAWN_CLASSES = ('dog', 'pizza')  # ids 18 and 59, labels 16 and 53: neither equals its rank or its id - 1
COCO_MIN_SEMI_AXIS = 18  # drawn ellipses' boxes are at least 2 * 18 * cos(5 degrees) > 32 px on each side


@register_module(DATASETS)
class TinyCIFAR10(CIFAR10):
    """mmpretrain's ``CIFAR10`` without the md5 check of its batch files, for :func:`make_cifar10`'s root.

    ``CIFAR10._check_integrity`` skips a file whose md5 is None; nothing else changes. Registered in mmdiff's
    registry, so ``type='mmdiff.TinyCIFAR10'`` builds from any default scope (a process that builds it from a config
    needs ``tests.test_utils.tiny_datasets`` in its ``custom_imports``).
    """
    train_list = [[file_name, None] for file_name, _ in CIFAR10.train_list]
    test_list = [[file_name, None] for file_name, _ in CIFAR10.test_list]


def _check_counts(num_train: int, num_val: int, min_train: int = NUM_LABELS) -> None:
    if num_train < min_train or num_val < NUM_LABELS:
        raise ValueError(f'need num_train >= {min_train} and num_val >= {NUM_LABELS}, got {num_train} and {num_val}')


def _labels(count: int) -> List[int]:
    return [index % NUM_LABELS for index in range(count)]


def _image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour field with grain, (size, size, 3) uint8."""
    coarse = rng.uniform(0, 255, (4, 4, 3)).astype(np.float32)
    image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 8, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def _imwrite(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise OSError(f'OpenCV could not write {path}')


def _write_images(folder: Path, file_names: Sequence[str], rng: np.random.Generator, size: int) -> None:
    for file_name in file_names:
        _imwrite(folder / file_name, _image(rng, size))


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(f'{line}\n' for line in lines))


def _data_root(root: Path) -> str:
    return f'{root}/'


def make_imagenet(root: PathLike, num_train: int = 4, num_val: int = 2, image_size: int = 64, seed: int = 0) -> str:
    """mmpretrain's ``ImageNet`` with its annotation files, which its 1000 fixed classes need (the folder layout
    would need a folder per class)::

        train/<wnid>/<wnid>_<index>.JPEG   meta/train.txt: '<wnid>/<wnid>_<index>.JPEG <label>'
        val/ILSVRC2012_val_<index>.JPEG     meta/val.txt: 'ILSVRC2012_val_<index>.JPEG <label>'
    """
    _check_counts(num_train, num_val)
    root, rng = Path(root), np.random.default_rng(seed)
    splits = dict(
        train=[(f'{IMAGENET_WNIDS[label]}/{IMAGENET_WNIDS[label]}_{index}.JPEG', label)
               for index, label in enumerate(_labels(num_train))],
        val=[(f'ILSVRC2012_val_{index + 1:08d}.JPEG', label) for index, label in enumerate(_labels(num_val))])
    for split, samples in splits.items():
        _write_images(root / split, [file_name for file_name, _ in samples], rng, image_size)
        _write_lines(root / 'meta' / f'{split}.txt', [f'{file_name} {label}' for file_name, label in samples])
    return _data_root(root)


def make_cub(root: PathLike, num_train: int = 4, num_val: int = 2, image_size: int = 64, seed: int = 0) -> str:
    """mmpretrain's ``CUB`` (CUB-200-2011): ``images/<NNN>.<class>/<class>_<id>.jpg`` and three files of 1-based
    ids, ``images.txt`` ('<id> <image path>'), ``image_class_labels.txt`` ('<id> <label + 1>') and
    ``train_test_split.txt`` ('<id> <1: train, 0: test>')."""
    _check_counts(num_train, num_val)
    root, rng = Path(root), np.random.default_rng(seed)
    samples = [(label, 1) for label in _labels(num_train)] + [(label, 0) for label in _labels(num_val)]
    paths = [
        f'{label + 1:03d}.{CUB_CATEGORIES[label]}/{CUB_CATEGORIES[label]}_{sample_id:04d}.jpg'
        for sample_id, (label, _) in enumerate(samples, start=1)
    ]
    _write_images(root / 'images', paths, rng, image_size)
    _write_lines(root / 'images.txt', [f'{sample_id} {path}' for sample_id, path in enumerate(paths, start=1)])
    _write_lines(root / 'image_class_labels.txt',
                 [f'{sample_id} {label + 1}' for sample_id, (label, _) in enumerate(samples, start=1)])
    _write_lines(root / 'train_test_split.txt',
                 [f'{sample_id} {is_train}' for sample_id, (_, is_train) in enumerate(samples, start=1)])
    return _data_root(root)


def make_fgvc_aircraft(root: PathLike,
                       num_train: int = 4,
                       num_val: int = 2,
                       image_size: int = 64,
                       seed: int = 0) -> str:
    """mmpretrain's ``FGVCAircraft`` (fgvc-aircraft-2013b, variants): ``data/images/<7-digit id>.jpg`` and
    ``data/images_variant_<split>.txt`` ('<id> <variant name>') for the splits trainval (num_train images, its
    halves are train and val) and test (num_val images)."""
    _check_counts(num_train, num_val)
    root, rng = Path(root), np.random.default_rng(seed)
    samples = [(f'{1000000 + index}', label) for index, label in enumerate(_labels(num_train) + _labels(num_val))]
    trainval, test = samples[:num_train], samples[num_train:]
    splits = dict(train=trainval[:num_train // 2], val=trainval[num_train // 2:], trainval=trainval, test=test)
    _write_images(root / 'data' / 'images', [f'{image_id}.jpg' for image_id, _ in samples], rng, image_size)
    for split, split_samples in splits.items():
        _write_lines(root / 'data' / f'images_variant_{split}.txt',
                     [f'{image_id} {FGVCAIRCRAFT_CATEGORIES[label]}' for image_id, label in split_samples])
    return _data_root(root)


def make_flowers102(root: PathLike,
                    num_train: int = 4,
                    num_val: int = 2,
                    image_size: int = 64,
                    seed: int = 0) -> str:
    """mmpretrain's ``Flowers102``: ``jpg/image_<00001>.jpg``, ``imagelabels.mat`` ('labels': every image's 1-based
    class, in image order) and ``setid.mat`` ('trnid', 'valid', 'tstid': 1-based image ids), written by scipy.

    The trainval split is trnid + valid (num_train images, half each) and test is tstid (num_val images).
    mmpretrain reads the files with mat4py, which returns a one-element vector as a bare number that Flowers102
    cannot extend, so every id vector holds at least two ids: num_train must be at least 4.
    """
    _check_counts(num_train, num_val, min_train=2 * NUM_LABELS)
    root, rng = Path(root), np.random.default_rng(seed)
    labels = _labels(num_train) + _labels(num_val)
    image_ids = np.arange(1, len(labels) + 1, dtype=np.int32)
    _write_images(root / 'jpg', [f'image_{image_id:05d}.jpg' for image_id in image_ids], rng, image_size)
    scipy.io.savemat(str(root / 'imagelabels.mat'), dict(labels=np.array(labels, dtype=np.int32) + 1))
    scipy.io.savemat(
        str(root / 'setid.mat'),
        dict(
            trnid=image_ids[:num_train // 2], valid=image_ids[num_train // 2:num_train],
            tstid=image_ids[num_train:]))
    return _data_root(root)


def make_oxford_pets(root: PathLike,
                     num_train: int = 4,
                     num_val: int = 2,
                     image_size: int = 64,
                     seed: int = 0) -> str:
    """mmpretrain's ``OxfordIIITPet``: ``images/<breed>_<index>.jpg`` and ``annotations/{trainval,test}.txt``
    ('<breed>_<index> <class id> <species: 1 cat, 2 dog> <breed id within its species>', 1-based; the cat breeds
    are the capitalised names)."""
    _check_counts(num_train, num_val)
    root, rng = Path(root), np.random.default_rng(seed)
    image_numbers = itertools.count(1)
    for split, labels in dict(trainval=_labels(num_train), test=_labels(num_val)).items():
        lines = []
        for label in labels:
            breed = OxfordIIITPet_CATEGORIES[label]
            is_cat = breed[0].isupper()
            breed_id = sum(name[0].isupper() == is_cat for name in OxfordIIITPet_CATEGORIES[:label + 1])
            lines.append(f'{breed}_{next(image_numbers)} {label + 1} {1 if is_cat else 2} {breed_id}')
        _write_images(root / 'images', [f'{line.split()[0]}.jpg' for line in lines], rng, image_size)
        _write_lines(root / 'annotations' / f'{split}.txt', lines)
    return _data_root(root)


def make_stanford_cars(root: PathLike,
                       num_train: int = 4,
                       num_val: int = 2,
                       image_size: int = 64,
                       seed: int = 0) -> str:
    """mmpretrain's ``StanfordCars`` in its single-file layout: ``car_ims/<000001>.jpg`` and ``cars_annos.mat``,
    written by scipy, whose 1 x N struct array 'annotations' has the fields relative_im_path ('car_ims/...'),
    class (1-based) and test (0: train, 1: test)."""
    _check_counts(num_train, num_val)
    root, rng = Path(root), np.random.default_rng(seed)
    samples = [(label, 0) for label in _labels(num_train)] + [(label, 1) for label in _labels(num_val)]
    paths = [f'car_ims/{index:06d}.jpg' for index in range(1, len(samples) + 1)]
    _write_images(root, paths, rng, image_size)
    annotations = np.zeros((1, len(samples)), dtype=[('relative_im_path', 'O'), ('class', 'O'), ('test', 'O')])
    for index, (path, (label, is_test)) in enumerate(zip(paths, samples)):
        annotations[0, index] = (path, np.uint8(label + 1), np.uint8(is_test))
    scipy.io.savemat(str(root / 'cars_annos.mat'), dict(annotations=annotations))
    return _data_root(root)


def make_cifar10(root: PathLike, num_train: int = 5, num_val: int = 2, seed: int = 0) -> str:
    """mmpretrain's ``CIFAR10`` layout, 32x32 images: ``cifar-10-batches-py/`` holding the pickled dicts
    data_batch_1 ... data_batch_5 (the training images dealt over the five) and test_batch, each with 'data'
    ((N, 3072) uint8: the R, G and B planes of each image), 'labels', 'batch_label' and 'filenames', and
    batches.meta ('label_names'). mmpretrain's ``CIFAR10`` rejects these files (md5 sums); :class:`TinyCIFAR10`
    reads them."""
    _check_counts(num_train, num_val)
    folder, rng = Path(root) / CIFAR10.base_folder, np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    train_batches = [(file_name, labels.tolist())
                     for (file_name, _), labels in zip(CIFAR10.train_list, np.array_split(_labels(num_train), 5))]
    test_batches = [(file_name, _labels(num_val)) for file_name, _ in CIFAR10.test_list]
    for file_name, labels in train_batches + test_batches:
        entry = dict(
            batch_label=file_name,
            labels=labels,
            data=np.array([_image(rng, 32).transpose(2, 0, 1).reshape(-1) for _ in labels],
                          dtype=np.uint8).reshape(-1, 3072),
            filenames=[f'{file_name}_{index}.png' for index in range(len(labels))])
        (folder / file_name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {CIFAR10.meta['key']: list(CIFAR10.METAINFO['classes'])}
    (folder / CIFAR10.meta['filename']).write_bytes(pickle.dumps(meta, protocol=2))
    return _data_root(Path(root))


def make_cifar10_jpeg(root: PathLike, num_train: int = 2, num_val: int = 1, seed: int = 0) -> str:
    """CIFAR-10 as JPEG files in the folder layout of ``../shared/data/cifar10-jpeg.tar.gz``, which mmpretrain's
    ``CustomDataset`` reads (a folder per class, the ten CIFAR-10 classes): ``num_train`` and ``num_val`` 32x32
    images per class::

        train/<class>/<index>.jpg   test/<class>/<index>.jpg
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(f'need at least one image per class in each split, got {num_train} and {num_val}')
    root, rng = Path(root), np.random.default_rng(seed)
    for split, count in (('train', num_train), ('test', num_val)):
        for name in CIFAR10.METAINFO['classes']:
            _write_images(root / split / name, [f'{index:04d}.jpg' for index in range(count)], rng, 32)
    return _data_root(root)


def make_tiny_imagenet(root: PathLike,
                       num_train: int = 4,
                       num_val: int = 2,
                       image_size: int = 64,
                       seed: int = 0) -> str:
    """Tiny-ImageNet as mmpretrain's ``CustomDataset`` reads a folder per class (labels follow the sorted folder
    names): ``{train,val}/<wnid>/<wnid>_<index>.JPEG``, every split holding every wnid."""
    _check_counts(num_train, num_val)
    root, rng = Path(root), np.random.default_rng(seed)
    for split, labels in dict(train=_labels(num_train), val=_labels(num_val)).items():
        file_names = [f'{TINY_IMAGENET_WNIDS[label]}/{TINY_IMAGENET_WNIDS[label]}_{index}.JPEG'
                      for index, label in enumerate(labels)]
        _write_images(root / split, file_names, rng, image_size)
    return _data_root(root)


def _draw_ellipses(rng: np.random.Generator, image: np.ndarray, count: int) -> List[Tuple[np.ndarray, float]]:
    """Paint ``count`` filled ellipses side by side, one per vertical strip; returns each one's (K, 2) int polygon
    and area."""
    size = image.shape[0]
    strip = size // count
    shapes = []
    for index in range(count):
        axes = tuple(int(axis) for axis in rng.integers(COCO_MIN_SEMI_AXIS, strip // 2 - 1, 2, endpoint=True))
        center = (strip * index + strip // 2, size // 2)
        polygon = cv2.ellipse2Poly(center, axes, int(rng.integers(180)), 0, 360, 10)
        cv2.fillPoly(image, [polygon], tuple(int(value) for value in rng.integers(0, 256, 3)))
        shapes.append((polygon, float(cv2.contourArea(polygon))))
    return shapes


def make_coco(root: PathLike, num_train: int = 4, num_val: int = 2, image_size: int = 128, seed: int = 0) -> str:
    """mmdet's ``CocoDataset`` (instances): ``{train2017,val2017}/<12-digit id>.jpg`` and
    ``annotations/instances_{train2017,val2017}.json``.

    Every image shows one ellipse of each class in :data:`COCO_DRAWN_CLASSES`, annotated with a polygon and a box
    of at least 32 px a side, so ``filter_empty_gt`` and ``min_size=32`` keep every image. The files list all 80
    of ``CocoDataset.METAINFO['classes']`` with COCO's ids: mmdet numbers the labels by the listed categories whose
    names it knows, so a file listing only the drawn classes would label a dog 0, 'person'.
    """
    _check_counts(num_train, num_val)
    if image_size // len(COCO_DRAWN_CLASSES) < 2 * COCO_MIN_SEMI_AXIS + 2:
        raise ValueError(f'image_size {image_size} leaves no room for {len(COCO_DRAWN_CLASSES)} 32 px objects')
    root, rng = Path(root), np.random.default_rng(seed)
    class_names = CocoDataset.METAINFO['classes']
    category_ids = {name: category_id for name, category_id in zip(class_names, COCO_CATEGORY_IDS)}
    categories = [dict(id=category_id, name=name) for name, category_id in category_ids.items()]
    for split, num_images in dict(train2017=num_train, val2017=num_val).items():
        images, annotations = [], []
        for image_id in range(1, num_images + 1):
            image = _image(rng, image_size)
            for name, (polygon, area) in zip(COCO_DRAWN_CLASSES,
                                             _draw_ellipses(rng, image, len(COCO_DRAWN_CLASSES))):
                (x0, y0), (x1, y1) = polygon.min(axis=0), polygon.max(axis=0)
                annotations.append(
                    dict(
                        id=len(annotations) + 1,
                        image_id=image_id,
                        category_id=category_ids[name],
                        segmentation=[polygon.flatten().astype(float).tolist()],
                        area=area,
                        bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                        iscrowd=0))
            file_name = f'{image_id:012d}.jpg'
            _imwrite(root / split / file_name, image)
            images.append(dict(id=image_id, file_name=file_name, height=image_size, width=image_size))
        ann_file = root / 'annotations' / f'instances_{split}.json'
        ann_file.parent.mkdir(parents=True, exist_ok=True)
        ann_file.write_text(
            json.dumps(
                dict(info=dict(description='tiny fake COCO'), licenses=[], images=images,
                     annotations=annotations, categories=categories)))
    return _data_root(root)


def make_ade20k(root: PathLike, num_train: int = 4, num_val: int = 2, image_size: int = 64, seed: int = 0) -> str:
    """mmseg's ``ADE20KDataset``: ``images/{training,validation}/<index>.jpg`` and
    ``annotations/{training,validation}/<index>.png``, scenes of shapes from
    :func:`mmdiff.datasets.synthetic_shapes.make_shapes_segmentation_dataset`. Label maps hold 0 for the background
    (ignored with ``reduce_zero_label=True``) and 1-4 for the shapes, ADE20K classes 0-3 after the shift."""
    _check_counts(num_train, num_val)
    make_shapes_segmentation_dataset(str(root), num_train, num_val, image_size, seed=seed)
    return _data_root(Path(root))


TINY_DATASETS: Dict[str, Callable[..., str]] = {
    'MMDIFF_IMAGENET_ROOT': make_imagenet,
    'MMDIFF_CUB_ROOT': make_cub,
    'MMDIFF_FGVC_AIRCRAFT_ROOT': make_fgvc_aircraft,
    'MMDIFF_FLOWERS102_ROOT': make_flowers102,
    'MMDIFF_OXFORD_PETS_ROOT': make_oxford_pets,
    'MMDIFF_STANFORD_CARS_ROOT': make_stanford_cars,
    'MMDIFF_CIFAR10_ROOT': make_cifar10,
    'MMDIFF_CIFAR10_JPEG_ROOT': make_cifar10_jpeg,
    'MMDIFF_TINY_IMAGENET_ROOT': make_tiny_imagenet,
    'MMDIFF_COCO_ROOT': make_coco,
    'MMDIFF_ADE20K_ROOT': make_ade20k,
}
# the demo configs' own data roots: a few shapes in each demo's layout
DEMO_DATASETS: Dict[str, Callable[[Path], object]] = {
    'MMDIFF_DEMO_SHAPES_ROOT': lambda root: make_shapes_dataset(str(root), num_train=4, num_val=2, image_size=64),
    'MMDIFF_DEMO_SHAPES_SEG_ROOT': lambda root: make_shapes_segmentation_dataset(str(root), num_train=4, num_val=2,
                                                                                image_size=64),
    'MMDIFF_DEMO_SHAPES_CLS_ROOT': lambda root: make_shapes_classification_dataset(
        str(root), num_train_per_class=2, num_val_per_class=1, image_size=32),
}
