"""mmdiff's registries, children of mmengine's root registries, and the only registries mmdiff's classes are in.

A config reaches them from any scope as ``type='mmdiff.DiffusionUNetBackbone'``: mmengine resolves the ``mmdiff.``
scope to these children of its root registries (importing :mod:`mmdiff.registry`, and the ``locations`` below, on
first use), whatever the config's ``default_scope`` (``mmdet``, ``mmseg``, ``mmpretrain``). Nothing is registered in
mmengine's root registries, so another plugin may register the same class names without a clash.

The ``locations`` below are imported when a registry is first searched (``import mmdiff`` itself imports none of
them), so ``custom_imports=dict(imports=['mmdiff'])`` is the one import every config needs: the heads and the
datasets built on mmpretrain come with :mod:`mmdiff.mmpretrain_modules` where mmpretrain is installed.
"""
from typing import Callable, Optional, TypeVar

from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

ModuleType = TypeVar('ModuleType', bound=type)

MODELS = Registry('model', parent=MMENGINE_MODELS, scope='mmdiff',
                  locations=['mmdiff.models', 'mmdiff.mmpretrain_modules'])
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, scope='mmdiff',
                    locations=['mmdiff.mmpretrain_modules', 'mmdiff.datasets.class_subset'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, scope='mmdiff', locations=['mmdiff.engine'])
TRANSFORMS = Registry('transform', parent=MMENGINE_TRANSFORMS, scope='mmdiff',
                      locations=['mmdiff.datasets.transforms'])


def register_module(registry: Registry,
                    name: Optional[str] = None) -> Callable[[ModuleType], ModuleType]:
    """Register a class in an mmdiff registry (only there: it is reached as ``'mmdiff.<name>'``).

    Args:
        registry (Registry): An mmdiff registry from this file, e.g. :data:`MODELS`.
        name (str, optional): Registered name. Defaults to the class name.

    Returns:
        Callable: A class decorator returning the class unchanged.

    Example::

        from mmdiff.registry import MODELS, register_module

        @register_module(MODELS)
        class MyNeck(torch.nn.Module):
            ...
    """
    if registry.scope != 'mmdiff':
        raise ValueError(f'registry {registry.name!r} is {registry.scope!r}\'s; pass an mmdiff registry such as '
                         f'mmdiff.registry.MODELS')

    def _register(cls: ModuleType) -> ModuleType:
        registry.register_module(name=name, module=cls)
        return cls

    return _register
