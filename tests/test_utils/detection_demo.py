"""The Mask R-CNN demo on a few generated shapes, shared by the detection and the reliability tests."""
import subprocess
import sys
from pathlib import Path

from mmdiff.datasets.synthetic_shapes import make_shapes_dataset

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / 'configs' / 'mask_rcnn' / 'mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py'


def make_demo_shapes(root: Path) -> Path:
    """Write 8 train and 4 val scenes of 64 px under ``root``."""
    make_shapes_dataset(str(root), num_train=8, num_val=4, image_size=64, max_objects=3, seed=3)
    return root


def demo_options(root: Path, iters: int = 2) -> list:
    """cfg-options pointing the demo config at ``root`` with a short, single-process schedule."""
    options = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
               f'default_hooks.checkpoint.interval={iters}', 'param_scheduler.0.end=1',
               'param_scheduler.1.begin=1', f'param_scheduler.1.end={iters}',
               f'val_evaluator.ann_file={root}/annotations/instances_val.json',
               f'test_evaluator.ann_file={root}/annotations/instances_val.json']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={root}/', f'{loader}.batch_size=2', f'{loader}.num_workers=0',
                    f'{loader}.persistent_workers=False']
    return options


def run(args, cwd=ROOT, timeout=900, env=None) -> subprocess.CompletedProcess:
    """Run a Python script (or ``-c`` code) of the project in a fresh interpreter, capturing its output."""
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=env)
