"""``tools/analysis_tools/benchmark.py cache``: per-epoch time of a linear probe on live backbone features versus the
same probe on features read from a feature cache (same head, same batch size)."""
import argparse
import tempfile
from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F

from mmdiff.apis.benchmarks.timing import median_seconds
from mmdiff.models.backbones import DiffusionUNetBackbone


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``cache`` subcommand's options."""
    parser.add_argument('--arch', default='adm-tiny', choices=sorted(DiffusionUNetBackbone.arch_settings))
    parser.add_argument('--num-images', type=int, default=256)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=5)


def output_name(args: argparse.Namespace) -> str:
    """The JSON file's stem under ``work_dirs/benchmarks/``."""
    return 'cache'


def benchmark_cache(args: argparse.Namespace) -> Dict:
    """Median epoch time of the live and the cached probe, and the speed-up."""
    from mmdiff.feature_cache.writer import batch_by_batch, extract_to_cache  # only this subcommand needs them
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
        cache = extract_to_cache(batch_by_batch(lambda index: (backbone(images[index]), labels[index])),
                                 args.num_images, cache_dir,
                                 dict(backbone=dict(arch=args.arch)), batch_size=args.batch_size,
                                 show_progress=False)
        level = cache.level(-1)

        def cached_epoch() -> None:
            for batch in batches:
                head_step(torch.from_numpy(np.array(level[batch[0]:batch[-1] + 1])), batch)

        live = median_seconds(live_epoch, args.repeats)
        cached = median_seconds(cached_epoch, args.repeats)
    return dict(benchmark='cache', arch=args.arch, num_images=args.num_images, batch_size=args.batch_size,
                size=args.size, device='cpu', threads=torch.get_num_threads(), repeats=args.repeats,
                live_epoch_s=live, cached_epoch_s=cached, speedup=live / cached)


def print_table(result: Dict) -> None:
    """The two epoch times and the speed-up."""
    print(f'| setting | seconds per epoch |\n|---|---|\n| live backbone ({result["arch"]}, {result["num_images"]} '
          f'images of {result["size"]}px, batch {result["batch_size"]}) | {result["live_epoch_s"]:.4f} |\n'
          f'| feature cache | {result["cached_epoch_s"]:.4f} |\n\nspeed-up: {result["speedup"]:.1f}x '
          f'(median of {result["repeats"]}, {result["device"]}, {result["threads"]} threads)')
