"""Write a feature cache shard by shard, from one process or split across the processes of a distributed job.

Every process takes its own shards of the one cache (shard ``s`` to rank ``s mod world size``), writes their rows
into the shared memory-mapped arrays and marks each shard done once its rows are flushed. A restarted extraction
(with any number of processes) redoes the shards a killed process left unmarked and never the finished ones; the
batches of a shard are the same whatever the number of processes, so the cache is too. Once every shard is done,
rank 0 finalises the cache (``progress.json`` lists them all).
"""
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import barrier, get_dist_info
from torch import Tensor

from mmdiff.utils.choices import check_choice
from mmdiff.utils.output_paths import check_output_free
from mmdiff.utils.throughput import ThroughputBar
from .cache_format import (FORMAT_VERSION, MANIFEST, PROGRESS, SHARDS_DONE, FeatureCache, check_sources,
                            finished_shards, manifest_differences, open_cached_array, to_json, write_sources)

STORAGE_DTYPES = {'float32': torch.float32, 'float16': torch.float16}

# a batch function maps sample indices to (backbone outputs, labels)
BatchFunction = Callable[[Sequence[int]], Tuple[Sequence[Tensor], Tensor]]
# a feature stream maps batches of sample indices to their (backbone outputs, labels), one pair per batch, in order
FeatureStream = Callable[[Sequence[Sequence[int]]], Iterable[Tuple[Sequence[Tensor], Tensor]]]


def batch_by_batch(batch_features: BatchFunction) -> FeatureStream:
    """A feature stream that calls ``batch_features`` on each batch in turn, in the calling process."""

    def stream(batches: Sequence[Sequence[int]]) -> Iterable[Tuple[Sequence[Tensor], Tensor]]:
        return (batch_features(list(batch)) for batch in batches)

    return stream


def shard_batches(shard: int, shard_size: int, batch_size: int, num_samples: int) -> List[List[int]]:
    """The sample indices of each batch of one shard: batches never straddle shards."""
    stop = min((shard + 1) * shard_size, num_samples)
    return [list(range(start, min(start + batch_size, stop))) for start in range(shard * shard_size, stop, batch_size)]


def rank_shards(num_shards: int, done: Iterable[int], rank: int, world_size: int) -> List[int]:
    """The unfinished shards process ``rank`` of ``world_size`` writes: those with ``shard % world_size == rank``."""
    done = set(done)
    return [shard for shard in range(rank, num_shards, world_size) if shard not in done]


class CacheArrays:
    """The writable arrays of a cache folder, and how their shards are marked done.

    Args:
        cache_dir (Path): The cache folder (its manifest written).
        pool_size (int, optional): Adaptive-average-pool each output to ``pool_size`` x ``pool_size``.
        dtype (str): Storage dtype, ``'float32'`` or ``'float16'``.
    """

    def __init__(self, cache_dir: Path, pool_size: Optional[int], dtype: str) -> None:
        self.cache_dir = cache_dir
        manifest = json.loads((cache_dir / MANIFEST).read_text())
        self.levels = [open_cached_array(cache_dir / f'level{i}.npy', 'r+') for i in range(len(manifest['levels']))]
        self.labels = open_cached_array(cache_dir / 'labels.npy', 'r+')
        self.pool_size = pool_size
        self.dtype = STORAGE_DTYPES[dtype]

    def write(self, indices: Sequence[int], outputs: Sequence[Tensor], labels: Tensor) -> None:
        """Store one batch: ``outputs`` are the backbone's ``(N, ...)`` maps of the samples ``indices``."""
        start, stop = indices[0], indices[-1] + 1
        for level, output in zip(self.levels, storable(outputs, self.pool_size, self.dtype)):
            level[start:stop] = output
        self.labels[start:stop] = labels.cpu().numpy()

    def mark_done(self, shard: int) -> None:
        """Flush the arrays to disk, then mark ``shard`` as written."""
        for array in (*self.levels, self.labels):
            array.flush()
        (self.cache_dir / SHARDS_DONE).mkdir(exist_ok=True)
        (self.cache_dir / SHARDS_DONE / str(shard)).touch()


def storable(outputs: Sequence[Tensor], pool_size: Optional[int], dtype: torch.dtype) -> List[np.ndarray]:
    """Pool (on the outputs' device) and cast the backbone outputs, then bring them to host memory."""
    if pool_size is not None:
        outputs = [F.adaptive_avg_pool2d(output.flatten(0, -4), pool_size).unflatten(0, output.shape[:-3])
                   for output in outputs]
    return [output.to(dtype).cpu().numpy() for output in outputs]


def create_cache(features: FeatureStream, cache_dir: Path, manifest: Dict, pool_size: Optional[int], dtype: str,
                 sources: Optional[Sequence[str]], hash_sources: bool) -> None:
    """Lay out an empty cache: arrays sized from the first sample's features, the source listing, the manifest."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        probe, _ = next(iter(features([[0]])))
    shapes = [level.shape[1:] for level in storable(probe, pool_size, STORAGE_DTYPES[dtype])]
    manifest = dict(manifest, levels=[dict(shape=list(shape), dtype=dtype) for shape in shapes])
    for i, shape in enumerate(shapes):
        np.lib.format.open_memmap(cache_dir / f'level{i}.npy', mode='w+', dtype=dtype,
                                  shape=(manifest['num_samples'], *shape)).flush()
    np.lib.format.open_memmap(cache_dir / 'labels.npy', mode='w+', dtype=np.int64,
                              shape=(manifest['num_samples'], )).flush()
    if sources is not None:
        write_sources(cache_dir, sources, hash_sources)
    (cache_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))  # last: a folder with a manifest is whole


def finalise(cache_dir: Path, num_shards: int) -> None:
    """Record every shard as finished in ``progress.json`` and drop the per-shard marks."""
    done = finished_shards(cache_dir)
    missing = sorted(set(range(num_shards)) - done)
    if missing:
        raise RuntimeError(f'shards {missing[:10]} of {str(cache_dir)!r} were not written although every process '
                           f'finished; run the extraction again to write them')
    temporary = cache_dir / (PROGRESS + '.tmp')
    temporary.write_text(json.dumps(dict(done=sorted(done))))
    os.replace(temporary, cache_dir / PROGRESS)
    shutil.rmtree(cache_dir / SHARDS_DONE, ignore_errors=True)


def extract_to_cache(features: FeatureStream,
                     num_samples: int,
                     cache_dir: str,
                     manifest: Dict,
                     shard_size: int = 256,
                     batch_size: int = 32,
                     pool_size: Optional[int] = None,
                     dtype: str = 'float32',
                     show_progress: bool = True,
                     overwrite: bool = False,
                     sources: Optional[Sequence[str]] = None,
                     hash_sources: bool = False) -> FeatureCache:
    """Write (or finish writing) the features of ``num_samples`` samples into ``cache_dir``.

    In a distributed job (mmengine's process group) every process calls this with the same arguments and writes
    its own shards; the call returns once the cache is finalised.

    Args:
        features (callable): A feature stream (:data:`FeatureStream`): given batches of sample indices, yields
            each batch's (backbone outputs, labels) in order; run under ``torch.no_grad``. Wrap a function of one
            batch with :func:`batch_by_batch`.
        num_samples (int): Dataset size.
        cache_dir (str): Output folder. If it holds a cache with the same manifest, finished shards are kept
            and extraction resumes; a different manifest is an error.
        manifest (dict): What identifies the features (see :func:`backbone_manifest`) plus the dataset config.
        shard_size (int): Samples per resumable unit (and per process share). Defaults to 256.
        batch_size (int): Samples per backbone call. Defaults to 32.
        pool_size (int, optional): Adaptive-average-pool each output to ``pool_size`` x ``pool_size`` before
            writing (for sweeps over many taps). Defaults to None (full maps).
        dtype (str): Storage dtype, ``'float32'`` or ``'float16'``. Defaults to ``'float32'``.
        show_progress (bool): Rank 0 draws a progress bar with its images/s. Defaults to True.
        overwrite (bool): Write a new cache into a folder that holds other files (refused otherwise, so nothing
            there is replaced). Defaults to False.
        sources (Sequence[str], optional): The file each sample is read from, in sample order: their sizes and
            modification times are recorded, and a changed file makes the cache stale (refused when opened or
            resumed). Defaults to None (generated data: nothing to record).
        hash_sources (bool): Also record each source file's SHA-256, checked whenever the cache is opened (see
            :func:`~mmdiff.feature_cache.cache_format.write_sources`). Defaults to False.

    Returns:
        FeatureCache: The finished cache.
    """
    check_choice('dtype', dtype, tuple(STORAGE_DTYPES))
    if num_samples < 1 or shard_size < 1 or batch_size < 1:
        raise ValueError(f'num_samples, shard_size and batch_size must be >= 1, got {num_samples}, {shard_size}, '
                         f'{batch_size}')
    cache = Path(cache_dir)
    rank, world_size = get_dist_info()
    manifest = dict(to_json(manifest), format_version=FORMAT_VERSION, num_samples=num_samples,
                    shard_size=shard_size, num_shards=-(-num_samples // shard_size), dtype=dtype)
    exists = (cache / MANIFEST).is_file()
    if exists:  # every process checks (they see the same folder), so all refuse alike
        found = json.loads((cache / MANIFEST).read_text())
        differences = manifest_differences({key: value for key, value in found.items() if key != 'levels'}, manifest)
        if differences:
            raise ValueError(f'{cache_dir!r} holds a feature cache of other features; (cache, asked) differ in '
                             f'{differences}; delete the folder or write to another one')
        check_sources(cache)
    else:
        check_output_free(cache_dir, overwrite)  # not a cache of ours: its files would be replaced
    barrier()  # all have looked before rank 0 creates anything
    if rank == 0 and not exists:
        create_cache(features, cache, manifest, pool_size, dtype, sources, hash_sources)
    barrier()
    arrays = CacheArrays(cache, pool_size, dtype)
    shards = rank_shards(manifest['num_shards'], finished_shards(cache), rank, world_size)
    batches = [(shard, batch) for shard in shards
               for batch in shard_batches(shard, shard_size, batch_size, num_samples)]
    bar = ThroughputBar(sum(len(batch) for _, batch in batches), unit='images',
                        label=f'rank 0 of {world_size}' if world_size > 1 else '') \
        if show_progress and rank == 0 and batches else None
    with torch.no_grad():
        for position, ((shard, batch), (outputs, labels)) in enumerate(zip(batches,
                                                                           features([b for _, b in batches]))):
            arrays.write(batch, outputs, labels)
            if position + 1 == len(batches) or batches[position + 1][0] != shard:
                arrays.mark_done(shard)
            if bar is not None:
                bar.update(len(batch))
    if bar is not None:
        bar.close()
    barrier()  # every process has written its shards
    if rank == 0 and (cache / SHARDS_DONE).is_dir():
        finalise(cache, manifest['num_shards'])
    barrier()
    return FeatureCache(cache_dir)
