"""The feature cache: a frozen backbone's features written once and read by later runs.

- :mod:`~mmdiff.feature_cache.cache_format`: the on-disk format (shards, manifest, progress) and what keys a cache.
- :mod:`~mmdiff.feature_cache.writer`: writes a split's shards, resumably and split across processes.
- :mod:`~mmdiff.feature_cache.extraction`: runs a config's backbone over its dataset into the writer
  (``tools/feature_tools/extract_features.py``).
- :mod:`~mmdiff.feature_cache.dataset`: ``mmdiff.CachedFeatureDataset``, an mmpretrain dataset over a cache.
- :mod:`~mmdiff.feature_cache.backbone`: ``mmdiff.CachedFeatureBackbone``, which passes cached features on to a
  head.
"""
