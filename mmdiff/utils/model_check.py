"""Check a config's model arguments against the classes they build, before anything is built."""
import difflib
import inspect
import warnings
from typing import Iterator, Optional, Set, Tuple

from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS


def accepted_arguments(cls: type) -> Optional[Set[str]]:
    """The keyword arguments ``cls(...)`` accepts, or None when its signature cannot tell.

    A signature without ``**kwargs`` tells exactly. mmdiff's classes pass their ``**kwargs`` to the base class, so
    for them the base classes' arguments are followed up the MRO; another package's ``**kwargs`` may go anywhere.
    """
    names: Set[str] = set()
    for klass in cls.__mro__:
        if '__init__' not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {'self'}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            return names
        if not klass.__module__.startswith('mmdiff.'):
            return None
    return None


def constructor_defaults(cls: type) -> dict:
    """The keyword arguments of ``cls.__init__`` that have defaults, with those defaults.

    For a diffusers model or scheduler this completes a partial config: ``@register_to_config`` records exactly these
    values in ``self.config`` for the arguments not given, so ``dict(constructor_defaults(cls), **config)`` is the
    config the built object would report, without building it.
    """
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not p.empty}


def _model_entries(node, path: str, preprocessor: Tuple[str, Optional[dict]] = ('model', None)
                   ) -> Iterator[Tuple[str, dict, Tuple[str, Optional[dict]]]]:
    """Every ``dict(type=...)`` in a model config, with its dotted path and the nearest ``data_preprocessor`` above
    it, as ``(path of the dict that holds it, its config)`` (``preprocessor`` where none is)."""
    if isinstance(node, dict):
        if 'type' in node and isinstance(node['type'], str):
            yield path, node, preprocessor
        if 'data_preprocessor' in node:
            preprocessor = (path, node['data_preprocessor'])
        for key, value in node.items():
            yield from _model_entries(value, f'{path}.{key}', preprocessor)
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _model_entries(value, f'{path}.{index}', preprocessor)


def check_model_arguments(cfg: Config) -> None:
    """Raise on an argument the class does not take, naming the closest valid one and all of them.

    Checked are the model's backbone (whatever its package) and every mmdiff module in the model (heads, teachers,
    pretrainers), where a misspelt key would otherwise surface as a bare ``TypeError`` from deep inside the
    registry, or not at all. Call it in the config's scope (:func:`~mmdiff.apis.runner_config.enter_config_scope`).

    Raises:
        TypeError: e.g. ``model.backbone: DiffusionUNetBackbone takes no argument 'timestep'; did you mean
            'timesteps'?`` followed by the valid arguments.
    """
    model = cfg.get('model')
    if not isinstance(model, (dict, ConfigDict)):
        return
    with MODELS.switch_scope_and_registry(None) as registry:
        for path, entry, _ in _model_entries(model, 'model'):
            cls = registry.get(entry['type'])
            if not inspect.isclass(cls) or not (path == 'model.backbone' or cls.__module__.startswith('mmdiff.')):
                continue
            valid = accepted_arguments(cls)
            if valid is None:
                continue
            unknown = sorted(key for key in entry if key != 'type' and not key.startswith('_') and key not in valid)
            if unknown:
                close = difflib.get_close_matches(unknown[0], sorted(valid), n=1)
                hint = f'; did you mean {close[0]!r}?' if close else '.'
                raise TypeError(f'{path}: {cls.__name__} takes no argument {unknown[0]!r}{hint} '
                                f'Its arguments are: {", ".join(sorted(valid))}')


def _preprocessor_range(preprocessor: Optional[dict]) -> Optional[Tuple[Tuple[float, ...], Tuple[float, ...]]]:
    """What a data preprocessor maps pixels 0 and 255 to, per channel; None without ``mean`` and ``std``."""
    if not preprocessor or preprocessor.get('mean') is None or preprocessor.get('std') is None:
        return None
    mean, std = list(preprocessor['mean']), list(preprocessor['std'])
    return (tuple((0 - m) / s for m, s in zip(mean, std)), tuple((255 - m) / s for m, s in zip(mean, std)))


def check_pixel_normalisation(cfg: Config, tolerance: float = 0.02) -> None:
    """Warn when the model's data preprocessor does not map pixels [0, 255] to the range a backbone expects.

    A module class declaring ``pixel_range`` (mmdiff's diffusion backbones: (-1, 1), the range the U-Net was trained
    on) is checked against the nearest ``data_preprocessor`` above it in the model config (at the top, the model's
    own, else the config's top-level one, which mmengine's Runner passes on): pixel 0 and 255 must land
    within ``tolerance`` of the range's ends (mean = std = 127.5 exactly; 128 / 128 within 1 %). Features of images
    in another range are not an error, only far from what the U-Net learnt; the backbone also checks the first
    batch's values at run time. Call it in the config's scope.

    Args:
        cfg (Config): The config, its ``model`` checked.
        tolerance (float): How far pixel 0's and 255's normalised values may be from the range's ends.
    """
    model = cfg.get('model')
    if not isinstance(model, (dict, ConfigDict)):
        return
    with MODELS.switch_scope_and_registry(None) as registry:
        # mmengine's Runner gives a model without its own preprocessor the config's top-level one (mmpretrain)
        top_level = ('the config', cfg.get('data_preprocessor'))
        for path, entry, (owner_path, preprocessor) in _model_entries(model, 'model', top_level):
            expected = getattr(registry.get(entry['type']), 'pixel_range', None)
            if expected is None:
                continue
            mapped = _preprocessor_range(preprocessor)
            if mapped is None:
                warnings.warn(f'{path} expects pixels normalised to {list(expected)}, but {owner_path}\'s data '
                              f'preprocessor sets no mean and std: images reach it in [0, 255]. Set mean=std=127.5',
                              stacklevel=2)
            elif any(abs(value - expected[0]) > tolerance for value in mapped[0]) or any(
                    abs(value - expected[1]) > tolerance for value in mapped[1]):
                warnings.warn(
                    f'{path} expects pixels normalised to {list(expected)}, but {owner_path}\'s data preprocessor '
                    f'(mean={list(preprocessor["mean"])}, std={list(preprocessor["std"])}) maps pixels 0 and 255 to '
                    f'{[round(v, 2) for v in mapped[0]]} and {[round(v, 2) for v in mapped[1]]}. '
                    f'mean=std=127.5 maps them to -1 and 1', stacklevel=2)
