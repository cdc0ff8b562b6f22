"""Train a model from an OpenMMLab config (mmdet, mmseg or mmpretrain) with mmengine's runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
                                 [--launcher {none,pytorch,slurm,mpi}]

Every run gets mmdiff's guard hooks, which the shipped configs list in ``custom_hooks``
(configs/_base_/mmdiff_guards.py) so that mmdet's, mmseg's and mmpretrain's own tools run them too; this tool adds
any that a config lacks: NonFiniteLossHook (a NaN or infinite loss stops training with a message before a
checkpoint of the diverged weights is written), RandomStateHook (checkpoints keep the random generators' states,
so a killed run resumed with --resume continues as if it had never stopped) and RunChecksHook (the datasets'
classes and the loaded checkpoint are checked before the first iteration). Before the runner builds the datasets,
this tool checks their files and names the expected layout.
"""
import argparse

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmdiff.engine.hooks.run_checks_hook import with_guard_hooks
from mmdiff.utils.dataset_check import check_dataloaders
from mmdiff.utils.output_paths import check_work_dir
from mmdiff.apis.runner_config import add_runner_arguments, leave_process_group, load_runner_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runner_arguments(parser)
    parser.add_argument('--resume', nargs='?', const='auto',
                        help='resume from this checkpoint, or without a value from the latest in the work dir')
    parser.add_argument('--overwrite', action='store_true',
                        help='train anew into a work dir that holds an earlier run (refused otherwise)')
    args = parser.parse_args()
    cfg = load_runner_config(args)
    cfg.custom_hooks = with_guard_hooks(cfg.get('custom_hooks'), data_checked=True)
    check_work_dir(cfg.work_dir, resume=args.resume == 'auto', overwrite=args.overwrite)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    # the datasets are built when training starts: their files and classes are checked first (RunChecksHook then
    # checks the checkpoint the runner loaded)
    check_dataloaders(cfg, ('train_dataloader', 'val_dataloader'))
    runner.train()
    leave_process_group()


if __name__ == '__main__':
    main()
