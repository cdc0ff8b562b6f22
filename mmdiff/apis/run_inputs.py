"""What a run reads, so that no output of a tool lands on it (:func:`~mmdiff.utils.output_paths.check_output`)."""
import os.path as osp
from typing import List

from mmengine.config import Config

from mmdiff.utils.config_scope import named_paths
from mmdiff.utils.dataset_check import data_prefixes, innermost_dataset

DATALOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# the keys of a model config that name files or folders the model reads
MODEL_INPUT_KEYS = ('checkpoint', 'model_dir', 'path')


def data_inputs(cfg: Config) -> List[str]:
    """The annotation files and image (and mask) folders of the config's dataloaders; the data root itself for a
    dataset without either (mmpretrain's ``CustomDataset`` reads every subfolder of it as a class)."""
    found = []
    for name in DATALOADERS:
        dataset = innermost_dataset((cfg.get(name) or {}).get('dataset') or {})
        root = dataset.get('data_root') or ''
        folders = [folder for folder in data_prefixes(dataset).values() if folder]
        files = [dataset['ann_file']] if dataset.get('ann_file') else []
        paths = [osp.join(root, path) for path in folders + files] or ([root] if root else [])
        found += [path for path in paths if path not in found]
    return found


def model_inputs(cfg: Config) -> List[str]:
    """The checkpoints, diffusers folders and context files the model config names, and ``load_from``."""
    return named_paths(cfg.get('model') or {}, MODEL_INPUT_KEYS) + ([cfg.load_from] if cfg.get('load_from') else [])
