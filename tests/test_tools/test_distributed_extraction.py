"""Feature extraction at scale, on CPU: DataLoader workers, processes sharing one cache, restarts, the device.
A one-process run of a tool runs in this process, with one thread as the distributed runs have."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mmdiff.feature_cache.cache_format import FeatureCache
from mmdiff.datasets.synthetic_shapes import make_shapes_classification_dataset
from mmdiff.feature_cache.extraction import (build_model_and_dataset, build_split_dataset, extract_split,
                                             loader_collate)
from mmdiff.apis.runner_config import check_device
from tests.test_utils.tool_runs import ROOT, run_in_process

LINEAR_DEMO = ROOT / 'configs/linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py'
# one thread per process in every run compared, so that only the split of the work differs
ONE_THREAD = dict(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


@pytest.fixture(scope='module')
def shapes_cls(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp('shapes_cls')  # 8 validation images
    make_shapes_classification_dataset(str(root), num_train_per_class=2, num_val_per_class=2, image_size=32, seed=1)
    return root


def data_options(root: Path) -> list:
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    return [f'{loader}.dataset.data_root={root}' for loader in loaders]


def demo_cfg(root: Path) -> Config:
    cfg = Config.fromfile(str(LINEAR_DEMO))
    cfg.merge_from_dict(dict(option.split('=', 1) for option in data_options(root)))
    return cfg


def tool_env() -> dict:
    return dict(os.environ, **ONE_THREAD, PORT=str(29500 + os.getpid() % 1000),
                PATH=f'{Path(sys.executable).parent}{os.pathsep}{os.environ["PATH"]}')


def extract(out: Path, root: Path, processes: int = 1, *extra):
    """tools/feature_tools/extract_features.py on the demo's val split (shards of 2, batches of 1): in this process,
    or on ``processes`` processes of tools/feature_tools/dist_extract.sh."""
    arguments = [LINEAR_DEMO, '--split', 'val', '--out', out, '--shard-size', 2, '--batch-size', 1, '--device', 'cpu',
                 '--num-workers', 0, *extra, '--cfg-options', *data_options(root)]
    if processes == 1:
        return run_in_process(ROOT / 'tools/feature_tools/extract_features.py', arguments, env=ONE_THREAD)
    return subprocess.run(['bash', 'tools/feature_tools/dist_extract.sh', str(arguments[0]), str(processes),
                           *map(str, arguments[1:])], capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env=tool_env())


def cache_arrays(cache_dir: Path) -> list:
    cache = FeatureCache(str(cache_dir))
    return [np.asarray(cache.labels)] + [np.asarray(level) for level in cache.levels]


def assert_same_cache(found: Path, expected: Path) -> None:
    for found_array, expected_array in zip(cache_arrays(found), cache_arrays(expected), strict=True):
        assert found_array.dtype == expected_array.dtype and np.array_equal(found_array, expected_array)
    assert json.loads((found / 'manifest.json').read_text()) == json.loads((expected / 'manifest.json').read_text())


@pytest.fixture(scope='module')
def single_process_cache(shapes_cls, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('single') / 'cache'
    result = extract(out, shapes_cls)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


@pytest.mark.parametrize('collate', [None, 'default_collate'])
def test_dataloader_workers_give_the_features_of_the_serial_path(shapes_cls, tmp_path, collate):
    """Samples read by 2 worker processes, collated as the config's test_dataloader says (mmengine's
    pseudo_collate when it says nothing), give the features and labels of reading them one by one here."""
    cfg = demo_cfg(shapes_cls)
    if collate is not None:
        cfg.test_dataloader.collate_fn = dict(type=collate)
    with_workers = extract_split(cfg, 'val', str(tmp_path / 'workers'), num_workers=2, shard_size=4, batch_size=2,
                                 show_progress=False)
    model, dataset, _ = build_model_and_dataset(cfg, 'val')
    serial, labels = [], []
    with torch.no_grad():
        for start in range(0, len(dataset), 2):  # the same batches: two samples, never across a shard
            data = model.data_preprocessor(pseudo_collate([dataset[start], dataset[start + 1]]), False)
            serial.append(model.backbone(data['inputs'])[-1])
            labels += [sample.gt_label.item() for sample in data['data_samples']]
    assert len(with_workers) == len(dataset) == 8
    assert torch.equal(torch.from_numpy(np.asarray(with_workers.level(-1))), torch.cat(serial))
    assert np.asarray(with_workers.labels).tolist() == labels and len(set(labels)) == 4


def test_the_test_dataloaders_collate_function_is_built_as_the_runner_builds_it(shapes_cls):
    cfg = demo_cfg(shapes_cls)
    dataset, _ = build_split_dataset(cfg, 'val')
    samples = [dataset[0], dataset[1]]
    assert isinstance(loader_collate(cfg)(samples)['inputs'], list)  # pseudo_collate: one tensor per image
    cfg.test_dataloader.collate_fn = dict(type='default_collate')
    assert loader_collate(cfg)(samples)['inputs'].shape == (2, 3, 32, 32)  # stacked
    cfg.test_dataloader.collate_fn = dict(type='no_such_collate')
    with pytest.raises(ValueError, match=r"type='no_such_collate' is not a registered function; choose one of "
                                         r"\['default_collate', 'pseudo_collate'\]"):
        loader_collate(cfg)


def test_two_processes_write_the_cache_of_one(shapes_cls, single_process_cache, tmp_path):
    result = extract(tmp_path / 'cache', shapes_cls, 2)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'rank 0 of 2: 4/4 images' in result.stdout  # rank 0 wrote 4 of the 8 (shards 0 and 2), rank 1 the rest
    assert_same_cache(tmp_path / 'cache', single_process_cache)
    assert json.loads((tmp_path / 'cache' / 'progress.json').read_text()) == dict(done=[0, 1, 2, 3])
    assert not (tmp_path / 'cache' / 'shards_done').exists()


def test_a_killed_process_shards_are_redone_and_finished_ones_kept(shapes_cls, single_process_cache, tmp_path):
    """The state a 2-process run leaves when rank 1 dies in its second shard: rank 0 finished shards 0 and 2,
    rank 1 shard 1; shard 3 is half written. Restarted with 2 processes, only shard 3 is computed again."""
    killed = tmp_path / 'cache'
    shutil.copytree(single_process_cache, killed)
    (killed / 'progress.json').unlink()
    (killed / 'shards_done').mkdir()
    for shard in (0, 1, 2):
        (killed / 'shards_done' / str(shard)).touch()
    level = np.load(killed / 'level0.npy', mmap_mode='r+')
    level[6:8] = 0  # shard 3: not written
    level[0] = 7  # a finished shard: a restart must leave it as it is
    level.flush()
    del level
    with pytest.raises(ValueError, match=r'is incomplete \(1 of 4 shards missing\)'):
        FeatureCache(str(killed))

    result = extract(killed, shapes_cls, 2)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'rank 0 of 2' not in result.stdout  # shard 3 is rank 1's: rank 0 had nothing left to do
    resumed, reference = cache_arrays(killed), cache_arrays(single_process_cache)
    assert np.array_equal(resumed[1][6:8], reference[1][6:8])  # shard 3 written again
    assert np.all(resumed[1][0] == 7) and np.array_equal(resumed[1][1:6], reference[1][1:6])
    assert json.loads((killed / 'progress.json').read_text()) == dict(done=[0, 1, 2, 3])


def test_two_process_sweep_fits_the_probes_of_one_process(shapes_cls, tmp_path):
    grid = ['--timesteps', '10', '150', '--blocks', '19', '24', '--epochs', '3', '--device', 'cpu', '--num-workers',
            '0', '--cfg-options', *data_options(shapes_cls)]
    single = run_in_process(ROOT / 'tools/feature_tools/sweep_timesteps_blocks.py',
                            [LINEAR_DEMO, '--work-dir', tmp_path / 'single', *grid], env=ONE_THREAD)
    assert single.returncode == 0, single.stderr[-3000:]
    shared = subprocess.run(['bash', 'tools/torchrun.sh', 'feature_tools/sweep_timesteps_blocks.py', '2',
                             str(LINEAR_DEMO), '--work-dir', str(tmp_path / 'shared'), *grid], capture_output=True, text=True, cwd=ROOT,
                            timeout=900, env=tool_env())
    assert shared.returncode == 0, shared.stderr[-3000:]
    assert shared.stdout.count('best cell:') == 1  # rank 0 alone fits and reports
    for split in ('train', 'val'):
        assert_same_cache(tmp_path / 'shared' / 'cache' / split, tmp_path / 'single' / 'cache' / split)
    sweeps = [json.loads((tmp_path / run / 'sweep.json').read_text()) for run in ('single', 'shared')]
    assert sweeps[0]['top1'] == sweeps[1]['top1'] and sweeps[0]['best'] == sweeps[1]['best']


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the error of a machine without CUDA')
def test_cuda_without_cuda_is_named(shapes_cls, tmp_path):
    with pytest.raises(ValueError, match=r'--device cuda asks for CUDA, but this process sees no CUDA device '
                       r'\(torch .*\); use --device cpu'):
        check_device('cuda')
    result = extract(tmp_path / 'cache', shapes_cls, 1, '--device', 'cuda:1')
    assert result.returncode != 0
    assert '--device cuda:1 asks for CUDA, but this process sees no CUDA device' in result.stderr
    assert not (tmp_path / 'cache').exists()
    assert check_device('cpu') == torch.device('cpu')


def test_the_extraction_benchmark_times_both_readers(shapes_cls, tmp_path):
    result = run_in_process(ROOT / 'tools/analysis_tools/benchmark.py', [
        'extract', LINEAR_DEMO, '--split', 'val', '--num-images', '8', '--batch-size', '2', '--repeats', '1',
        '--warmup', '0', '--device', 'cpu', '--cfg-options', *data_options(shapes_cls)], cwd=tmp_path, env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / 'work_dirs/benchmarks/extract.json').read_text())
    assert [row['workers'] for row in report['rows']] == [0, 2] and report['num_images'] == 8
    for row in report['rows']:
        assert row['images_per_s'] == pytest.approx(8 / row['seconds'])
        assert f"| {row['workers']} | {row['images_per_s']:.1f} | {row['seconds']:.2f} |" in result.stdout
    # read in the main process, every sample is waited for; the fraction is a part of the run
    assert 0 < report['rows'][0]['data_wait_fraction'] < 1
    assert report['workers_speedup'] == pytest.approx(report['rows'][1]['images_per_s']
                                                      / report['rows'][0]['images_per_s'])
