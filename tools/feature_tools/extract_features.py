"""Run a classification config's (frozen) backbone over a dataset split once and cache the features on disk.

    python tools/feature_tools/extract_features.py CONFIG --split train --out work_dirs/cache/train [--shard-size 256]
        [--batch-size 32] [--pool N] [--dtype float16] [--device cuda] [--num-workers 8] [--cfg-options k=v ...]
    bash tools/feature_tools/dist_extract.sh CONFIG GPUS --split train --out work_dirs/cache/train [...]   # one cache,
    GPUS processes

The cache (memory-mapped arrays + manifest.json) is what CachedFeatureDataset reads. DataLoader workers read and
transform the images while the model runs on the device, with the backbone's dtype and channels_last settings. In a
distributed job (--launcher pytorch, or slurm with srun) every process writes its own shards of the one cache. An
interrupted run resumes with the unfinished shards when started again with the same arguments (with any number of
processes); a folder holding other features is refused. Every split is read with the config's test pipeline, so the
features are deterministic.
"""
import argparse

from mmengine.config import DictAction
from mmengine.dist import is_main_process

from mmdiff.apis.run_inputs import data_inputs, model_inputs
from mmdiff.feature_cache.extraction import SPLITS, extract_split
from mmdiff.apis.runner_config import (add_device_arguments, check_device, default_device, join_process_group,
                                        leave_process_group, positive_int)
from mmdiff.utils.config_scope import load_config
from mmdiff.utils.output_paths import check_output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='classification config with a DiffusionUNetBackbone')
    parser.add_argument('--split', choices=SPLITS, required=True)
    parser.add_argument('--out', required=True, help='cache folder')
    parser.add_argument('--shard-size', type=positive_int, default=256, help='samples per resumable shard')
    parser.add_argument('--batch-size', type=positive_int, default=32)
    parser.add_argument('--pool', type=positive_int, help='adaptive-average-pool each output to N x N before caching')
    parser.add_argument('--dtype', choices=('float32', 'float16'), default='float32')
    add_device_arguments(parser)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    parser.add_argument('--hash-sources', action='store_true',
                        help='also key the cache by each source image\'s content (SHA-256, checked whenever the cache '
                        'is opened), not only its size and modification time')
    parser.add_argument('--overwrite', action='store_true',
                        help='write into a folder that holds other files than a cache of these features')
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    # a cache inside a dataset's folder would be read as its data (a CustomDataset class) by every later run
    check_output(args.out, data_inputs(cfg) + model_inputs(cfg) + [args.config], what='--out')
    device = join_process_group(args.launcher, check_device(args.device or default_device()))
    cache = extract_split(cfg, args.split, args.out, device=device, num_workers=args.num_workers,
                          shard_size=args.shard_size, batch_size=args.batch_size, pool_size=args.pool,
                          dtype=args.dtype, overwrite=args.overwrite, hash_sources=args.hash_sources)
    if is_main_process():
        shapes = ', '.join(f'{tap}: {tuple(level.shape)}' for tap, level in zip(cache.manifest['taps'], cache.levels))
        print(f'{len(cache)} samples cached in {args.out} ({shapes})')
    leave_process_group()


if __name__ == '__main__':
    main()
