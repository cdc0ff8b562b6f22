"""``init_cfg=dict(type='Pretrained')`` for mmdiff's own modules, through mmdiff's safe loader.

mmengine's ``PretrainedInit`` reads the checkpoint with the process's ``CheckpointLoader``, which unpickles without
``weights_only`` and downloads remote paths unless the process opted into mmdiff's loader
(:func:`~mmdiff.utils.safe_checkpoint.enable_safe_loading`). mmdiff's backbones and heads load their ``Pretrained``
checkpoints here instead, whatever the process chose: a local file, ``weights_only=True``, and every weight of the
module there with its shape.
"""
from typing import Optional, Tuple

from mmengine.logging import print_log
from torch import nn

from .checkpoint_weights import check_weights_fit, checkpoint_weights
from .safe_checkpoint import load_checkpoint_file


def is_pretrained(init_cfg: Optional[dict]) -> bool:
    """Whether an ``init_cfg`` asks for a checkpoint (``type='Pretrained'``)."""
    return isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained'


def load_pretrained(module: nn.Module, init_cfg: dict, target: str, may_miss: Tuple[str, ...] = ()) -> None:
    """Load ``init_cfg['checkpoint']`` into ``module`` strictly, with mmdiff's safe loader.

    Args:
        module (nn.Module): What to load into.
        init_cfg (dict): ``dict(type='Pretrained', checkpoint=PATH, prefix=None, weights='ema')``: ``prefix``
            keeps the checkpoint's keys that start with it, without it (``'head.'`` for a head in a classifier's
            checkpoint); ``weights`` chooses an EMA run's averaged (``'ema'``) or raw weights.
        target (str): What the module is, for the messages (``'this backbone'``).
        may_miss (tuple[str]): Key prefixes of new layers the checkpoint need not hold; they keep their fresh
            initialisation.

    Raises:
        ValueError: When a weight of the module is missing or mis-shaped, or the file holds no state dict.
    """
    checkpoint = load_checkpoint_file(init_cfg['checkpoint'])
    weights = init_cfg.get('weights', 'ema')
    state = checkpoint_weights(checkpoint, weights, repr(init_cfg['checkpoint']))
    prefix = init_cfg.get('prefix')
    if prefix:
        state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    own = module.state_dict()
    check_weights_fit(own, state, init_cfg['checkpoint'], target, may_miss)
    module.load_state_dict(state, strict=False)
    fresh = sorted(own.keys() - state.keys())
    kind = f'{weights} ' if 'ema_state_dict' in checkpoint else ''
    print_log(f'loaded {len(state)} {kind}weights into {target} from {init_cfg["checkpoint"]}'
              + (f'; kept the fresh initialisation of {fresh}' if fresh else ''), logger='current')


class SafePretrainedInit:
    """Mixin for an mmengine ``BaseModule``: a ``Pretrained`` ``init_cfg`` loads with :func:`load_pretrained`;
    any other ``init_cfg`` initialises as ``BaseModule.init_weights`` does. Put it before the module's base class.
    """
    new_layer_prefixes: Tuple[str, ...] = ()  # layers a checkpoint need not hold: they start fresh

    def init_weights(self) -> None:
        if not is_pretrained(self.init_cfg):
            super().init_weights()
            return
        load_pretrained(self, self.init_cfg, f'this {type(self).__name__}', self.new_layer_prefixes)
        self._is_init = True
