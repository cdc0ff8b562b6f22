"""Check a config's model arguments against the classes they build, before anything is built."""
import difflib
import inspect
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


def _model_entries(node, path: str) -> Iterator[Tuple[str, dict]]:
    """Every ``dict(type=...)`` in a model config, with its dotted path."""
    if isinstance(node, dict):
        if 'type' in node and isinstance(node['type'], str):
            yield path, node
        for key, value in node.items():
            yield from _model_entries(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            yield from _model_entries(value, f'{path}.{index}')


def check_model_arguments(cfg: Config) -> None:
    """Raise on an argument the class does not take, naming the closest valid one and all of them.

    Checked are the model's backbone (whatever its package) and every mmdiff module in the model (heads, teachers,
    pretrainers), where a misspelt key would otherwise surface as a bare ``TypeError`` from deep inside the
    registry, or not at all. Call it in the config's scope (:func:`~mmdiff.utils.runner_config.enter_config_scope`).

    Raises:
        TypeError: e.g. ``model.backbone: DiffusionUNetBackbone takes no argument 'timestep'; did you mean
            'timesteps'?`` followed by the valid arguments.
    """
    model = cfg.get('model')
    if not isinstance(model, (dict, ConfigDict)):
        return
    with MODELS.switch_scope_and_registry(None) as registry:
        for path, entry in _model_entries(model, 'model'):
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
