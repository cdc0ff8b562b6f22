"""Read a config as mmdiff's tools do and enter its scope as the runner would, without building a runner."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

from .safe_checkpoint import enable_safe_loading


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config file and merge ``--cfg-options`` overrides into it."""
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
