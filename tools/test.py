"""Evaluate a checkpoint on a config's test split (mmdet, mmseg or mmpretrain) with mmengine's runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--cfg-options k=v ...]
                                           [--launcher {none,pytorch,slurm,mpi}]
"""
import argparse
import os.path as osp

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from mmdiff.utils.checkpoint_weights import check_weights_fit
from mmdiff.utils.dataset_check import check_dataloaders
from mmdiff.utils.runner_access import unwrap_model
from mmdiff.utils.runner_config import add_runner_arguments, leave_process_group, load_runner_config
from mmdiff.utils.safe_checkpoint import load_checkpoint_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runner_arguments(parser)
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--show-dir', help='folder to save prediction overlays in')
    args = parser.parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not exist')
    cfg = load_runner_config(args)
    cfg.load_from = args.checkpoint
    if args.show_dir is not None:
        visualization = cfg.get('default_hooks', {}).get('visualization')
        if visualization is None:
            raise ValueError(f'--show-dir needs a visualization hook in default_hooks; {args.config} has none')
        # absolute, because mmdet's hook re-joins a relative folder onto the work dir on every iteration
        visualization.update(draw=True, test_out_dir=osp.abspath(args.show_dir))
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    # the runner builds its dataloaders lazily: check their files before testing starts
    check_dataloaders(cfg, ('test_dataloader', ))
    # mmengine loads a checkpoint non-strictly: one of another model would be evaluated with random weights
    model = unwrap_model(runner.model)
    checkpoint = load_checkpoint_file(args.checkpoint, map_location='cpu', mmap=True)  # shapes, no data
    check_weights_fit(model.state_dict(), checkpoint.get('state_dict', checkpoint), args.checkpoint,
                      f'the model of {args.config}')
    runner.test()
    leave_process_group()


if __name__ == '__main__':
    main()
