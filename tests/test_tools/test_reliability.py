"""Reliability of training runs: nothing from the network, identical seeded runs, a stop at a non-finite loss,
a killed run resumed to the same result.

The runs are ``tools/train.py`` and ``tools/test.py`` in this process; what needs a process of its own runs in a
fresh interpreter: the import of every module under the network guard, and the run that is killed.
"""
import os
import pkgutil
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import mmdiff
from tests.test_utils.detection_demo import DEMO_CONFIG, demo_options
from tests.test_utils.network_guard import NETWORK_GUARD, network_refused
from tests.test_utils.tool_runs import ROOT, run, run_in_process

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: `make test` runs them, `make test-quick` does not

TRAIN, TEST = ROOT / 'tools/train.py', ROOT / 'tools/test.py'


def offline_env() -> dict:
    return dict(os.environ, HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1', HF_DATASETS_OFFLINE='1')


def iteration_losses(log: str) -> list:
    return re.findall(r'Iter\(train\) \[\s*(\d+)/\d+\].*?loss: ([\d.]+)', log)


def test_the_guard_refuses_network_access(tmp_path):
    probe = tmp_path / 'probe.py'
    probe.write_text('import urllib.request\nurllib.request.urlopen("http://example.com", timeout=5)\n')
    result = run(['-c', NETWORK_GUARD, probe], env=offline_env())
    assert result.returncode != 0 and 'network access attempted' in result.stderr
    with network_refused():
        guarded = run_in_process(probe)
    assert guarded.returncode != 0 and 'network access attempted' in guarded.stderr


def test_every_module_imports_without_the_network(tmp_path):
    """What a tool imports, in a fresh interpreter under the guard: an import that reached out would fail here."""
    # mmdiff and every module of it, and the task packages' model registries
    modules = sorted([module.name for module in pkgutil.walk_packages(mmdiff.__path__, 'mmdiff.')] +
                     ['mmdiff', 'mmdet.models', 'mmseg.models', 'mmpretrain.models'])
    assert 'mmdiff.models.backbones.diffusion_unet' in modules
    imports = tmp_path / 'imports.py'
    imports.write_text(''.join(f'import {name}\n' for name in modules))
    result = run(['-c', NETWORK_GUARD, imports], env=offline_env())
    assert result.returncode == 0, result.stderr[-3000:]


def test_demo_trains_and_tests_without_the_network(demo_run, detection_shapes, tmp_path, monkeypatch):
    """The session's demo run trained with every connection refused (tests/conftest.py); its checkpoint tests so."""
    status, trained = (demo_run / 'train.log').read_text().split('\n', 1)
    assert status == '0', trained[-3000:]
    for variable, value in offline_env().items():
        monkeypatch.setenv(variable, value)
    with network_refused():
        tested = run_in_process(TEST, [DEMO_CONFIG, demo_run / 'work' / 'iter_2.pth', '--work-dir', tmp_path / 'work',
                                       '--cfg-options', *demo_options(detection_shapes)])
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert 'network access attempted' not in trained + tested.stderr
    assert 'coco/bbox_mAP' in tested.stdout + tested.stderr


def test_two_seeded_runs_log_identical_losses(detection_shapes, tmp_path):
    options = [*demo_options(detection_shapes, iters=3), 'default_hooks.logger.interval=1', 'randomness.seed=7',
               'randomness.deterministic=True']
    logs = []
    for name in ('first', 'second'):
        result = run_in_process(TRAIN, [DEMO_CONFIG, '--work-dir', tmp_path / name, '--cfg-options', *options])
        assert result.returncode == 0, result.stderr[-3000:]
        logs.append(iteration_losses(result.stdout + result.stderr))
    assert [iteration for iteration, _ in logs[0]] == ['1', '2', '3']
    assert logs[0] == logs[1]


def test_a_non_finite_loss_stops_training_before_a_checkpoint(detection_shapes, tmp_path):
    work = tmp_path / 'work'
    result = run_in_process(TRAIN, [DEMO_CONFIG, '--work-dir', work, '--cfg-options',
                                    *demo_options(detection_shapes, iters=4), 'default_hooks.checkpoint.interval=1',
                                    'optim_wrapper.optimizer.lr=1e38', 'optim_wrapper.clip_grad=None'])
    assert result.returncode != 0
    stopped = re.search(r'training stopped at iteration (\d+): the loss is (nan|inf)', result.stderr)
    assert stopped, result.stderr[-3000:]
    diverged = int(stopped.group(1))
    saved = sorted(path.name for path in work.glob('iter_*.pth'))
    assert saved == [f'iter_{i}.pth' for i in range(1, diverged)]  # only the checkpoints of finite losses
    assert 'no checkpoint was written from this state' in result.stderr


def test_a_killed_run_resumes_to_the_weights_and_metrics_of_an_uninterrupted_one(detection_shapes, tmp_path):
    """SIGKILL (no clean stop) after a checkpoint, then ``--resume``: the end is bitwise the uninterrupted run's.
    The uninterrupted and the resumed runs are in this process, the killed one in a process of its own."""
    options = [*demo_options(detection_shapes, iters=6), 'default_hooks.checkpoint.interval=1',
               'train_cfg.val_interval=3', 'train_dataloader.num_workers=1', 'train_dataloader.persistent_workers=True',
               'randomness.seed=3', 'randomness.deterministic=True']

    def train(work_dir: Path, *extra: str) -> list:
        return [str(DEMO_CONFIG), '--work-dir', str(work_dir), *extra, '--cfg-options', *options]

    uninterrupted = run_in_process(TRAIN, train(tmp_path / 'uninterrupted'))
    assert uninterrupted.returncode == 0, uninterrupted.stderr[-3000:]

    work = tmp_path / 'killed'
    # its own process group, so that the kill takes the dataloader worker too, as when a node dies
    process = subprocess.Popen([sys.executable, str(TRAIN), *train(work)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
    last_checkpoint = work / 'last_checkpoint'
    try:
        while process.poll() is None and not (last_checkpoint.is_file() and 'iter_' in last_checkpoint.read_text()):
            time.sleep(0.02)
        assert process.poll() is None, 'the run ended before it could be killed'
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    killed_at = int(re.search(r'iter_(\d+)\.pth', last_checkpoint.read_text()).group(1))
    assert killed_at < 6

    # the killed run's work-dir lock stays, named with how to clear it; a user clears it, then resumes
    lock = work / '.mmdiff.lock'
    refused = run_in_process(TRAIN, train(work, '--resume'))
    assert refused.returncode != 0 and 'no longer running here' in refused.stderr, refused.stderr[-3000:]
    assert f"remove '{lock}'" in refused.stderr
    lock.unlink()
    resumed = run_in_process(TRAIN, train(work, '--resume'))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'resumed epoch: 0, iter: {killed_at}' in resumed.stdout + resumed.stderr

    weights = [torch.load(run_dir / 'iter_6.pth', map_location='cpu', weights_only=False)['state_dict']
               for run_dir in (tmp_path / 'uninterrupted', work)]
    assert weights[0].keys() == weights[1].keys()
    differing = [name for name in weights[0] if not torch.equal(weights[0][name], weights[1][name])]
    assert differing == []
    metrics = [re.findall(r'Iter\(val\) \[\d+/\d+\]\s+(coco/bbox_mAP: .*?segm_mAP_l: \S+)', result.stdout + result.stderr)[-1]
               for result in (uninterrupted, resumed)]
    assert metrics[0] == metrics[1]
