"""Read a config as mmdiff's tools do and enter its scope as the runner would, without building a runner."""
import os.path as osp
from typing import Any, Iterable, List, Optional

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

from .safe_checkpoint import enable_safe_loading


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config file and merge ``--cfg-options`` overrides into it."""
    if osp.isdir(path):
        raise IsADirectoryError(f'config {path!r} is a folder; give the config file')
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def enter_config_scope(cfg: Config) -> None:
    """Import the config's ``custom_imports`` and make its ``default_scope`` current, as the runner does; an mmdiff
    tool's process loads every checkpoint with mmdiff's safe loader (``weights_only=True``, nothing remote)."""
    enable_safe_loading()
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmengine'))


def named_paths(node: Any, keys: Iterable[str]) -> List[str]:
    """The strings stored under any of ``keys`` anywhere in a (nested) config dict or list, in order: e.g. the
    ``checkpoint``, ``model_dir`` and ``path`` entries of a model config, the files and folders it reads."""
    keys = set(keys)
    if isinstance(node, dict):
        found = [value for key, value in node.items() if key in keys and isinstance(value, str)]
        return found + [path for value in node.values() for path in named_paths(value, keys)]
    if isinstance(node, (list, tuple)):
        return [path for value in node for path in named_paths(value, keys)]
    return []
