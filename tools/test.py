"""Evaluate a checkpoint on a config's test split (mmdet, mmseg or mmpretrain) with mmengine's runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--cfg-options k=v ...]
                                           [--launcher {none,pytorch,slurm,mpi}]
"""
import argparse
import os.path as osp

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmdiff.apis.run_inputs import data_inputs
from mmdiff.apis.runner_config import add_runner_arguments, leave_process_group, load_runner_config
from mmdiff.engine.hooks.run_checks_hook import with_guard_hooks
from mmdiff.utils.dataset_check import check_dataloaders
from mmdiff.utils.output_paths import check_output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runner_arguments(parser)
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--show-dir', help='folder to save prediction overlays in')
    args = parser.parse_args()
    if osp.isdir(args.checkpoint):
        raise IsADirectoryError(f'checkpoint {args.checkpoint!r} is a folder; give the checkpoint file')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not exist')
    cfg = load_runner_config(args)
    # the overlays and the logs never land on the data (a work dir may hold the run's checkpoint and config dump)
    check_output(cfg.work_dir, data_inputs(cfg), what='--work-dir')
    if args.show_dir is not None:
        check_output(args.show_dir, data_inputs(cfg) + [args.config, args.checkpoint], what='--show-dir')
    cfg.load_from = args.checkpoint
    # RunChecksHook (listed by the shipped configs, added here to any other) checks that the checkpoint fits every
    # weight of the model before the first batch (the data is checked here, before the runner builds the dataset)
    cfg.custom_hooks = with_guard_hooks(cfg.get('custom_hooks'), data_checked=True)
    if args.show_dir is not None:
        visualization = cfg.get('default_hooks', {}).get('visualization')
        if visualization is None:
            raise ValueError(f'--show-dir needs a visualization hook in default_hooks; {args.config} has none')
        # absolute, because mmdet's hook re-joins a relative folder onto the work dir on every iteration
        visualization.update(draw=True, test_out_dir=osp.abspath(args.show_dir))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    # the dataset is built when testing starts: its files and classes are checked first
    check_dataloaders(cfg, ('test_dataloader', ))
    runner.test()
    leave_process_group()


if __name__ == '__main__':
    main()
