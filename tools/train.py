"""Train a model from an OpenMMLab config (mmdet, mmseg or mmpretrain) with mmengine's runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
                                 [--launcher {none,pytorch,slurm,mpi}]

Every run gets two of mmdiff's hooks: NonFiniteLossHook (a NaN or infinite loss stops training with a message
before a checkpoint of the diverged weights is written) and RandomStateHook (checkpoints keep the random
generators' states, so a killed run resumed with --resume continues as if it had never stopped).
"""
import argparse

from mmengine.registry import RUNNERS
from mmengine.runner import Runner, find_latest_checkpoint

import mmdiff.engine  # noqa: F401  registers NonFiniteLossHook and RandomStateHook
from mmdiff.utils.checkpoint_weights import check_checkpoint_fits
from mmdiff.utils.dataset_check import check_dataloaders
from mmdiff.utils.output_paths import check_work_dir
from mmdiff.utils.runner_access import unwrap_model
from mmdiff.utils.runner_config import add_runner_arguments, leave_process_group, load_runner_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runner_arguments(parser)
    parser.add_argument('--resume', nargs='?', const='auto',
                        help='resume from this checkpoint, or without a value from the latest in the work dir')
    parser.add_argument('--overwrite', action='store_true',
                        help='train anew into a work dir that holds an earlier run (refused otherwise)')
    args = parser.parse_args()
    cfg = load_runner_config(args)
    hooks = list(cfg.get('custom_hooks') or [])
    for hook_type in ('mmdiff.NonFiniteLossHook', 'mmdiff.RandomStateHook'):
        if not any(hook.get('type') in (hook_type, hook_type.split('.')[1]) for hook in hooks):
            hooks.append(dict(type=hook_type))
    cfg.custom_hooks = hooks
    check_work_dir(cfg.work_dir, resume=args.resume == 'auto', overwrite=args.overwrite)
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    # the runner builds its dataloaders lazily: check their files before training starts
    check_dataloaders(cfg, ('train_dataloader', 'val_dataloader'))
    # mmengine loads non-strictly: a resumed checkpoint must be this model's, a load_from one must share weights
    checkpoint = find_latest_checkpoint(cfg.work_dir) if args.resume == 'auto' else cfg.get('load_from')
    if checkpoint:
        check_checkpoint_fits(unwrap_model(runner.model).state_dict(), checkpoint, f'the model of {args.config}',
                              exact=bool(args.resume))
    runner.train()
    leave_process_group()


if __name__ == '__main__':
    main()
