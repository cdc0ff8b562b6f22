"""Config and command-line handling shared by mmdiff's tools.

One pair of scripts (``tools/train.py``, ``tools/test.py``) serves mmdet, mmseg and mmpretrain configs alike: the
config's ``default_scope`` decides which package's registries the runner uses, and its ``custom_imports`` bring in
mmdiff.
"""
import argparse
import atexit
import os
import os.path as osp

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, DictAction
from mmengine.dist import init_dist

from mmdiff.utils.choices import check_choice
from mmdiff.utils.config_scope import enter_config_scope, load_config
from mmdiff.utils.model_check import check_model_arguments, check_pixel_normalisation

LAUNCHERS = ('none', 'pytorch', 'slurm')


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (a pool size, a batch size), named in the error otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer >= 1, got {text!r}') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected an integer >= 1, got {value}')
    return value


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments both tools take: config, work dir, AMP, config overrides and the launcher."""
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help='where logs and checkpoints go; default work_dirs/<config name>')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value pairs such as model.backbone.arch=adm-tiny')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher for distributed runs')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of the tools that run a model over a dataset: device, DataLoader workers and the launcher."""
    parser.add_argument('--device', type=str, default=None,
                        help="'cuda' (the local rank's GPU in a distributed job), 'cuda:N' or 'cpu'; default: "
                        "'cuda' when available, else 'cpu'")
    parser.add_argument('--num-workers', type=int, default=None,
                        help="DataLoader worker processes that read and transform the images; default: the "
                        "config's test_dataloader.num_workers")
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='split the work across the processes of a torchrun (pytorch) or SLURM job')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_runner_config(args: argparse.Namespace) -> Config:
    """Read the config, apply what the command line overrides, and check the model's arguments."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = load_config(args.config, args.cfg_options)
    enter_config_scope(cfg)
    check_model_arguments(cfg)
    check_pixel_normalisation(cfg)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.launcher == 'pytorch' and not torch.cuda.is_available():
        init_cpu_distributed(cfg)
    return cfg


def init_cpu_distributed(cfg: Config) -> None:
    """Start a torchrun job's process group with gloo on a machine without CUDA, and wrap the model for it.

    mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device`` before it joins the group, and its default
    ``MMDistributedDataParallel`` pins ``device_ids=[LOCAL_RANK]``; both need a GPU. The runner joins no group
    when one exists, so starting it here lets the same configs train and test on CPU processes (tests, laptops).
    Parameters that do not require grad (a frozen U-Net) get no DDP gradient buckets either way.
    """
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend='gloo')
        # a run that stops on an error still leaves the group before the interpreter goes
        atexit.register(leave_process_group, wait_for_peers=False)
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.update(device_ids=None)
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def leave_process_group(wait_for_peers: bool = True) -> None:
    """Destroy the process group, if one was joined, while the interpreter is still whole.

    A group that outlives the interpreter aborts the process: gloo's worker threads are torn down during
    finalisation ('terminate called without an active exception', SIGABRT), and torchrun then fails the whole job
    after training has succeeded. The tools call this at the end of a run; ``wait_for_peers`` first waits at a barrier,
    so no rank closes its connections while another still uses them (rank 0 writing the last checkpoint).

    Args:
        wait_for_peers (bool): wait for every rank before leaving. Off on the way out after an error, where a peer
            may never arrive.
    """
    if not torch_dist.is_initialized():
        return
    if wait_for_peers:
        torch_dist.barrier()
    torch_dist.destroy_process_group()


def default_device() -> str:
    """``'cuda'`` when this process sees a CUDA device, else ``'cpu'``."""
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def check_device(name: str) -> torch.device:
    """The device ``--device`` names; a CUDA device this process cannot use is an error that says why.

    Args:
        name (str): ``'cpu'``, ``'cuda'`` or ``'cuda:N'`` (any device string torch accepts).
    """
    device = torch.device(name)
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            build = f'built with CUDA {torch.version.cuda}' if torch.version.cuda else 'built without CUDA'
            raise ValueError(f'--device {name} asks for CUDA, but this process sees no CUDA device (torch '
                             f'{torch.__version__}, {build}); use --device cpu')
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f'--device {name}: this process sees {torch.cuda.device_count()} CUDA device(s), '
                             f'cuda:0..cuda:{torch.cuda.device_count() - 1}')
    return device


def join_process_group(launcher: str, device: torch.device) -> torch.device:
    """Join the process group of a ``torchrun`` (``'pytorch'``) or SLURM job; return this process's device.

    On CUDA every process takes the GPU of its local rank (mmengine's ``init_dist``, NCCL); CPU processes of a
    torchrun job join with gloo. ``'none'`` joins nothing.

    Args:
        launcher (str): ``'none'``, ``'pytorch'`` or ``'slurm'``.
        device (torch.device): The device asked for (:func:`check_device`).
    """
    check_choice('launcher', launcher, LAUNCHERS)
    if launcher == 'none':
        return device
    if device.type == 'cuda':
        init_dist(launcher, backend='nccl')
        return torch.device('cuda', torch.cuda.current_device())
    if launcher == 'slurm':
        raise ValueError('--launcher slurm runs one process per GPU and needs --device cuda; CPU processes can '
                         'share a job with torchrun (--launcher pytorch, tools/torchrun.sh)')
    torch_dist.init_process_group(backend='gloo')
    atexit.register(leave_process_group, wait_for_peers=False)
    return device
