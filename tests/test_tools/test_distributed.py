"""Distributed training on CPU: torchrun + gloo through tools/dist_train.sh, compared with one process (the
single-process runs of ``tools/train.py`` in this process)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import init_default_scope

from tests.test_utils.detection_demo import DEMO_CONFIG, demo_options
from tests.test_utils.tool_runs import ROOT, run_in_process

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: `make test` runs them, `make test-quick` does not

LINEAR_DEMO = ROOT / 'configs/linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py'
# mmengine writes one log per rank when the log level is DEBUG; the rank-0 log alone holds only its half batch
PER_RANK_LOGS = 'log_level=DEBUG'


def dist_train(config: Path, work_dir: Path, options: list) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ["PATH"]}',
               PORT=str(29500 + os.getpid() % 1000), OMP_NUM_THREADS='1')
    return subprocess.run(['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(work_dir),
                           '--cfg-options', *options], capture_output=True, text=True, cwd=ROOT, timeout=900, env=env)


def logged_losses(log_text: str) -> list:
    """The total loss of each logged training iteration, in order."""
    return [float(loss) for loss in re.findall(r'\(train\).*?  loss: ([\d.]+)', log_text)]


def rank_losses(work_dir: Path, rank: int) -> list:
    logs = list(work_dir.glob(f'*/*_rank{rank}.log'))
    assert len(logs) == 1, f'expected one log of rank {rank} under {work_dir}, found {logs}'
    return logged_losses(logs[0].read_text())


def classification_options(root: Path, batch_size: int) -> list:
    return [f'{loader}.dataset.data_root={root}' for loader in ('train_dataloader', 'val_dataloader',
                                                              'test_dataloader')] + [
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=2', 'param_scheduler.0.end=1',
        'default_hooks.logger.interval=1', f'train_dataloader.batch_size={batch_size}', PER_RANK_LOGS]


def test_ddp_allocates_gradient_buckets_for_the_head_only(tmp_path):
    """The frozen U-Net's parameters require no grad, so DDP neither buckets nor waits for them."""
    cfg = Config.fromfile(str(LINEAR_DEMO))
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    model = MODELS.build(cfg.model)
    torch_dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    try:
        wrapped = MMDistributedDataParallel(module=model, device_ids=None, broadcast_buffers=False)
        bucketed = wrapped._get_ddp_logging_data()['num_parameter_tensors']
    finally:
        torch_dist.destroy_process_group()
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(name.startswith('head.') for name in trainable)
    assert bucketed == len(trainable)
    assert sum(p.numel() for p in model.backbone.unet.parameters()) > 100 * sum(
        p.numel() for p in model.head.parameters())


def test_two_processes_train_as_one_with_the_same_total_batch(classification_shapes, tmp_path):
    """2 x 4 images under DDP against 1 x 8: the same samples per step, so the same mean loss and weights (16
    training images: two iterations of 8 per epoch)."""
    single = run_in_process(ROOT / 'tools/train.py', [LINEAR_DEMO, '--work-dir', tmp_path / 'single', '--cfg-options',
                                                      *classification_options(classification_shapes, batch_size=8)])
    assert single.returncode == 0, single.stderr[-3000:]
    dist = dist_train(LINEAR_DEMO, tmp_path / 'dist', classification_options(classification_shapes, batch_size=4))
    assert dist.returncode == 0, dist.stderr[-3000:]

    one = logged_losses(single.stdout + single.stderr)
    rank0, rank1 = rank_losses(tmp_path / 'dist', 0), rank_losses(tmp_path / 'dist', 1)
    assert len(one) == len(rank0) == len(rank1) == 4
    assert rank0 != rank1  # each rank saw its own half of the batch
    # each logged loss is rounded to 4 decimals
    assert [(a + b) / 2 for a, b in zip(rank0, rank1)] == pytest.approx(one, abs=2e-4)
    weights = [torch.load(tmp_path / run_dir / 'epoch_2.pth', map_location='cpu', weights_only=False)['state_dict']
               for run_dir in ('single', 'dist')]
    head = [name for name in weights[0] if name.startswith('head.')]
    assert head and weights[0].keys() == weights[1].keys()
    for name in head:
        torch.testing.assert_close(weights[1][name], weights[0][name], atol=1e-5, rtol=1e-4, msg=name)
    accuracy = [re.findall(r'accuracy/top1: ([\d.]+)', result.stdout + result.stderr)[-1] for result in (single, dist)]
    assert accuracy[0] == accuracy[1]


def test_mask_rcnn_demo_trains_and_evaluates_on_two_processes(detection_shapes, tmp_path):
    """The fine-tuned U-Net detector under DDP: no unused-parameter error, evaluation gathered over the ranks.

    Its losses follow a single process with the same total batch closely but not exactly: mmdet normalises the
    RPN and RoI losses per rank and draws its anchor and RoI samples from each rank's random stream.
    """
    options = [*demo_options(detection_shapes, iters=3), 'default_hooks.logger.interval=1', 'randomness.seed=0']
    single = run_in_process(ROOT / 'tools/train.py', [DEMO_CONFIG, '--work-dir', tmp_path / 'single', '--cfg-options',
                                                      *options, 'train_dataloader.batch_size=4'])
    assert single.returncode == 0, single.stderr[-3000:]
    dist = dist_train(DEMO_CONFIG, tmp_path / 'dist', [*options, PER_RANK_LOGS])
    assert dist.returncode == 0, dist.stderr[-3000:]
    assert 'terminate called' not in dist.stderr
    assert re.search(r'coco/bbox_mAP: [\d.]+ .*coco/segm_mAP: [\d.]+', dist.stdout + dist.stderr)
    assert (tmp_path / 'dist' / 'iter_3.pth').is_file()

    one = logged_losses(single.stdout + single.stderr)
    rank0, rank1 = rank_losses(tmp_path / 'dist', 0), rank_losses(tmp_path / 'dist', 1)
    assert len(one) == len(rank0) == len(rank1) == 3
    assert [(a + b) / 2 for a, b in zip(rank0, rank1)] == pytest.approx(one, rel=0.1)
