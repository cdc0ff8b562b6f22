"""A shipped config made small enough to train for two iterations on a CPU, as a downstream config file.

:func:`tiny_variant_text` writes what a user would: a config whose ``_base_`` is the shipped one and whose keys
override only size, never structure. Each full-size diffusion U-Net becomes its tiny twin with random weights (the
same taps, timesteps, fusion and heads; the necks' and heads' ``in_channels`` follow the twin's declared
channels, and the segmentation heads' and detectors' inner width is 16), no checkpoint is loaded, the schedule
stops after two iterations (one epoch), a pre-training's sample grid holds two images of two steps, mixed
precision becomes fp32 (a CPU has no AMP in mmengine), and the dataloaders take batches of two with one worker.
The datasets come from the ``MMDIFF_*_ROOT`` variables (tests/test_utils/tiny_datasets.py), so no data path is
overridden.
"""
from pathlib import Path
from typing import Dict, List, Optional

from mmengine.config import Config

from mmdiff.models.backbones import declared_out_channels
from mmdiff.models.backbones.unet.presets import UNET_PRESETS, sd_unet_config

DIFFUSION_BACKBONES = ('mmdiff.DiffusionUNetBackbone', 'mmdiff.DifFeedBackbone',
                       'mmdiff.DiffusionTransformerBackbone')
# a full-size transformer preset -> its family's tiny layout and VAE
TINY_TRANSFORMERS = {'dit-xl-2-256': ('dit-tiny', 'sd-tiny'), 'pixart-sigma-xl-2-1024': ('pixart-tiny', 'sd-tiny'),
                     'sd35-medium': ('sd3-tiny', 'sd3-tiny'), 'flux-dev': ('flux-tiny', 'flux-tiny')}
SMALL_ARCHS = ('adm-tiny', 'adm-digits', 'adm-cifar32', 'sd-tiny')  # already cheap on a CPU: kept
# Stable Diffusion 1.x's layout (two layers per level, so its ldm block names exist) at a few channels
TINY_SD15 = sd_unet_config(block_out_channels=(16, 32, 64, 64), layers_per_block=2, cross_attention_dim=32,
                           attention_head_dim=2, norm_num_groups=8, sample_size=16)
ITERATIONS = 2
HEAD_WIDTH = 16  # the inner width of a twin's segmentation heads (``channels``) and detector (FPN, RPN, RoI heads)
UNSLICEABLE_DATASETS = ('mmdiff.CachedFeatureDataset', )  # not an mmengine BaseDataset: no ``indices``
SUBSET_DATASETS = ('mmdiff.PerClassSubset', )  # a subset of per-class size: takes ``labels_per_class`` instead


def tiny_backbone(backbone: dict) -> Optional[dict]:
    """What to override in a diffusion backbone (or teacher) config for its tiny twin; None for a small one."""
    arch = backbone.get('arch')
    overrides = dict(init_cfg=None, with_cp=False)
    if isinstance(arch, str) and arch in SMALL_ARCHS and backbone.get('model_dir') is None:
        return overrides if backbone.get('init_cfg') is not None else None
    if backbone.get('type') == 'mmdiff.DiffusionTransformerBackbone':
        tiny_arch, tiny_vae = TINY_TRANSFORMERS[arch]
        overrides.update(arch=tiny_arch, vae=tiny_vae, model_dir=None)
        context = backbone.get('context')
        if context is not None and context.get('path') is not None:  # a file of full-width tokens: learnt instead
            overrides['context'] = dict(_delete_=True, type='learnable', num_tokens=context['num_tokens'])
    elif backbone.get('vae') is not None or backbone.get('context') is not None:  # a latent U-Net
        # SDXL's twin keeps its added conditioning and block names; the others take SD 1.x's layout
        tiny_arch = 'sdxl-tiny' if arch == 'sdxl-base' else dict(_delete_=True, **TINY_SD15)
        overrides.update(arch=tiny_arch, vae='sd-tiny', model_dir=None)
        context = backbone.get('context')
        if context is not None and context.get('path') is not None:  # a file of full-width tokens: learnt instead
            overrides['context'] = dict(
                _delete_=True, type='learnable', num_tokens=context['num_tokens'],
                adapter=context.get('adapter', False))
    else:
        classes = UNET_PRESETS[arch].get('num_class_embeds') if isinstance(arch, str) else None
        # a class-conditional U-Net's twin is class-conditional too, so its class_label and labels still apply
        tiny_arch = dict(UNET_PRESETS['adm-tiny'], _delete_=True, num_class_embeds=classes) if classes else 'adm-tiny'
        overrides.update(arch=tiny_arch, model_dir=None)
    return overrides


def consumer_channels(model: dict, channels: List[int]) -> Dict[str, dict]:
    """The ``in_channels`` of the neck and heads that read a diffusion backbone with these output channels."""
    overrides: Dict[str, dict] = {}
    if model.get('neck') is not None and 'in_channels' in model['neck']:
        overrides['neck'] = dict(in_channels=channels)
    elif model.get('decode_head') is not None:
        overrides['decode_head'] = dict(in_channels=channels)
    if model.get('auxiliary_head') is not None:
        overrides['auxiliary_head'] = dict(in_channels=channels[model['auxiliary_head']['in_index']])
    head = model.get('head')
    if head is not None and 'in_channels' in head:
        reads_all = isinstance(head['in_channels'], (list, tuple))  # a fusion head reads every output
        overrides['head'] = dict(in_channels=tuple(channels) if reads_all else channels[head.get('in_index', -1)])
    return overrides


def pretrained_elsewhere(model: dict, skip: tuple) -> Dict[str, dict]:
    """``init_cfg=None`` for every other top-level model part that loads a checkpoint (a student, a ResNet)."""
    return {key: dict(init_cfg=None) for key, value in model.items()
            if key not in skip and isinstance(value, dict) and (value.get('init_cfg') or {}).get('type') ==
            'Pretrained'}


def as_merged(config: dict) -> dict:
    """A config dict as mmengine leaves it after merging: without the ``_delete_`` markers."""
    return {key: as_merged(value) if isinstance(value, dict) else value for key, value in config.items()
            if key != '_delete_'}


def model_overrides(model: dict) -> dict:
    overrides: dict = {}
    for key in ('backbone', 'teacher'):
        part = model.get(key)
        if not isinstance(part, dict) or part.get('type') not in DIFFUSION_BACKBONES:
            continue
        twin = tiny_backbone(part)
        if twin is None:
            continue
        overrides[key] = twin
        if key == 'backbone':
            overrides.update(consumer_channels(model, declared_out_channels(as_merged(dict(part, **twin)))))
    overrides.update(pretrained_elsewhere(model, skip=tuple(overrides)))
    for key in ('decode_head', 'auxiliary_head'):  # a size: their convolutions at 1/4 of a 512 crop cost most of a run
        if isinstance(model.get(key), dict) and 'channels' in model[key]:
            overrides[key] = dict(overrides.get(key, {}), channels=HEAD_WIDTH)
    if isinstance(model.get('rpn_head'), dict) and isinstance(model.get('roi_head'), dict):
        overrides.update(detector_width(model, overrides, HEAD_WIDTH))
    return overrides


def detector_width(model: dict, overrides: dict, width: int) -> dict:
    """A two-stage detector's FPN, RPN and RoI heads at ``width`` channels (the box head's fully connected layers
    at 4 x ``width``): a size, as their 256-channel convolutions at 1/4 of a 1333x800 image cost most of a run."""
    roi_head = dict(bbox_roi_extractor=dict(out_channels=width),
                    bbox_head=dict(in_channels=width, fc_out_channels=4 * width))
    if model['roi_head'].get('mask_head') is not None:
        roi_head.update(mask_roi_extractor=dict(out_channels=width),
                        mask_head=dict(in_channels=width, conv_out_channels=width))
    return dict(neck=dict(overrides.get('neck', {}), out_channels=width),
                rpn_head=dict(in_channels=width, feat_channels=width), roi_head=roi_head)


def schedule_overrides(cfg: Config) -> dict:
    """Two iterations (or one epoch of the tiny data), validation at the end, a log line per iteration, and
    fp32 where a config trains with mixed precision (``AmpOptimWrapper`` refuses a CPU)."""
    by_iterations = cfg.train_cfg.get('type') == 'IterBasedTrainLoop' or 'max_iters' in cfg.train_cfg
    has_val = cfg.get('val_dataloader') is not None
    train_cfg = dict(max_iters=ITERATIONS) if by_iterations else dict(max_epochs=1)
    if has_val:
        train_cfg['val_interval'] = ITERATIONS if by_iterations else 1
    overrides = dict(train_cfg=train_cfg, default_hooks=dict(logger=dict(interval=1)))
    hooks = cfg.get('custom_hooks') or []
    if any(hook.get('type') == 'mmdiff.DiffusionSamplesHook' for hook in hooks):  # a grid of two, two steps each
        overrides['custom_hooks'] = [dict(hook, num_images=2, num_inference_steps=2)
                                     if hook.get('type') == 'mmdiff.DiffusionSamplesHook' else dict(hook)
                                     for hook in hooks]
    if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':  # mmengine's AMP needs an accelerator: plain fp32
        plain = {key: value for key, value in cfg.optim_wrapper.items() if key not in ('type', 'loss_scale', 'dtype')}
        overrides['optim_wrapper'] = dict(_delete_=True, type='OptimWrapper', **plain)
    return overrides


def loader_overrides(cfg: Config) -> dict:
    """Batches of two (one to evaluate) from one worker; the first four (two) samples of a dataset that holds more
    (the digits, in memory); one sample per class of a class-balanced subset."""
    overrides = {}
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(name) is None:
            continue
        train = name == 'train_dataloader'
        overrides[name] = dict(batch_size=2 if train else 1, num_workers=1, persistent_workers=True)
        dataset_type = cfg[name].dataset.get('type')
        if dataset_type in SUBSET_DATASETS:  # a class-balanced subset of the tiny dataset's only sample per class
            overrides[name]['dataset'] = dict(labels_per_class=1)
        elif dataset_type not in UNSLICEABLE_DATASETS:
            overrides[name]['dataset'] = dict(indices=4 if train else 2)
    return overrides


def merge_into(target: dict, overrides: dict) -> None:
    """Merge nested dicts of overrides into ``target`` in place, as mmengine merges a config onto its base."""
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_into(target[key], value)
        else:
            target[key] = value


def tiny_variant_text(config: Path, cfg: Config, extra: Optional[dict] = None) -> str:
    """The text of a config file that inherits ``config`` (read as ``cfg``) and overrides only its sizes (see the
    module), and whatever ``extra`` (nested dicts of config keys) adds."""
    keys = dict(model=model_overrides(cfg.model), **schedule_overrides(cfg), **loader_overrides(cfg))
    merge_into(keys, extra or {})
    lines = [f'_base_ = [{str(config)!r}]']
    lines += [f'{key} = {value!r}' for key, value in keys.items() if value]
    return '\n'.join(lines) + '\n'
