"""Check a config's dataset paths and class list before a runner starts, with messages that show the layout."""
import json
import os
import os.path as osp
import re
from typing import Dict, Iterable, List, Optional, Sequence

from mmengine.registry import DATASETS

from .model_check import constructor_defaults
from .segmentation_labels import check_segmentation_labels


def data_prefixes(dataset: dict) -> Dict[str, str]:
    """``data_prefix`` as a dict: mmdet and mmseg use dicts, mmpretrain also a plain folder name."""
    prefix = dataset.get('data_prefix') or {}
    return {'img': prefix} if isinstance(prefix, str) else dict(prefix)


def _expected_layout(dataset: dict) -> str:
    root = dataset.get('data_root') or ''
    lines = [f'  {osp.join(root, dataset["ann_file"])}'] if dataset.get('ann_file') else []
    lines += [f'  {osp.join(root, prefix).rstrip("/")}/  ({key})' for key, prefix in data_prefixes(dataset).items()]
    return 'expected layout:\n' + '\n'.join(lines)


def innermost_dataset(dataset: dict) -> dict:
    """The dataset a wrapper (RepeatDataset, ClassBalancedDataset, ...) holds."""
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset


def data_root_variables(config_text: str) -> Dict[str, str]:
    """The environment variables a config's text reads its data roots from: ``{data root: variable}``.

    mmdiff's dataset configs write ``data_root = '{{$MMDIFF_COCO_ROOT:data/coco/}}'``: mmengine substitutes the
    variable's value, or the default after the colon, when it reads the file.
    """
    variables = re.findall(r"data_root = '\{\{\$(\w+):(\S*?)\}\}", config_text)
    return {os.environ.get(name, default): name for name, default in variables}


def first_empty_file(folder: str) -> Optional[str]:
    """The first 0-byte file under ``folder`` (walked in sorted order), or None. One ``stat`` per file: about 2 s
    for ImageNet's 1.3 M images on a local disk."""
    for parent, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            path = osp.join(parent, name)
            if osp.getsize(path) == 0:
                return path
    return None


def check_dataset(dataset: dict, split: str, root_variables: Optional[Dict[str, str]] = None) -> None:
    """Raise with the expected layout when a dataset's files are missing or its classes miss the annotations.

    Args:
        dataset (dict): A dataset config (``type``, ``data_root``, ``ann_file``, ``data_prefix``, ``metainfo``).
        split (str): Which dataloader it belongs to, for the message.
        root_variables (dict, optional): :func:`data_root_variables` of the config, to name the variable that
            moves a missing data root.
    """
    dataset = innermost_dataset(dataset)
    root = dataset.get('data_root') or ''
    if root and not osp.isdir(root):
        variable = (root_variables or {}).get(root)
        hint = f' (set {variable} to the folder that holds the dataset)' if variable else ''
        raise FileNotFoundError(f'{split}: data_root {root!r} does not exist{hint}; {_expected_layout(dataset)}')
    ann_file = osp.join(root, dataset['ann_file']) if dataset.get('ann_file') else None
    if ann_file is not None and not osp.isfile(ann_file):
        raise FileNotFoundError(f'{split}: annotation file {ann_file!r} does not exist; {_expected_layout(dataset)}')
    for key, prefix in data_prefixes(dataset).items():
        if prefix and not osp.isdir(osp.join(root, prefix)):
            raise FileNotFoundError(f'{split}: {key} folder {osp.join(root, prefix)!r} does not exist; '
                                    f'{_expected_layout(dataset)}')
        empty = first_empty_file(osp.join(root, prefix)) if prefix else None
        if empty is not None:  # the decoder would fail on it without naming it
            raise ValueError(f'{split}: {empty!r} is empty (0 bytes); restore or remove it')
    if data_prefixes(dataset).get('seg_map_path'):
        _check_masks(dataset, split)
    if ann_file is None:
        return
    if osp.getsize(ann_file) == 0:
        raise ValueError(f'{split}: annotation file {ann_file!r} is empty')
    if ann_file.endswith('.json'):
        _check_coco_annotations(ann_file, split, (dataset.get('metainfo') or {}).get('classes'))


def _check_masks(dataset: dict, split: str) -> None:
    """The masks of an mmseg dataset hold only its classes (its config's, else its class's ``METAINFO``)."""
    with DATASETS.switch_scope_and_registry(None) as registry:  # the default scope's, imported as the runner does
        dataset_class = registry.get(dataset.get('type', ''))
    if dataset_class is None:  # not in this scope's registry: building it would fail with its own message
        return
    classes = (dataset.get('metainfo') or {}).get('classes') or getattr(dataset_class, 'METAINFO', {}).get('classes')
    if not classes:
        return
    reduce_zero_label = dataset.get('reduce_zero_label', constructor_defaults(dataset_class).get('reduce_zero_label',
                                                                                                  False))
    check_segmentation_labels(osp.join(dataset.get('data_root') or '', data_prefixes(dataset)['seg_map_path']),
                              dataset.get('seg_map_suffix', constructor_defaults(dataset_class).get('seg_map_suffix',
                                                                                                    '.png')),
                              classes, reduce_zero_label, split)


def _check_coco_annotations(ann_file: str, split: str, classes: Optional[Sequence[str]]) -> None:
    """A COCO-style file must parse, list images, and have a category for each of the config's classes."""
    with open(ann_file) as f:
        try:
            annotations = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f'{split}: annotation file {ann_file!r} is not valid JSON ({error})') from None
    if isinstance(annotations, dict) and 'images' in annotations:
        if not annotations['images']:
            raise ValueError(f'{split}: annotation file {ann_file!r} lists no images')
        categories: List[str] = [category['name'] for category in annotations.get('categories', [])]
        missing = [name for name in classes or () if name not in categories]
        if missing:
            raise ValueError(f'{split}: classes {missing} of the config are not categories of {ann_file!r}, '
                             f'which has {categories}; make metainfo.classes match the annotations')


def check_dataloaders(cfg, splits: Iterable[str]) -> None:
    """:func:`check_dataset` for each named dataloader the config has (e.g. ``train_dataloader``)."""
    root_variables = data_root_variables(cfg.text)
    for split in splits:
        loader = cfg.get(split)
        if loader is not None and loader.get('dataset') is not None:
            check_dataset(loader['dataset'], split, root_variables)
