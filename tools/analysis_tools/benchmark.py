"""Benchmarks: the only place mmdiff measures time. Prints a table and writes JSON under work_dirs/benchmarks/.

    python tools/analysis_tools/benchmark.py backbone [--arch adm-256u] [--batch-size 32] [--size 256]
        [--device cuda] [--compile] [--profile] [--checkpoint PATH]
        Images/s, achieved TFLOP/s (PyTorch's flop counter), the fraction of a measured matmul peak, peak memory and
        the error against the fp32 features, for the plain diffusers full forward and the backbone's settings
        (truncated U-Net, bf16 autocast, bf16 weights, channels_last, torch.compile with and without CUDA graphs,
        three timesteps in one call), the cost of the backbone's input checks, a torch.profiler table of the top
        kernels (--profile) and, last, a summary against the GPU target.
        tools/analysis_tools/gpu_benchmark.sh runs it on a GPU
        node. The module is mmdiff/apis/benchmarks/backbone.py.
    python tools/analysis_tools/benchmark.py step CONFIG [--backbone-arch adm-tiny] [--batch-size 2] [--size 256]
        One runner train step (data preprocessor, loss, backward, optimizer) and one test step of a detector or
        segmentor config, on random images (mmdiff/apis/benchmarks/step.py).
    python tools/analysis_tools/benchmark.py cache [--arch adm-tiny] [--num-images 256] [--batch-size 32] [--size 64]
        Per-epoch time of training a linear probe with features recomputed by the frozen backbone versus read
        from a feature cache (same head, same batch size; mmdiff/apis/benchmarks/cache.py).
    python tools/analysis_tools/benchmark.py extract [CONFIG] [--split test] [--num-images 450] [--workers 2]
        [--device cuda]
        Images/s of writing a feature cache of a config's split (default: the digits linear probe) with the samples
        read in the main process and by N DataLoader workers, and the fraction of the time the model waited for
        data (mmdiff/apis/benchmarks/extract.py).

Timers synchronise the device; every timed call gets fresh random inputs; results are medians of ``--repeats``
after warm-up calls (the first call of a compiled setting, which compiles, is reported separately). The timing
helpers are :mod:`mmdiff.apis.benchmarks.timing`. A subcommand is a module with ``add_arguments``, ``output_name``,
a benchmark function and ``print_table``, listed in ``COMMANDS``.
"""
import argparse
import json
from pathlib import Path

from mmdiff.apis.benchmarks import backbone, cache, extract, step

OUT_DIR = Path('work_dirs/benchmarks')
# subcommand: (module, its benchmark function, help)
COMMANDS = {
    'backbone': (backbone, backbone.benchmark_backbone, 'frozen-feature throughput of the speed settings'),
    'step': (step, step.benchmark_step, 'runner train and test step of a detection/segmentation config'),
    'cache': (cache, cache.benchmark_cache, 'linear-probe epoch from live features vs from the feature cache'),
    'extract': (extract, extract.benchmark_extract, 'feature-cache extraction with 0 and N DataLoader workers'),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    for name, (module, _, help_text) in COMMANDS.items():
        module.add_arguments(commands.add_parser(name, help=help_text))
    args = parser.parse_args()
    module, benchmark, _ = COMMANDS[args.command]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    args.output = OUT_DIR / f'{module.output_name(args)}.json'  # a long benchmark writes its rows here as it goes
    result = benchmark(args)
    args.output.write_text(json.dumps(result, indent=2))
    module.print_table(result)
    print(f'\nwrote {args.output}')


if __name__ == '__main__':
    main()
