"""An on-disk cache of backbone features: memory-mapped arrays, a manifest, resumable shard by shard.

Layout of a cache folder::

    manifest.json      what the features are: backbone config, checkpoint hash, timesteps, taps, noise seed,
                       dataset config, the pipeline used, sample count and per-level shape and dtype
    level<i>.npy       (num_samples, *shape) features of backbone output i (numpy .npy, opened as memmap)
    labels.npy         (num_samples,) int64 ground-truth labels
    progress.json      the shards already written

Extraction goes shard by shard (``shard_size`` samples); after each shard the arrays are flushed and the shard is
recorded in ``progress.json``, so an interrupted run resumes with the first unfinished shard. Memory use does not
grow with the dataset. A folder whose manifest differs from the one asked for is refused, never reused.
"""
import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.utils import ProgressBar
from torch import Tensor

from mmdiff.utils.output_paths import check_output_free

MANIFEST = 'manifest.json'
PROGRESS = 'progress.json'
SOURCES = 'sources.tsv'  # size, modification time (ns) and path of each source file, in sample order
FORMAT_VERSION = 1

# a batch function maps sample indices to (backbone outputs, labels)
BatchFunction = Callable[[Sequence[int]], Tuple[Sequence[Tensor], Tensor]]


def to_json(value):
    """A config value as plain JSON types (tuples become lists), so manifests compare reliably."""
    return json.loads(json.dumps(value, default=str))


def file_sha256(path: str) -> str:
    """SHA-256 of a file, read in 16 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 24), b''):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_sha256(backbone_cfg: dict) -> Optional[str]:
    """SHA-256 of the checkpoint a backbone config's ``init_cfg`` loads, or None when it loads no local file."""
    init_cfg = backbone_cfg.get('init_cfg') or {}
    checkpoint = init_cfg.get('checkpoint') if isinstance(init_cfg, dict) else None
    return file_sha256(checkpoint) if checkpoint and os.path.isfile(checkpoint) else None


def backbone_manifest(backbone_cfg: dict, feature_info: Sequence, pool_size: Optional[int]) -> Dict:
    """The part of a manifest that identifies the features: the backbone config and its checkpoint's hash.

    Args:
        backbone_cfg (dict): The backbone's config dict.
        feature_info (Sequence[FeatureLevel]): The built backbone's declared outputs.
        pool_size (int, optional): Side of the adaptive average pooling applied before caching, if any.
    """
    return dict(
        backbone=to_json(backbone_cfg),
        checkpoint_sha256=checkpoint_sha256(backbone_cfg),
        taps=[level.block for level in feature_info],
        timesteps=to_json(feature_info[0].timesteps),
        noise_mode=backbone_cfg.get('noise_mode', 'fixed'),
        noise_seed=backbone_cfg.get('noise_seed', 0),
        pool_size=pool_size)


def manifest_differences(found: Dict, expected: Dict) -> Dict:
    """Keys of ``expected`` whose values differ in ``found``, as {key: (found, expected)}."""
    return {key: (found.get(key), value) for key, value in to_json(expected).items() if found.get(key) != value}


class FeatureCache:
    """Read a complete feature cache.

    Args:
        cache_dir (str): The cache folder.

    Raises:
        FileNotFoundError: When the folder has no manifest.
        ValueError: When the extraction is unfinished.
    """

    def __init__(self, cache_dir: str) -> None:
        self.cache_dir = Path(cache_dir)
        manifest_path = self.cache_dir / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f'{cache_dir!r} is not a feature cache (no {MANIFEST}); write one with '
                                    f'tools/extract_features.py')
        self.manifest = json.loads(manifest_path.read_text())
        check_sources(self.cache_dir)
        done = set(json.loads((self.cache_dir / PROGRESS).read_text())['done'])
        missing = sorted(set(range(self.manifest['num_shards'])) - done)
        if missing:
            raise ValueError(f'the feature cache {cache_dir!r} is incomplete ({len(missing)} of '
                             f'{self.manifest["num_shards"]} shards missing); run tools/extract_features.py again '
                             f'with the same arguments to finish it')
        self.labels = open_cached_array(self.cache_dir / 'labels.npy', 'r')
        self.levels = [open_cached_array(self.cache_dir / f'level{i}.npy', 'r')
                       for i in range(len(self.manifest['levels']))]

    def __len__(self) -> int:
        return len(self.labels)

    def level(self, index: int) -> np.ndarray:
        """The memory-mapped ``(num_samples, *shape)`` features of backbone output ``index``."""
        if not -len(self.levels) <= index < len(self.levels):
            raise IndexError(f'level {index} is not in the cache {str(self.cache_dir)!r}, which holds '
                             f'{len(self.levels)} levels (taps {self.manifest["taps"]})')
        return self.levels[index]


def open_cached_array(path: Path, mode: str) -> np.ndarray:
    """Memory-map one array of a cache; a missing, truncated or damaged file is named."""
    try:
        return np.load(path, mmap_mode=mode)
    except (OSError, ValueError) as error:
        raise ValueError(f'{str(path)!r} of the feature cache is missing, truncated or damaged ({error}); delete the '
                         f'cache folder and extract again') from error


def write_sources(cache_dir: Path, paths: Sequence[str]) -> None:
    """Record each source file's size and modification time, so that a changed file makes the cache stale."""
    lines = []
    for path in paths:
        path = os.path.abspath(path)
        stat = os.stat(path)
        lines.append(f'{stat.st_size}\t{stat.st_mtime_ns}\t{path}')
    (cache_dir / SOURCES).write_text('\n'.join(lines) + '\n')


def check_sources(cache_dir: Path) -> None:
    """Raise a ``ValueError`` naming the first source file that is gone or has changed (size or modification
    time) since the cache was written; a cache without a source listing (generated data) has nothing to check."""
    listing = cache_dir / SOURCES
    if not listing.is_file():
        return
    for line in listing.read_text().splitlines():
        size, mtime, path = line.split('\t', 2)
        stat = os.stat(path) if os.path.isfile(path) else None
        now = None if stat is None else (stat.st_size, stat.st_mtime_ns)
        if now != (int(size), int(mtime)):
            state = 'no longer exists' if now is None else f'has changed since ({now[0]} bytes, modified {now[1]} ns)'
            raise ValueError(f'the feature cache {str(cache_dir)!r} is stale: it was made from {path!r} ({size} '
                             f'bytes, modified {mtime} ns), which {state}; extract again into a new folder')


def _write_progress(cache_dir: Path, done: Iterable[int]) -> None:
    temporary = cache_dir / (PROGRESS + '.tmp')
    temporary.write_text(json.dumps(dict(done=sorted(done))))
    os.replace(temporary, cache_dir / PROGRESS)


def extract_to_cache(batch_features: BatchFunction,
                     num_samples: int,
                     cache_dir: str,
                     manifest: Dict,
                     shard_size: int = 256,
                     batch_size: int = 32,
                     pool_size: Optional[int] = None,
                     dtype: str = 'float32',
                     show_progress: bool = True,
                     overwrite: bool = False,
                     sources: Optional[Sequence[str]] = None) -> FeatureCache:
    """Write (or finish writing) the features of ``num_samples`` samples into ``cache_dir``.

    Args:
        batch_features (callable): Maps a list of sample indices to (backbone outputs, labels); run under
            ``torch.no_grad``.
        num_samples (int): Dataset size.
        cache_dir (str): Output folder. If it holds a cache with the same manifest, finished shards are kept
            and extraction resumes; a different manifest is an error.
        manifest (dict): What identifies the features (see :func:`backbone_manifest`) plus the dataset config.
        shard_size (int): Samples per resumable unit. Defaults to 256.
        batch_size (int): Samples per backbone call. Defaults to 32.
        pool_size (int, optional): Adaptive-average-pool each output to ``pool_size`` x ``pool_size`` before
            writing (for sweeps over many taps). Defaults to None (full maps).
        dtype (str): Storage dtype, ``'float32'`` or ``'float16'``. Defaults to ``'float32'``.
        show_progress (bool): Draw a progress bar over the samples. Defaults to True.
        overwrite (bool): Write a new cache into a folder that holds other files (refused otherwise, so nothing
            there is replaced). Defaults to False.
        sources (Sequence[str], optional): The file each sample is read from, in sample order: their sizes and
            modification times are recorded, and a changed file makes the cache stale (refused when opened or
            resumed). Defaults to None (generated data: nothing to record).

    Returns:
        FeatureCache: The finished cache.
    """
    if dtype not in ('float32', 'float16'):
        raise ValueError(f"dtype={dtype!r} is not supported; choose 'float32' or 'float16'")
    if num_samples < 1 or shard_size < 1 or batch_size < 1:
        raise ValueError(f'num_samples, shard_size and batch_size must be >= 1, got {num_samples}, {shard_size}, '
                         f'{batch_size}')
    cache = Path(cache_dir)

    def features_of(indices: Sequence[int]) -> Tuple[List[np.ndarray], np.ndarray]:
        with torch.no_grad():
            outputs, labels = batch_features(list(indices))
        if pool_size is not None:
            outputs = [F.adaptive_avg_pool2d(output.flatten(0, -4), pool_size).unflatten(0, output.shape[:-3])
                       for output in outputs]
        return [output.float().cpu().numpy().astype(dtype) for output in outputs], labels.cpu().numpy()

    manifest = dict(to_json(manifest), format_version=FORMAT_VERSION, num_samples=num_samples,
                    shard_size=shard_size, num_shards=-(-num_samples // shard_size), dtype=dtype)
    if (cache / MANIFEST).is_file():
        found = json.loads((cache / MANIFEST).read_text())
        existing = {key: value for key, value in found.items() if key != 'levels'}
        differences = manifest_differences(existing, manifest)
        if differences:
            raise ValueError(f'{cache_dir!r} holds a feature cache of other features; (cache, asked) differ in '
                             f'{differences}; delete the folder or write to another one')
        check_sources(cache)
        manifest = found
        levels = [open_cached_array(cache / f'level{i}.npy', 'r+') for i in range(len(found['levels']))]
        labels = open_cached_array(cache / 'labels.npy', 'r+')
        done = set(json.loads((cache / PROGRESS).read_text())['done'])
    else:
        check_output_free(cache_dir, overwrite)  # not a cache of ours: its files would be replaced
        cache.mkdir(parents=True, exist_ok=True)
        probe, _ = features_of([0])
        manifest['levels'] = [dict(shape=list(level.shape[1:]), dtype=dtype) for level in probe]
        levels = [
            np.lib.format.open_memmap(cache / f'level{i}.npy', mode='w+', dtype=dtype,
                                      shape=(num_samples, *level.shape[1:])) for i, level in enumerate(probe)
        ]
        labels = np.lib.format.open_memmap(cache / 'labels.npy', mode='w+', dtype=np.int64, shape=(num_samples, ))
        done = set()
        if sources is not None:
            write_sources(cache, sources)
        _write_progress(cache, done)
        (cache / MANIFEST).write_text(json.dumps(manifest, indent=2))

    pending = [shard for shard in range(manifest['num_shards']) if shard not in done]
    bar = ProgressBar(sum(min(shard_size, num_samples - shard * shard_size) for shard in pending)) \
        if show_progress and pending else None
    for shard in pending:
        for start in range(shard * shard_size, min((shard + 1) * shard_size, num_samples), batch_size):
            stop = min(start + batch_size, (shard + 1) * shard_size, num_samples)
            outputs, batch_labels = features_of(range(start, stop))
            for level, output in zip(levels, outputs):
                level[start:stop] = output
            labels[start:stop] = batch_labels
            if bar is not None:
                bar.update(stop - start)
        for array in (*levels, labels):
            array.flush()
        done.add(shard)
        _write_progress(cache, done)
    if bar is not None:
        bar.file.write('\n')
    return FeatureCache(cache_dir)
