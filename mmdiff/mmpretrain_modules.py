"""mmdiff's modules built on mmpretrain: the classification heads and the digits and cached-feature datasets.

mmdiff's registries import this module when they are first searched (their ``locations``), so a config needs only
``custom_imports=dict(imports=['mmdiff'])``. Where mmpretrain is not installed it imports nothing, and the registries
hold the rest of mmdiff; ``import mmdiff`` itself never looks for mmpretrain.
"""
from importlib.util import find_spec

MMPRETRAIN_INSTALLED = find_spec('mmpretrain') is not None
if MMPRETRAIN_INSTALLED:
    from .datasets import digits  # noqa: F401  registers DigitsDataset
    from .feature_cache import dataset  # noqa: F401  registers CachedFeatureDataset
    from .models import heads  # noqa: F401  registers the heads
