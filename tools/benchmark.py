"""Benchmarks: the only place mmdiff measures time. Prints a table and writes JSON under work_dirs/benchmarks/.

    python tools/benchmark.py cache [--arch adm-tiny] [--num-images 256] [--batch-size 32] [--size 64]
        Per-epoch time of training a linear probe with features recomputed by the frozen backbone versus read
        from a feature cache (same head, same batch size).
"""
import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict

import numpy as np
import torch
import torch.nn.functional as F

from mmdiff.datasets.feature_cache import extract_to_cache
from mmdiff.models.backbones import DiffusionUNetBackbone

OUT_DIR = Path('work_dirs/benchmarks')


def median_seconds(run: Callable[[], None], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``run`` over ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def benchmark_cache(args: argparse.Namespace) -> Dict:
    torch.manual_seed(0)
    backbone = DiffusionUNetBackbone(arch=args.arch, out_strides=None, out_blocks=(24, ), timesteps=(150, ))
    images = torch.rand(args.num_images, 3, args.size, args.size) * 2 - 1
    labels = torch.randint(0, 10, (args.num_images, ))
    channels = backbone.out_channels[-1]
    head = torch.nn.Linear(channels * 4, 10)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.01)
    batches = torch.arange(args.num_images).split(args.batch_size)

    def head_step(features: torch.Tensor, batch: torch.Tensor) -> None:
        loss = F.cross_entropy(head(F.adaptive_avg_pool2d(features, 2).flatten(1)), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def live_epoch() -> None:
        for batch in batches:
            with torch.no_grad():
                features = backbone(images[batch])[-1]
            head_step(features, batch)

    with tempfile.TemporaryDirectory() as cache_dir:
        cache = extract_to_cache(lambda index: (backbone(images[index]), labels[index]), args.num_images, cache_dir,
                                 dict(backbone=dict(arch=args.arch)), batch_size=args.batch_size,
                                 show_progress=False)
        level = cache.level(-1)

        def cached_epoch() -> None:
            for batch in batches:
                head_step(torch.from_numpy(np.array(level[batch[0]:batch[-1] + 1])), batch)

        live = median_seconds(live_epoch, args.repeats)
        cached = median_seconds(cached_epoch, args.repeats)
    return dict(benchmark='cache', arch=args.arch, num_images=args.num_images, batch_size=args.batch_size,
                size=args.size, device='cpu', threads=torch.get_num_threads(), live_epoch_s=live,
                cached_epoch_s=cached, speedup=live / cached)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    cache = commands.add_parser('cache', help='linear-probe epoch from live features vs from the feature cache')
    cache.add_argument('--arch', default='adm-tiny', choices=sorted(DiffusionUNetBackbone.arch_settings))
    cache.add_argument('--num-images', type=int, default=256)
    cache.add_argument('--batch-size', type=int, default=32)
    cache.add_argument('--size', type=int, default=64)
    cache.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()

    result = benchmark_cache(args)
    print(f'| setting | seconds per epoch |\n|---|---|\n| live backbone ({result["arch"]}, {result["num_images"]} '
          f'images of {result["size"]}px, batch {result["batch_size"]}) | {result["live_epoch_s"]:.4f} |\n'
          f'| feature cache | {result["cached_epoch_s"]:.4f} |\n\nspeed-up: {result["speedup"]:.1f}x '
          f'(median of {args.repeats}, {result["device"]}, {result["threads"]} threads)')
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f'{args.command}.json').write_text(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
