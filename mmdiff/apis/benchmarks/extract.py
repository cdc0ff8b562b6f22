"""``tools/analysis_tools/benchmark.py extract``: images/s of writing a feature cache from a config's split, with the
samples read in this process (0 workers) and by N DataLoader workers, the fraction of the time the model waited for
data, and what hashing the source images (``--hash-sources``) costs per image."""
import argparse
import tempfile
import time
from typing import Dict, Optional

from mmengine.config import DictAction

from mmdiff.apis.benchmarks.timing import device_name, synchronize
from mmdiff.apis.runner_config import check_device, default_device, positive_int
from mmdiff.utils.config_scope import load_config

DIGITS_PROBE = 'configs/linear_probe/linear-probe_adm-digits-b18-t150_digits-16px.py'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``extract`` subcommand's options."""
    parser.add_argument('config', nargs='?', default=DIGITS_PROBE,
                        help=f'a classification config with a diffusion backbone (default {DIGITS_PROBE})')
    parser.add_argument('--split', default='test', help="the split extracted (default 'test')")
    parser.add_argument('--num-images', type=positive_int, default=450, help='images extracted per run (at most '
                        'the split)')
    parser.add_argument('--workers', type=positive_int, default=2, help='DataLoader workers of the second row')
    parser.add_argument('--batch-size', type=positive_int, default=32)
    parser.add_argument('--shard-size', type=positive_int, default=256)
    parser.add_argument('--pool', type=positive_int, help='pool each map to N x N, as the sweeps do')
    parser.add_argument('--dtype', choices=('float32', 'float16'), default='float32', help='storage dtype')
    parser.add_argument('--device', help="'cuda', 'cuda:N' or 'cpu'; default: 'cuda' when available")
    parser.add_argument('--repeats', type=positive_int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')


def output_name(args: argparse.Namespace) -> str:
    """The JSON file's stem under ``work_dirs/benchmarks/``."""
    return 'extract'


def benchmark_extract(args: argparse.Namespace) -> Dict:
    """Median time of a whole extraction (a fresh cache each run, the DataLoader's start included) per setting.

    The settings take turns (0 workers, N workers, 0, N, ...), so a machine whose load drifts slows both alike.
    The backbone keeps random weights (``init_cfg=None``): the speed does not depend on them.
    """
    from mmdiff.feature_cache.writer import extract_to_cache  # only this subcommand needs them
    from mmdiff.feature_cache.extraction import (ClassifierFeatureStream, build_model_and_dataset,
                                                 loader_collate)

    cfg = load_config(args.config, args.cfg_options)
    cfg.model.backbone.init_cfg = None
    device = check_device(args.device or default_device())
    model, dataset, _ = build_model_and_dataset(cfg, args.split, device)
    num_images = min(args.num_images, len(dataset))
    streams = {workers: ClassifierFeatureStream(model, dataset, workers, loader_collate(cfg))
               for workers in (0, args.workers)}
    runs: Dict[int, list] = {workers: [] for workers in streams}
    for _ in range(args.warmup + args.repeats):
        for workers, stream in streams.items():
            stream.wait_seconds = 0.0
            with tempfile.TemporaryDirectory() as cache_dir:
                start = time.perf_counter()
                extract_to_cache(stream, num_images, cache_dir, dict(benchmark='extract'),
                                 shard_size=args.shard_size, batch_size=args.batch_size, pool_size=args.pool,
                                 dtype=args.dtype, show_progress=False)
                synchronize(device)
                runs[workers].append((time.perf_counter() - start, stream.wait_seconds))
    hashing = source_hashing_seconds(dataset, num_images, args.repeats)
    rows = []
    for workers, timed in runs.items():
        seconds, wait = sorted(timed[args.warmup:])[args.repeats // 2]
        rows.append(dict(workers=workers, seconds=seconds, images_per_s=num_images / seconds,
                         data_wait_fraction=wait / seconds))
    return dict(benchmark='extract', config=args.config, split=args.split, num_images=num_images,
                batch_size=args.batch_size, shard_size=args.shard_size, pool=args.pool, dtype=args.dtype,
                device=device_name(device), repeats=args.repeats, rows=rows,
                workers_speedup=rows[1]['images_per_s'] / rows[0]['images_per_s'],
                source_hashing_ms_per_image=None if hashing is None else 1000 * hashing / num_images)


def source_hashing_seconds(dataset, num_images: int, repeats: int) -> Optional[float]:
    """Median time of hashing the first ``num_images`` source files (what ``--hash-sources`` adds when a cache is
    written, and again whenever it is opened); None for a dataset generated in memory."""
    from mmdiff.feature_cache.cache_format import file_sha256
    paths = [dataset.get_data_info(index).get('img_path') for index in range(num_images)]
    if not all(isinstance(path, str) for path in paths):
        return None
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for path in paths:
            file_sha256(path)
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2]


def print_table(result: Dict) -> None:
    print(f"extraction of {result['num_images']} images of {result['config']} ({result['split']}), batch "
          f"{result['batch_size']}, {result['dtype']} storage, on {result['device']}\n")
    print('| DataLoader workers | images/s | s per run | model waits for data |')
    print('|---|---|---|---|')
    for row in result['rows']:
        print(f"| {row['workers']} | {row['images_per_s']:.1f} | {row['seconds']:.2f} | "
              f"{100 * row['data_wait_fraction']:.1f}% |")
    if result['source_hashing_ms_per_image'] is not None:
        print(f"\n--hash-sources adds {result['source_hashing_ms_per_image']:.3f} ms per image (SHA-256 of the source "
              f"files) when the cache is written and whenever it is opened")
    print(f"\n{result['rows'][1]['workers']} workers: {result['workers_speedup']:.2f}x the images/s of reading in "
          f'the main process')
