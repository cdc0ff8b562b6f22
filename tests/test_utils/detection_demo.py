"""The Mask R-CNN demo config and the options that point it at a few generated shapes (the ``detection_shapes``
fixture of tests/conftest.py) with a short, single-process schedule."""
from pathlib import Path

from tests.test_utils.tool_runs import ROOT

DEMO_CONFIG = ROOT / 'configs' / 'mask_rcnn' / 'mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py'


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
