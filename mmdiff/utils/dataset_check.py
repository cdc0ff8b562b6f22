"""Check a config's dataset paths and class list before a runner starts, with messages that show the layout."""
import json
import os
import os.path as osp
import re
from typing import Dict, Iterable, List, Optional, Sequence


def _prefixes(dataset: dict) -> Dict[str, str]:
    """``data_prefix`` as a dict: mmdet and mmseg use dicts, mmpretrain also a plain folder name."""
    prefix = dataset.get('data_prefix') or {}
    return {'img': prefix} if isinstance(prefix, str) else dict(prefix)


def _expected_layout(dataset: dict) -> str:
    root = dataset.get('data_root') or ''
    lines = [f'  {osp.join(root, dataset["ann_file"])}'] if dataset.get('ann_file') else []
    lines += [f'  {osp.join(root, prefix).rstrip("/")}/  ({key})' for key, prefix in _prefixes(dataset).items()]
    return 'expected layout:\n' + '\n'.join(lines)


def _innermost(dataset: dict) -> dict:
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


def check_dataset(dataset: dict, split: str, root_variables: Optional[Dict[str, str]] = None) -> None:
    """Raise with the expected layout when a dataset's files are missing or its classes miss the annotations.

    Args:
        dataset (dict): A dataset config (``type``, ``data_root``, ``ann_file``, ``data_prefix``, ``metainfo``).
        split (str): Which dataloader it belongs to, for the message.
        root_variables (dict, optional): :func:`data_root_variables` of the config, to name the variable that
            moves a missing data root.
    """
    dataset = _innermost(dataset)
    root = dataset.get('data_root') or ''
    if root and not osp.isdir(root):
        variable = (root_variables or {}).get(root)
        hint = f' (set {variable} to the folder that holds the dataset)' if variable else ''
        raise FileNotFoundError(f'{split}: data_root {root!r} does not exist{hint}; {_expected_layout(dataset)}')
    ann_file = osp.join(root, dataset['ann_file']) if dataset.get('ann_file') else None
    if ann_file is not None and not osp.isfile(ann_file):
        raise FileNotFoundError(f'{split}: annotation file {ann_file!r} does not exist; {_expected_layout(dataset)}')
    for key, prefix in _prefixes(dataset).items():
        if prefix and not osp.isdir(osp.join(root, prefix)):
            raise FileNotFoundError(f'{split}: {key} folder {osp.join(root, prefix)!r} does not exist; '
                                    f'{_expected_layout(dataset)}')
    if ann_file is None:
        return
    if osp.getsize(ann_file) == 0:
        raise ValueError(f'{split}: annotation file {ann_file!r} is empty')
    if ann_file.endswith('.json'):
        _check_coco_annotations(ann_file, split, (dataset.get('metainfo') or {}).get('classes'))


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
