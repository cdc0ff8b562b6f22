"""Running a tool as its command line would, in this process or in a fresh interpreter.

Most tests run a tool to check what it decides (a model trains, a refusal names its cause): :func:`run_in_process`
runs the script's ``__main__`` here, which spares the 10-15 s a fresh interpreter pays to import torch, mmdiff and a
task package. What a fresh interpreter alone can show (a package's installed tool finding mmdiff only through a
config's ``custom_imports``, a message reaching the terminal, a killed or distributed run) uses :func:`run`.
"""
import contextlib
import io
import os
import random
import runpy
import subprocess
import sys
import traceback
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
# the tools that build an mmengine Runner (or its visualizer) from a config and take --cfg-options
RUNNER_TOOLS = ('train.py', 'test.py', 'browse_dataset.py')


@dataclass
class ToolRun:
    """What a tool run left: its exit status and what it printed (``subprocess.CompletedProcess``'s names).

    Args:
        returncode (int): 0 on success, 1 for an uncaught exception, a ``SystemExit`` code otherwise.
        stdout (str): Everything printed to standard output, mmengine's log lines included.
        stderr (str): Everything printed to standard error, an uncaught exception's traceback included.
    """
    returncode: int
    stdout: str
    stderr: str


def run(args: Sequence, cwd: Path = ROOT, timeout: float = 900, env: Optional[Mapping[str, str]] = None
        ) -> subprocess.CompletedProcess:
    """Run a Python script (or ``-c`` code) in a fresh interpreter, capturing its output.

    Args:
        args (Sequence): The interpreter's arguments: a script and its arguments, or ``'-c'`` and code.
        cwd (Path): Its working directory. Defaults to the repository.
        timeout (float): Seconds before it is killed. Defaults to 900.
        env (Mapping, optional): Its whole environment. Defaults to this process's.
    """
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=env)


@contextlib.contextmanager
def process_state_restored() -> Iterator[None]:
    """Put back what a tool may change for the rest of the process: argv, the module search path, working
    directory, environment, random generators, deterministic-algorithm mode and the thread count."""
    argv, path, cwd, environ = list(sys.argv), list(sys.path), os.getcwd(), dict(os.environ)
    generators = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    deterministic = (torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled())
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        sys.argv[:] = argv
        sys.path[:] = path
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(environ)
        random.setstate(generators[0])
        np.random.set_state(generators[1])
        torch.set_rng_state(generators[2])
        torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch.set_num_threads(threads)


def with_own_instances(args: Sequence) -> list:
    """``args`` with a unique ``experiment_name`` and visualizer name among the config options, so that the run
    gets a logger, message hub and visualizer of its own: mmengine hands a later runner the instance of the same
    name (the configs' visualizers are named ``'visualizer'``), which writes into the earlier run's folder."""
    name = f'run-{uuid.uuid4().hex[:8]}'
    options = [f'experiment_name={name}', f'visualizer.name={name}']
    args = [str(arg) for arg in args]
    if '--cfg-options' not in args:
        return [*args, '--cfg-options', *options]
    at = args.index('--cfg-options') + 1
    return [*args[:at], *options, *args[at:]]


def run_in_process(script: Path, args: Sequence = (), cwd: Path = ROOT, env: Optional[Mapping[str, str]] = None
                   ) -> ToolRun:
    """Run ``script`` as ``python script args`` would, in this process.

    Args:
        script (Path): The tool, e.g. ``ROOT / 'tools/train.py'`` or a package's installed ``tools/test.py``.
        args (Sequence): Its command-line arguments.
        cwd (Path): The working directory during the run. Defaults to the repository.
        env (Mapping, optional): Variables set (added to this process's) during the run. ``OMP_NUM_THREADS``
            also sets torch's thread count for the run, as it would at a fresh interpreter's start.

    Returns:
        ToolRun: The exit status and what the run printed.
    """
    args = with_own_instances(args) if Path(script).name in RUNNER_TOOLS else [str(arg) for arg in args]
    stdout, stderr = io.StringIO(), io.StringIO()
    returncode = 0
    with process_state_restored(), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        os.environ.update(env or {})
        if env and 'OMP_NUM_THREADS' in env:
            torch.set_num_threads(int(env['OMP_NUM_THREADS']))
        os.chdir(cwd)
        sys.argv[:] = [str(script), *args]
        sys.path.insert(0, str(Path(script).parent))  # as the interpreter does for a script: its siblings import
        try:
            runpy.run_path(str(script), run_name='__main__')
        except SystemExit as exit_:  # the interpreter's exit status: None is 0, a message is printed and is 1
            if exit_.code is None or isinstance(exit_.code, int):
                returncode = exit_.code or 0
            else:
                print(exit_.code, file=sys.stderr)
                returncode = 1
        except Exception:  # what the interpreter would print before exiting with status 1
            traceback.print_exc()
            returncode = 1
    return ToolRun(returncode, stdout.getvalue(), stderr.getvalue())
