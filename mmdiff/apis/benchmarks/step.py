"""``tools/analysis_tools/benchmark.py step CONFIG``: one runner train step (data preprocessor, loss, backward,
optimizer) and one test step of a detector or segmentor config, on random images. Needs the config's codebase (mmdet or
mmseg)."""
import argparse
from pathlib import Path
from typing import Dict

import torch

from mmdiff.apis.benchmarks.timing import device_name, median_seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``step`` subcommand's options."""
    parser.add_argument('config')
    parser.add_argument('--backbone-arch', help='swap in this U-Net preset (random weights), e.g. adm-tiny on CPU')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)


def output_name(args: argparse.Namespace) -> str:
    """The JSON file's stem under ``work_dirs/benchmarks/``."""
    return f'step_{Path(args.config).stem}'


def _swap_backbone_arch(cfg, arch: str) -> None:
    """Give a config's backbone another U-Net preset (random weights) and its neck or heads the new channels."""
    from mmdiff.models.backbones import declared_out_channels
    cfg.model.backbone.arch = arch
    cfg.model.backbone.init_cfg = None
    for key in ('model_dir', 'vae', 'context'):
        cfg.model.backbone.pop(key, None)
    channels = declared_out_channels(cfg.model.backbone)
    if 'neck' in cfg.model:
        cfg.model.neck.in_channels = channels
    if 'decode_head' in cfg.model:
        cfg.model.decode_head.in_channels = channels
        if 'auxiliary_head' in cfg.model:
            cfg.model.auxiliary_head.in_channels = channels[cfg.model.auxiliary_head.in_index]


def _random_batch(cfg, batch_size: int, size: int) -> dict:
    """A packed batch as a dataloader gives it: uint8 images and ground truth for the config's task."""
    if cfg.default_scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        return demo_mm_inputs(batch_size=batch_size, image_shapes=[(3, size, size)] * batch_size,
                              num_items=[3] * batch_size, num_classes=cfg.model.roi_head.bbox_head.num_classes,
                              with_mask=True)
    if cfg.default_scope == 'mmseg':
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        samples = []
        for _ in range(batch_size):
            sample = SegDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size)))
            sample.gt_sem_seg = PixelData(
                data=torch.randint(0, cfg.model.decode_head.num_classes, (1, size, size)))
            samples.append(sample)
        return dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in samples],
                    data_samples=samples)
    raise ValueError(f'step benchmarks cover mmdet and mmseg configs; {cfg.default_scope!r} is neither')


def benchmark_step(args: argparse.Namespace) -> Dict:
    """Median train-step and test-step time of the config's model on random batches."""
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    cfg = Config.fromfile(args.config)
    if args.backbone_arch:
        _swap_backbone_arch(cfg, args.backbone_arch)
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = revert_sync_batchnorm(MODELS.build(cfg.model)).to(device)
    model.init_weights()
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)

    def train_step() -> None:
        model.train()
        model.train_step(_random_batch(cfg, args.batch_size, args.size), optim_wrapper)

    def test_step() -> None:
        model.eval()
        with torch.no_grad():
            model.test_step(_random_batch(cfg, args.batch_size, args.size))

    rows = []
    for name, run in (('train step', train_step), ('test step', test_step)):
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        seconds = median_seconds(run, args.repeats, warmup=args.warmup, device=device)
        rows.append(dict(step=name, seconds=seconds, images_per_s=args.batch_size / seconds,
                         peak_memory_gib=torch.cuda.max_memory_allocated(device) / 2**30
                         if device.type == 'cuda' else None))
    return dict(benchmark='step', config=args.config, backbone_arch=args.backbone_arch or cfg.model.backbone.arch,
                batch_size=args.batch_size, size=args.size, device=device_name(device), repeats=args.repeats,
                rows=rows)


def print_table(result: Dict) -> None:
    """One row per step."""
    print(f'{result["config"]} with {result["backbone_arch"]}, batch {result["batch_size"]} at {result["size"]}px '
          f'on {result["device"]} (median of {result["repeats"]})\n\n| step | s | images/s | peak mem GiB |\n'
          f'|---|---|---|---|')
    for row in result['rows']:
        memory = '-' if row['peak_memory_gib'] is None else f'{row["peak_memory_gib"]:.2f}'
        print(f'| {row["step"]} | {row["seconds"]:.3f} | {row["images_per_s"]:.2f} | {memory} |')
