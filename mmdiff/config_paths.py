"""Find mmdiff's configs where they are installed, so another project can load or inherit them.

A wheel carries the repository's ``configs/`` as ``mmdiff/.mim/configs`` (OpenMMLab's layout, see ``setup.py``); a
source checkout or an editable install (``pip install -e .``) has no ``.mim`` folder and uses ``configs/`` next to
the package.
"""
import difflib
from pathlib import Path, PurePosixPath

PACKAGE_DIR = Path(__file__).resolve().parent
INSTALLED_CONFIGS_DIR = PACKAGE_DIR / '.mim' / 'configs'
SOURCE_CONFIGS_DIR = PACKAGE_DIR.parent / 'configs'
BASE_FOLDER = '_base_'


def configs_root() -> Path:
    """The folder holding mmdiff's configs.

    Returns:
        Path: ``mmdiff/.mim/configs`` in an installed wheel, otherwise the repository's ``configs/``.

    Raises:
        FileNotFoundError: If neither folder exists.
    """
    for folder in (INSTALLED_CONFIGS_DIR, SOURCE_CONFIGS_DIR):
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f'mmdiff finds no configs: neither {INSTALLED_CONFIGS_DIR} (an installed wheel) nor '
                            f'{SOURCE_CONFIGS_DIR} (a source checkout) exists; reinstall mmdiff')


def list_configs() -> list[str]:
    """Every config mmdiff ships, ``_base_`` fragments included.

    Returns:
        list[str]: Paths relative to :func:`configs_root`, with ``/`` separators, sorted, e.g.
        ``'mask_rcnn/mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py'``.
    """
    root = configs_root()
    return sorted(path.relative_to(root).as_posix() for path in root.rglob('*.py'))


def _is_base_fragment(relative_path: str) -> bool:
    return BASE_FOLDER in PurePosixPath(relative_path).parts


def get_config_path(name: str) -> str:
    """The absolute path of one of mmdiff's configs, for ``Config.fromfile`` or another config's ``_base_``.

    Args:
        name (str): A config's file name, with or without ``.py`` (``'mask_rcnn_diffusion_coco'``,
            ``'mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py'``), or its path relative to the configs folder
            (``'mask_rcnn/mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py'``). The ``_base_`` fragments are found by
            relative path only (``'_base_/models/mask-rcnn_diffusion-unet_fpn.py'``).

    Returns:
        str: The config's absolute path: inside the installed package (``mmdiff/.mim/configs``), or in the
        repository's ``configs/`` for an editable install.

    Raises:
        FileNotFoundError: If no config has that name or path; the message lists the closest names.
        ValueError: If the file name is used in more than one folder; the message names every path.
    """
    root = configs_root()
    configs = list_configs()
    file_name = name if name.endswith('.py') else f'{name}.py'
    if '/' in file_name:
        matches = [path for path in configs if path == file_name]
        base_fragments = []  # a relative path reaches the _base_ fragments itself
        candidates = configs
    else:
        named = [path for path in configs if PurePosixPath(path).name == file_name]
        matches = [path for path in named if not _is_base_fragment(path)]
        base_fragments = [path for path in named if _is_base_fragment(path)]
        candidates = [PurePosixPath(path).name for path in configs if not _is_base_fragment(path)]
    if len(matches) > 1:
        raise ValueError(f'{name!r} names {len(matches)} mmdiff configs: {", ".join(matches)}; pass the relative '
                         f'path of the one you mean')
    if not matches:
        if base_fragments:
            hint = f'a _base_ fragment is named by its relative path: {", ".join(base_fragments)}'
        else:
            close = difflib.get_close_matches(file_name, candidates, n=5, cutoff=0.6)
            hint = f'closest: {", ".join(close)}' if close else 'none is close'
        raise FileNotFoundError(f'mmdiff has no config {name!r} ({hint}); {len(configs)} configs are under {root}, '
                                f'mmdiff.list_configs() lists them')
    return str(root / matches[0])
