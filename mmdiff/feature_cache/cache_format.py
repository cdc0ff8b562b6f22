"""An on-disk cache of backbone features: memory-mapped arrays, a manifest, resumable shard by shard.

Layout of a cache folder::

    manifest.json      what the features are: backbone config, weights hash, timesteps, taps, noise seed,
                       dataset config, the pipeline used, sample count and per-level shape and dtype
    level<i>.npy       (num_samples, *shape) features of backbone output i (numpy .npy, opened as memmap)
    labels.npy         (num_samples,) int64 ground-truth labels
    sources.tsv        size, modification time, content hash (optional) and path of each sample's source file
                       (absent for generated data)
    shards_done/<s>    an empty file per shard written so far, while the extraction runs
    progress.json      the finished shards: all of them once the extraction is complete

Extraction (:func:`mmdiff.feature_cache.writer.extract_to_cache`) goes shard by shard; after each shard the
arrays are flushed and the shard is marked done, so an interrupted run resumes with the unfinished shards. When
every shard is done the cache is finalised (``progress.json`` lists them all) and only then can it be read.
Memory use does not grow with the dataset. A folder whose manifest differs from the one asked for is refused,
never reused.
"""
import hashlib
import json
import os
from pathlib import Path
from typing import Dict, Optional, Sequence, Set

import numpy as np

from mmdiff.utils.config_scope import named_paths

MANIFEST = 'manifest.json'
PROGRESS = 'progress.json'
SHARDS_DONE = 'shards_done'
SOURCES = 'sources.tsv'  # size, modification time (ns), SHA-256 or '-' and path of each source file, in sample order
# the keys of a backbone config that name the files its weights come from
WEIGHT_KEYS = ('checkpoint', 'model_dir', 'path')
FORMAT_VERSION = 2  # 2: keyed by weights_sha256 (every weight file) instead of the init_cfg checkpoint alone


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


def weights_sha256(backbone_cfg: dict) -> Optional[str]:
    """SHA-256 over every file that gives a backbone config its weights: the ``init_cfg`` checkpoint, each file of
    a ``model_dir`` folder (weights and model configs) and a context file, in the order the config names them and
    by relative path within a folder; None when the config reads no local file (random weights, seeded).

    A changed weight file changes the features, so a cache keyed by it is stale; sizes and modification times
    would miss a same-size edit. Hashing reads each file once per extraction (about 1 s per GB here).
    """
    digest = hashlib.sha256()
    files = []
    for path in named_paths(backbone_cfg, WEIGHT_KEYS):
        if os.path.isdir(path):
            files += sorted(str(file) for file in Path(path).rglob('*') if file.is_file())
        elif os.path.isfile(path):
            files.append(path)
    for file in files:
        digest.update(file_sha256(file).encode())
    return digest.hexdigest() if files else None


def backbone_manifest(backbone_cfg: dict, feature_info: Sequence, pool_size: Optional[int]) -> Dict:
    """The part of a manifest that identifies the features: the backbone config and its weights' hash.

    Args:
        backbone_cfg (dict): The backbone's config dict.
        feature_info (Sequence[FeatureLevel]): The built backbone's declared outputs.
        pool_size (int, optional): Side of the adaptive average pooling applied before caching, if any.
    """
    return dict(
        backbone=to_json(backbone_cfg),
        weights_sha256=weights_sha256(backbone_cfg),
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
                                    f'tools/feature_tools/extract_features.py')
        self.manifest = json.loads(manifest_path.read_text())
        check_sources(self.cache_dir)
        done = finished_shards(self.cache_dir)
        missing = sorted(set(range(self.manifest['num_shards'])) - done)
        if missing:
            raise ValueError(f'the feature cache {cache_dir!r} is incomplete ({len(missing)} of '
                             f'{self.manifest["num_shards"]} shards missing); run '
                             f'tools/feature_tools/extract_features.py again with the same arguments to finish it')
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


def write_sources(cache_dir: Path, paths: Sequence[str], hash_contents: bool = False) -> None:
    """Record each source file's size and modification time (and, with ``hash_contents``, its SHA-256), so that
    a changed file makes the cache stale. Hashing reads every file once more, when the cache is written and each
    time it is opened: it catches a same-size edit whose modification time was restored, at the cost
    ``tools/analysis_tools/benchmark.py extract`` reports."""
    lines = []
    for path in paths:
        path = os.path.abspath(path)
        stat = os.stat(path)
        digest = file_sha256(path) if hash_contents else '-'
        lines.append(f'{stat.st_size}\t{stat.st_mtime_ns}\t{digest}\t{path}')
    (cache_dir / SOURCES).write_text('\n'.join(lines) + '\n')


def check_sources(cache_dir: Path) -> None:
    """Raise a ``ValueError`` naming the first source file that is gone or has changed (size, modification time,
    or content where it was hashed) since the cache was written; a cache without a source listing (generated data)
    has nothing to check."""
    listing = cache_dir / SOURCES
    if not listing.is_file():
        return
    for line in listing.read_text().splitlines():
        size, mtime, digest, path = line.split('\t', 3)
        stat = os.stat(path) if os.path.isfile(path) else None
        now = None if stat is None else (stat.st_size, stat.st_mtime_ns)
        if now != (int(size), int(mtime)):
            state = 'no longer exists' if now is None else f'has changed since ({now[0]} bytes, modified {now[1]} ns)'
            raise ValueError(f'the feature cache {str(cache_dir)!r} is stale: it was made from {path!r} ({size} '
                             f'bytes, modified {mtime} ns), which {state}; extract again into a new folder')
        if digest != '-' and file_sha256(path) != digest:
            raise ValueError(f'the feature cache {str(cache_dir)!r} is stale: {path!r} has the size and '
                             f'modification time it was made from, but other content; extract again into a new '
                             f'folder')


def finished_shards(cache_dir: Path) -> Set[int]:
    """The shards of a cache written so far: those ``progress.json`` lists and those marked in ``shards_done/``."""
    progress = cache_dir / PROGRESS
    done = set(json.loads(progress.read_text())['done']) if progress.is_file() else set()
    markers = cache_dir / SHARDS_DONE
    return done | ({int(marker.name) for marker in markers.iterdir()} if markers.is_dir() else set())
