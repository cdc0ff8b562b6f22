"""One safe way to read a checkpoint: a local file, unpickled with ``weights_only=True``.

``torch.load(weights_only=False)``, which mmengine's ``CheckpointLoader`` uses, runs whatever a pickle names, so a
crafted checkpoint executes code when it is loaded. :func:`load_checkpoint_file` unpickles only tensors, containers,
primitives and the few classes mmengine's and mmdiff's own checkpoints hold (:data:`CHECKPOINT_GLOBALS`), and names
the file and the offending global otherwise. mmdiff's own loading paths (its backbones' ``init_cfg``, its tools, its
caches) use it and refuse remote paths: mmdiff never downloads.

Importing mmdiff leaves every other loading path as mmengine does it. :func:`enable_safe_loading` makes mmengine's
``CheckpointLoader`` use the safe loader for every local path of the process (``load_from``, ``--resume``, any
module's ``init_cfg=dict(type='Pretrained')``) and refuse its remote schemes; mmdiff's tools call it, and any other
process opts in with the environment variable ``MMDIFF_SAFE_LOADING=1`` (read when mmdiff is imported).
"""
import os
import pickle
import pickletools
import re
import zipfile
from typing import Any, List, Optional

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


def history_buffer_statistic(owner: Any, name: str) -> Any:
    """The only ``getattr`` a checkpoint may call: a ``HistoryBuffer`` statistic method (``min``, ``mean``, ...),
    which mmengine's message hub pickles by reference."""
    method = getattr(HistoryBuffer, name, None) if owner is HistoryBuffer and not name.startswith('_') else None
    if not callable(method):
        raise pickle.UnpicklingError(f'getattr({owner!r}, {name!r}) is not a HistoryBuffer statistic')
    return method


# what mmengine's runner (message hub, history buffers and their statistic methods, numpy scalars in the logs) and
# mmdiff's RandomStateHook (numpy's generator state) write besides tensors and plain containers
CHECKPOINT_GLOBALS: List[Any] = [
    HistoryBuffer,
    (history_buffer_statistic, 'builtins.getattr'),
    np.ndarray,
    np.dtype,
    np._core.multiarray._reconstruct,
    np._core.multiarray.scalar,
    *{type(np.dtype(name)) for name in ('float64', 'float32', 'float16', 'int64', 'int32', 'uint32', 'uint8', 'bool')},
]
# mmengine's remote schemes, its own patterns included (``x:s3://``, ``petrel://``): refused, never fetched
REMOTE_PREFIXES = ('http://', 'https://', 'torchvision://', 'open-mmlab://', 'openmmlab://', 'mmcls://', 'pavi://',
                   's3://', 'modelzoo://', r'(\S+\:)?s3://', r'(\S+\:)?petrel://')
# the environment variable that opts a whole process into the safe loader (mmdiff's tools opt in themselves)
SAFE_LOADING_SWITCH = 'MMDIFF_SAFE_LOADING'


# modules whose globals a plain pickle of weights names; a refusal names the first global outside them
FAMILIAR_MODULES = ('torch.', 'collections.', 'numpy.', 'mmengine.', 'builtins.', '_codecs.')


class UnsafeCheckpointError(ValueError):
    """A checkpoint that names a global outside :data:`CHECKPOINT_GLOBALS`: loading it could run code."""


def check_local(filename: str) -> None:
    """Refuse a remote checkpoint path (``https://``, ``torchvision://``, ...): mmdiff never downloads."""
    if '://' in filename:
        raise ValueError(f'{filename!r} is remote: mmdiff never downloads checkpoints. Download it yourself and pass '
                         f'the local file')


def load_checkpoint_file(filename: str, map_location: Any = 'cpu', mmap: bool = False) -> Any:
    """Unpickle a local checkpoint with ``weights_only=True`` and the globals mmengine checkpoints need.

    Args:
        filename (str): A local file. A URL or another remote scheme is refused.
        map_location: As for ``torch.load``. Defaults to ``'cpu'``.
        mmap (bool): Memory-map the tensors (read only when touched). Defaults to False.

    Raises:
        ValueError: For a remote path (mmdiff never downloads).
        FileNotFoundError: For a missing file.
        UnsafeCheckpointError: For a checkpoint naming another global; the message names the file and the global.
        ValueError: For a file that is not a readable torch checkpoint (empty, truncated, another format).
    """
    filename = os.fspath(filename)
    check_local(filename)
    if os.path.isdir(filename):
        raise IsADirectoryError(f'checkpoint {filename!r} is a folder; give the checkpoint file')
    if not os.path.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename!r} does not exist')
    # torch memory-maps only its zip format; a legacy (pre-1.6) checkpoint loads whole
    mmap = mmap and zipfile.is_zipfile(filename)
    try:
        with torch.serialization.safe_globals(CHECKPOINT_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        named = re.search(r'GLOBAL ([\w.]+)', str(error))
        unsafe = named.group(1) if named else first_global(filename)
        if unsafe:
            raise UnsafeCheckpointError(f'refusing to load {filename!r}: it names the global {unsafe}, which is not a '
                                        f'tensor, a plain container or a class mmengine checkpoints hold, so '
                                        f'unpickling it could run code') from None
        raise ValueError(f'{filename!r} is not a readable torch checkpoint: neither torch\'s format nor a plain '
                         f'pickle of tensors') from None
    except (RuntimeError, EOFError, UnicodeDecodeError) as error:
        raise ValueError(f'{filename!r} is not a readable torch checkpoint (empty, truncated or another format): '
                         f'{_first_line(error)}') from error


def first_global(filename: str) -> Optional[str]:
    """The first global (``module.name``) outside torch's, numpy's and mmengine's own that a plain pickle file
    names, read without unpickling it (``pickletools``); None when it names none or is not a pickle. torch's safe
    loader names the global only for its own format."""
    with open(filename, 'rb') as f:
        strings: List[str] = []
        try:
            for opcode, argument, _ in pickletools.genops(f):
                name = (str(argument).replace(' ', '.') if opcode.name == 'GLOBAL' else
                        f'{strings[-2]}.{strings[-1]}' if opcode.name == 'STACK_GLOBAL' and len(strings) >= 2 else
                        None)
                if name and not name.startswith(FAMILIAR_MODULES):
                    return name
                if isinstance(argument, str):
                    strings.append(argument)
        except (ValueError, EOFError):  # not (or no longer) a pickle stream
            return None
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _refuse_remote(filename: str, map_location: Any = None) -> None:
    """mmengine's loader for its remote schemes, while the safe loader is enabled: a refusal naming the switch."""
    raise ValueError(f'{filename!r} is remote, and this process loads checkpoints with mmdiff\'s safe loader '
                     f'(an mmdiff tool, or {SAFE_LOADING_SWITCH}=1), which never downloads: download it yourself and '
                     f'pass the local file, or run without {SAFE_LOADING_SWITCH} to let mmengine fetch it')


def safe_loading_requested() -> bool:
    """Whether the process opted into the safe loader with ``MMDIFF_SAFE_LOADING=1``."""
    return os.environ.get(SAFE_LOADING_SWITCH) == '1'


def enable_safe_loading() -> None:
    """Make mmengine's ``CheckpointLoader`` read every local path of this process with :func:`load_checkpoint_file`
    and refuse every remote scheme, mmengine's own patterns included: the runner's ``load_from`` and ``resume`` and
    every module's ``init_cfg=dict(type='Pretrained')``. mmdiff's tools call it; importing mmdiff calls it only with
    ``MMDIFF_SAFE_LOADING=1``."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)
    CheckpointLoader.register_scheme(prefixes=list(REMOTE_PREFIXES), loader=_refuse_remote, force=True)
