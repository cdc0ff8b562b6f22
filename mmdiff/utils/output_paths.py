"""Outputs are never replaced unless the user asks (``--overwrite``)."""
import os


def check_output_free(path: str, overwrite: bool) -> None:
    """Refuse an output that exists (a file, or a folder holding anything) unless ``overwrite``.

    Args:
        path (str): The file or folder a tool is about to write.
        overwrite (bool): The user asked to replace it (``--overwrite``).

    Raises:
        FileExistsError: Naming the path and what it holds.
    """
    if overwrite or not os.path.exists(path):
        return
    if os.path.isdir(path):
        held = sorted(os.listdir(path))
        if not held:
            return
        found = f'a folder holding {held[:5]}' + (f' and {len(held) - 5} more' if len(held) > 5 else '')
    else:
        found = f'a file of {os.path.getsize(path)} bytes'
    raise FileExistsError(f'{path!r} already exists ({found}); mmdiff does not replace what is there: pass '
                          f'--overwrite to replace it, or choose another output')


def earlier_run_files(work_dir: str) -> list:
    """The checkpoints (``*.pth``) and ``last_checkpoint`` an earlier run left in ``work_dir``."""
    if not os.path.isdir(work_dir):
        return []
    return sorted(name for name in os.listdir(work_dir) if name.endswith('.pth') or name == 'last_checkpoint')


def check_work_dir(work_dir: str, resume: bool, overwrite: bool) -> None:
    """Refuse to train anew into a work dir holding an earlier run's checkpoints (they would be replaced) unless
    resuming or ``overwrite``, and refuse ``--resume`` with nothing to resume.

    Args:
        work_dir (str): The run's work dir.
        resume (bool): ``--resume`` without a checkpoint: continue the latest run in ``work_dir``.
        overwrite (bool): ``--overwrite``: train anew, replacing what is there.

    Raises:
        FileExistsError: For checkpoints of an earlier run, named.
        FileNotFoundError: For ``resume`` without a ``last_checkpoint`` in ``work_dir``.
    """
    found = earlier_run_files(work_dir)
    if resume and 'last_checkpoint' not in found:
        raise FileNotFoundError(f'--resume: nothing to resume in {work_dir!r} (no last_checkpoint there); train '
                                f'without --resume, or give --resume CHECKPOINT')
    if found and not resume and not overwrite:
        raise FileExistsError(f'the work dir {work_dir!r} holds an earlier run ({found[:5]}), which a new run would '
                              f'replace: pass --resume to continue it, --overwrite to train anew into it, or choose '
                              f'another --work-dir')
