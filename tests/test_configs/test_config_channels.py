"""Every config's literal neck/head ``in_channels`` against its diffusion backbone's real outputs from a forward pass
of the full-size U-Net on the meta device: every layer and shape of the real model, no weight or pixel values
(nothing loaded, nothing computed); and the channels the config declares (``declared_out_channels``, which builds
no module) against the same outputs."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmdiff.models.backbones import (DiffusionTransformerBackbone, DiffusionUNetBackbone, DifFeedBackbone,
                                     declared_out_channels)
from mmdiff.registry import MODELS

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p for p in (ROOT / 'configs').rglob('*.py') if '_base_' not in p.parts)
BACKBONES = {'mmdiff.DiffusionUNetBackbone': DiffusionUNetBackbone, 'mmdiff.DifFeedBackbone': DifFeedBackbone,
             'mmdiff.DiffusionTransformerBackbone': DiffusionTransformerBackbone}


def offline_backbone(cfg: dict) -> torch.nn.Module:
    """The config's backbone, float32, on the current default device: no folder, checkpoint or context file is read
    (a context file is replaced by as many zero tokens, which changes no channel)."""
    kwargs = {key: value for key, value in cfg.items() if key != 'type'}
    context = kwargs.get('context')
    if context is not None:
        kwargs['context'] = dict(type='zero', num_tokens=context.get('num_tokens'))
    kwargs.update(model_dir=None, init_cfg=None, dtype='float32', torch_compile=False, with_cp=False, frozen=True)
    return BACKBONES[cfg['type']](**kwargs).eval()


def declared_consumers(model: dict, num_outputs: int) -> dict:
    """What the neck or heads declare, per output index: ``{consumer: [channels of output 0, 1, ...]}`` or, for a
    head that reads one output, ``{consumer: {index: channels}}``."""
    declared = {}
    if model.get('neck') is not None:
        declared['neck'] = dict(enumerate(model['neck']['in_channels']))
    elif model.get('decode_head') is not None:
        declared['decode_head'] = dict(enumerate(model['decode_head']['in_channels']))
    if model.get('auxiliary_head') is not None:
        head = model['auxiliary_head']
        declared['auxiliary_head'] = {head['in_index'] % num_outputs: head['in_channels']}
    if model.get('head') is not None:
        head = model['head']
        channels = head['in_channels']
        declared['head'] = (dict(enumerate(channels)) if isinstance(channels, (list, tuple)) else
                            {head.get('in_index', -1) % num_outputs: channels})
    return declared


def no_module_built(*args, **kwargs) -> None:
    raise AssertionError('declared_out_channels built a module')


@pytest.mark.parametrize('config', CONFIGS, ids=lambda path: str(path.relative_to(ROOT / 'configs')))
def test_declared_in_channels_are_the_backbones_real_output_channels(config, monkeypatch):
    model = Config.fromfile(str(config)).model
    backbone_cfg = model.get('backbone')
    if not isinstance(backbone_cfg, dict) or backbone_cfg.get('type') not in BACKBONES:
        pytest.skip(f'no diffusion backbone feeds a declared neck or head here ({model.get("type")})')
    MODELS.import_from_location()  # the registry's one-time import of its modules (mmpretrain's among them) first
    with monkeypatch.context() as patch:  # no torch module may be made while the channels are declared
        patch.setattr(torch.nn.Module, '__init__', no_module_built)
        declared_channels = declared_out_channels(backbone_cfg.to_dict())
    with torch.device('meta'), torch.no_grad():
        backbone = offline_backbone(backbone_cfg)
        size = max(64, backbone.downsample_factor)
        outputs = backbone(torch.zeros(1, backbone.in_channels, size, size))
    # channels are dim 1 of a map, dim 2 of a timestep-stacked (N, T, C, h, w) output
    real = [out.shape[2] if out.dim() == 5 else out.shape[1] for out in outputs]
    assert list(backbone.out_channels) == real == declared_channels
    declared = declared_consumers(model, len(real))
    assert declared, f'{config.name} has a diffusion backbone but nothing declares its channels'
    for consumer, channels in declared.items():
        assert {index: real[index] for index in channels} == channels, consumer
        if consumer in ('neck', 'decode_head') or isinstance(model.get(consumer, {}).get('in_channels'), list):
            assert len(channels) == len(real), f'{consumer} reads {len(channels)} of {len(real)} outputs'
