"""Run a classification config's (frozen) backbone over a dataset split once and cache the features on disk.

    python tools/extract_features.py CONFIG --split train --out work_dirs/cache/train [--shard-size 256]
                                     [--batch-size 32] [--pool N] [--dtype float16] [--cfg-options k=v ...]

The cache (memory-mapped arrays + manifest.json) is what CachedFeatureDataset reads. An interrupted run resumes
from its last finished shard when started again with the same arguments; a folder holding other features is
refused. Every split is read with the config's test pipeline, so the features are deterministic.
"""
import argparse

from mmengine.config import DictAction

from mmdiff.utils.feature_extraction import SPLITS, extract_split
from mmdiff.utils.runner_config import load_config, positive_int


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='classification config with a DiffusionUNetBackbone')
    parser.add_argument('--split', choices=SPLITS, required=True)
    parser.add_argument('--out', required=True, help='cache folder')
    parser.add_argument('--shard-size', type=positive_int, default=256, help='samples per resumable shard')
    parser.add_argument('--batch-size', type=positive_int, default=32)
    parser.add_argument('--pool', type=positive_int, help='adaptive-average-pool each output to N x N before caching')
    parser.add_argument('--dtype', choices=('float32', 'float16'), default='float32')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries')
    parser.add_argument('--overwrite', action='store_true',
                        help='write into a folder that holds other files than a cache of these features')
    args = parser.parse_args()
    cfg = load_config(args.config, args.cfg_options)
    cache = extract_split(cfg, args.split, args.out, shard_size=args.shard_size, batch_size=args.batch_size,
                          pool_size=args.pool, dtype=args.dtype, overwrite=args.overwrite)
    shapes = ', '.join(f'{tap}: {tuple(level.shape)}' for tap, level in zip(cache.manifest['taps'], cache.levels))
    print(f'{len(cache)} samples cached in {args.out} ({shapes})')


if __name__ == '__main__':
    main()
