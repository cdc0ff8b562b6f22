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

What the user made stays: the work dir may not be, lie inside or hold the data, the config or a checkpoint the run
reads; a work dir holding an earlier run needs --resume or --overwrite; one run at a time holds a work dir
(``.mmdiff.lock``, naming the holder; a crashed run's lock is named with how to clear it). --resume CKPT takes a
checkpoint of this run; --resume alone the one last_checkpoint names; a truncated one is named with the newest
intact checkpoint to resume from.
"""
import argparse
import os.path as osp

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmdiff.apis.resume import resume_checkpoint
from mmdiff.apis.run_inputs import data_inputs, model_inputs
from mmdiff.apis.runner_config import add_runner_arguments, leave_process_group, load_runner_config
from mmdiff.engine.hooks.run_checks_hook import with_guard_hooks
from mmdiff.utils.dataset_check import check_dataloaders
from mmdiff.utils.output_paths import WorkDirLock, check_output, check_work_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runner_arguments(parser)
    parser.add_argument('--resume', nargs='?', const='auto',
                        help='resume from this checkpoint (of this run), or without a value from the latest in the '
                        'work dir')
    parser.add_argument('--overwrite', action='store_true',
                        help='train anew into a work dir that holds an earlier run (refused otherwise)')
    args = parser.parse_args()
    cfg = load_runner_config(args)
    cfg.custom_hooks = with_guard_hooks(cfg.get('custom_hooks'), data_checked=True)
    resumed = resume_checkpoint(cfg.work_dir, None if args.resume == 'auto' else args.resume) if args.resume else None
    check_work_dir(cfg.work_dir, resume=resumed is not None, overwrite=args.overwrite)
    # nothing the run reads may lie in its work dir, which it writes: but the checkpoint it resumes, and the work
    # dir's own config dump that a resumed run is often given, are the run's own
    inputs = data_inputs(cfg) + [path for path in model_inputs(cfg)
                                 if not resumed or osp.realpath(path) != osp.realpath(resumed)]
    check_output(cfg.work_dir, inputs + ([] if resumed else [args.config]), what='--work-dir')
    if resumed:
        cfg.resume, cfg.load_from = True, resumed
    with WorkDirLock(cfg.work_dir):
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        # the datasets are built when training starts: their files and classes are checked first (RunChecksHook
        # then checks the checkpoint the runner loaded)
        check_dataloaders(cfg, ('train_dataloader', 'val_dataloader'))
        runner.train()
    leave_process_group()


if __name__ == '__main__':
    main()
