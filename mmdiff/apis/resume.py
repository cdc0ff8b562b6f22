"""Which checkpoint ``tools/train.py --resume`` continues from, named when it cannot be used."""
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional


def intact_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole torch checkpoint: a zip archive whose central directory (written last) is there.
    A run killed while saving leaves a truncated file without it."""
    return osp.isfile(path) and zipfile.is_zipfile(path)


def run_checkpoints(work_dir: str) -> List[str]:
    """The run's ``epoch_N.pth`` / ``iter_N.pth`` checkpoints in ``work_dir``, newest (highest N) first."""
    found = [(int(match.group(2)), name) for name in os.listdir(work_dir)
             if (match := re.fullmatch(r'(epoch|iter)_(\d+)\.pth', name))] if osp.isdir(work_dir) else []
    return [osp.join(work_dir, name) for _, name in sorted(found, reverse=True)]


def resume_checkpoint(work_dir: str, requested: Optional[str]) -> str:
    """The checkpoint to resume from: ``requested`` (``--resume PATH``), or the one ``work_dir/last_checkpoint``
    names (``--resume``). It must exist and be intact.

    Args:
        work_dir (str): The run's work dir.
        requested (str, optional): The checkpoint given on the command line; None to resume the latest.

    Raises:
        FileNotFoundError: Nothing to resume, or the named checkpoint is missing.
        ValueError: The checkpoint is truncated, naming the newest intact one of the run.
    """
    if requested is None:
        record = osp.join(work_dir, 'last_checkpoint')
        if not osp.isfile(record):
            raise FileNotFoundError(f'--resume: nothing to resume in {work_dir!r} (no last_checkpoint there); train '
                                    f'without --resume, or give --resume CHECKPOINT')
        with open(record) as f:
            requested = f.read().strip()
        if not requested:
            raise ValueError(f'--resume: {record!r} is empty (a run killed while saving?); '
                             f'{_newest_intact_hint(work_dir)}')
    if osp.isdir(requested):
        raise IsADirectoryError(f'--resume {requested!r} is a folder; give a checkpoint file, or --resume alone to '
                                f'continue the latest run of the work dir')
    if not osp.isfile(requested):
        raise FileNotFoundError(f'--resume: checkpoint {requested!r} does not exist; {_newest_intact_hint(work_dir)}')
    if not intact_checkpoint(requested):
        raise ValueError(f'--resume: checkpoint {requested!r} is truncated or not a torch checkpoint (a run killed '
                         f'while saving leaves one); {_newest_intact_hint(work_dir, exclude=requested)}')
    return requested


def _newest_intact_hint(work_dir: str, exclude: Optional[str] = None) -> str:
    intact = [path for path in run_checkpoints(work_dir)
              if path != exclude and intact_checkpoint(path)]
    if not intact:
        return f'{work_dir!r} holds no intact checkpoint to resume from'
    return f'the newest intact checkpoint of the run is {intact[0]!r}: resume with --resume {intact[0]}'
