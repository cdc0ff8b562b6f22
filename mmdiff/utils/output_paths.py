"""Nothing a user made is lost: one output-path policy for every tool.

- An output is never equal to, inside, or linked to an input the run reads (a data root, an image folder, the
  config, a checkpoint), and a folder output never holds one (:func:`check_output`).
- An existing output is replaced only with ``--overwrite`` (:func:`check_output_free`), and a symlinked output
  file is then replaced as a link, not through it (:func:`replace_link`).
- A work dir is held by one run at a time (:class:`WorkDirLock`), and a new run does not train into an earlier
  run's work dir unless it resumes it or is told to (:func:`check_work_dir`).
"""
import json
import os
import os.path as osp
import socket
import sys
import time
from typing import Iterable, Optional


def _real(path: str) -> str:
    return osp.realpath(osp.abspath(path))


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_output(output: str, inputs: Iterable[Optional[str]], what: str = '--out') -> None:
    """Refuse an output that is, lies inside, or links to one of the run's inputs, or a folder output that holds
    one (a work dir holding the config would have it replaced by mmengine's dump).

    Args:
        output (str): The file or folder the tool writes.
        inputs (Iterable[str]): Files and folders the run reads (None entries are skipped).
        what (str): The option that named the output, for the message.

    Raises:
        ValueError: Naming the output, the input and what to do.
    """
    target = _real(output)
    for source in filter(None, inputs):
        source_real = _real(source)
        if _within(target, source_real) or _within(source_real, target):
            relation = ('is' if target == source_real else 'lies inside' if _within(target, source_real) else
                        'holds')
            raise ValueError(f'{what} {output!r} {relation} {source!r}, which this run reads: its files could be '
                             f'replaced; choose an output outside the inputs')


def check_output_free(path: str, overwrite: bool) -> None:
    """Refuse an output that exists (a file, or a folder holding anything) unless ``overwrite``.

    Args:
        path (str): The file or folder a tool is about to write.
        overwrite (bool): The user asked to replace it (``--overwrite``).

    Raises:
        FileExistsError: Naming the path and what it holds.
    """
    if overwrite or not osp.lexists(path):
        return
    if osp.isdir(path):
        held = sorted(os.listdir(path))
        if not held:
            return
        found = f'a folder holding {held[:5]}' + (f' and {len(held) - 5} more' if len(held) > 5 else '')
    elif osp.islink(path):
        found = f'a link to {os.readlink(path)!r}'
    else:
        found = f'a file of {osp.getsize(path)} bytes'
    raise FileExistsError(f'{path!r} already exists ({found}); mmdiff does not replace what is there: pass '
                          f'--overwrite to replace it, or choose another output')


def check_output_file(path: str) -> None:
    """Refuse a file output given as a folder (an existing folder, or a path ending with a separator)."""
    if path.endswith(('/', os.sep)) or osp.isdir(path):
        raise IsADirectoryError(f'{path!r} is a folder; give the path of the file to write, e.g. '
                                f'{osp.join(path, "student.pth")!r}')


def replace_link(path: str) -> None:
    """Remove ``path`` when it is a symlink, so that writing it replaces the link and never the file it points to
    (call it only after :func:`check_output_free` allowed the replacement)."""
    if osp.islink(path):
        os.unlink(path)


def earlier_run_files(work_dir: str) -> list:
    """The checkpoints (``*.pth``) and ``last_checkpoint`` an earlier run left in ``work_dir``."""
    if not osp.isdir(work_dir):
        return []
    return sorted(name for name in os.listdir(work_dir) if name.endswith('.pth') or name == 'last_checkpoint')


def check_work_dir(work_dir: str, resume: bool, overwrite: bool) -> None:
    """Refuse to train anew into a work dir holding an earlier run's checkpoints (they would be replaced) unless
    resuming or ``overwrite``.

    Args:
        work_dir (str): The run's work dir.
        resume (bool): ``--resume``, with or without a checkpoint: continue a run of this work dir.
        overwrite (bool): ``--overwrite``: train anew, replacing what is there.

    Raises:
        FileExistsError: For checkpoints of an earlier run, named.
    """
    found = earlier_run_files(work_dir)
    if found and not resume and not overwrite:
        raise FileExistsError(f'the work dir {work_dir!r} holds an earlier run ({found[:5]}), which a new run would '
                              f'replace: pass --resume to continue it, --overwrite to train anew into it, or choose '
                              f'another --work-dir')


class WorkDirLock:
    """A work dir held by one run at a time: ``with WorkDirLock(work_dir):`` writes ``work_dir/.mmdiff.lock``
    naming the holder (host, process, command, start time) and removes it when the block ends, also on an error. A
    second run into the same work dir is refused with the holder; a lock whose process is gone (a killed run) is
    refused too, named with how to clear it.

    In a distributed job only the first process (``RANK`` or, before mmengine sets it, ``SLURM_PROCID`` 0) takes
    the lock.

    Args:
        work_dir (str): The work dir.
    """
    FILE_NAME = '.mmdiff.lock'

    def __init__(self, work_dir: str) -> None:
        self.path = osp.join(work_dir, self.FILE_NAME)
        self.held = False

    def acquire(self) -> None:
        """Take the lock, or raise ``RuntimeError`` naming its holder."""
        if int(os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))) != 0:
            return
        os.makedirs(osp.dirname(self.path) or '.', exist_ok=True)
        holder = dict(host=socket.gethostname(), pid=os.getpid(), started=time.strftime('%Y-%m-%d %H:%M:%S'),
                      command=' '.join(sys.argv))
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            raise RuntimeError(self._held_message()) from None
        with os.fdopen(descriptor, 'w') as f:
            json.dump(holder, f)
        self.held = True

    def __enter__(self) -> 'WorkDirLock':
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self.held and osp.exists(self.path):
            os.remove(self.path)
        self.held = False

    def _held_message(self) -> str:
        try:
            with open(self.path) as f:
                holder = json.load(f)
        except (OSError, ValueError):
            holder = {}
        who = (f'process {holder.get("pid")} on {holder.get("host")} since {holder.get("started")} '
               f'({holder.get("command")})' if holder else 'an unreadable lock')
        alive = holder.get('host') == socket.gethostname() and _process_alive(holder.get('pid'))
        if alive:
            return (f'the work dir {osp.dirname(self.path)!r} is in use by {who}; wait for it to end or choose '
                    f'another --work-dir')
        return (f'the work dir {osp.dirname(self.path)!r} is locked by {who}, which is no longer running here (a '
                f'crashed or killed run, or one on another host); if no run uses this work dir, remove '
                f'{self.path!r} and start again')


def _process_alive(pid: Optional[int]) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
