"""Test data shared by the whole session: each is made once and read by every test that names its fixture.

Under pytest-xdist every worker is its own process, so a session fixture would run once per worker: the first
worker to ask makes the folder under a file lock in the session's shared temporary folder, the others wait for it
and read it. Tests read these folders and never change them; a test that damages data copies it first.
"""
import os
import shutil
from pathlib import Path
from typing import Callable, Dict

import pytest
from filelock import FileLock

from mmdiff.datasets.synthetic_shapes import (make_shapes_classification_dataset, make_shapes_dataset,
                                              make_shapes_segmentation_dataset)
from tests.test_utils.detection_demo import DEMO_CONFIG, demo_options
from tests.test_utils.network_guard import network_refused
from tests.test_utils.tiny_datasets import DEMO_DATASETS, TINY_DATASETS
from tests.test_utils.tool_runs import ROOT, run_in_process


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], None]) -> Path:
    """The folder ``name`` of the session, filled by ``make(folder)`` the first time any worker asks for it.

    Args:
        tmp_path_factory (pytest.TempPathFactory): The session's temporary folders.
        name (str): The folder's name, unique among the session's shared folders.
        make (Callable): Writes the folder's content into the (existing, empty) folder it is given.

    Returns:
        Path: The filled folder.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base  # xdist: popen-gwN's parent
    folder, done = shared / name, shared / f'{name}.done'
    with FileLock(str(shared / f'{name}.lock')):
        if not done.is_file():  # never made, or an earlier make failed part way: start afresh
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


@pytest.fixture(scope='session')
def detection_shapes(tmp_path_factory) -> Path:
    """8 train and 4 val COCO-format scenes of 64 px (the Mask R-CNN demo's layout)."""
    return made_once(tmp_path_factory, 'detection_shapes', lambda root: make_shapes_dataset(
        str(root), num_train=8, num_val=4, image_size=64, max_objects=3, seed=3))


@pytest.fixture(scope='session')
def classification_shapes(tmp_path_factory) -> Path:
    """4 train and 2 val images of 32 px per class in ``CustomDataset``'s class-folder layout."""
    return made_once(tmp_path_factory, 'classification_shapes', lambda root: make_shapes_classification_dataset(
        str(root), num_train_per_class=4, num_val_per_class=2, image_size=32, seed=1))


@pytest.fixture(scope='session')
def segmentation_shapes(tmp_path_factory) -> Path:
    """6 training and 3 validation scenes of 64 px in ADE20K's layout."""
    return made_once(tmp_path_factory, 'segmentation_shapes', lambda root: make_shapes_segmentation_dataset(
        str(root), num_train=6, num_val=3, image_size=64, max_objects=3, seed=4))


@pytest.fixture(scope='session')
def data_root_env(tmp_path_factory) -> Dict[str, str]:
    """Every ``MMDIFF_*_ROOT`` variable the configs read, at a tiny generated dataset in that layout."""

    def make(folder: Path) -> None:
        for variable, generate in TINY_DATASETS.items():
            generate(folder / variable.lower())
        for variable, generate in DEMO_DATASETS.items():
            generate(folder / variable.lower())

    folder = made_once(tmp_path_factory, 'data_roots', make)
    # the generators return their root with a trailing '/', as the configs concatenate onto it
    return {variable: f'{folder / variable.lower()}/' for variable in (*TINY_DATASETS, *DEMO_DATASETS)}


@pytest.fixture(scope='session')
def demo_run(detection_shapes, tmp_path_factory) -> Path:
    """The Mask R-CNN demo trained for two iterations on :func:`detection_shapes` by ``tools/train.py`` with every
    network connection refused, a log line per iteration: its work dir (``iter_2.pth``, ``last_checkpoint``,
    ``<timestamp>/vis_data/scalars.json``) and the run's output in ``train.log`` (exit status on the first line)."""

    def make(folder: Path) -> None:
        with network_refused():
            trained = run_in_process(ROOT / 'tools/train.py', [DEMO_CONFIG, '--work-dir', folder / 'work',
                                                               '--cfg-options', *demo_options(detection_shapes),
                                                               'default_hooks.logger.interval=1'])
        (folder / 'train.log').write_text(f'{trained.returncode}\n{trained.stdout}{trained.stderr}')

    return made_once(tmp_path_factory, 'demo_run', make)
