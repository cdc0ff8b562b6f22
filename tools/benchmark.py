"""Benchmarks: the only place mmdiff measures time. Prints a table and writes JSON under work_dirs/benchmarks/.

    python tools/benchmark.py backbone [--arch adm-256u] [--batch-size 32] [--size 256] [--device cuda] [--compile]
        Images/s, achieved TFLOP/s (PyTorch's flop counter), the fraction of a measured matmul peak, peak memory and
        the error against the fp32 features, for the plain diffusers full forward and the backbone's settings
        (truncated U-Net, bf16 autocast, channels_last, torch.compile, three timesteps in one call), and the cost
        of the backbone's input checks (first batch and later ones; on CUDA, the host synchronisations they cause).
    python tools/benchmark.py step CONFIG [--backbone-arch adm-tiny] [--batch-size 2] [--size 256]
        One runner train step (data preprocessor, loss, backward, optimizer) and one test step of a detector or
        segmentor config, on random images.
    python tools/benchmark.py cache [--arch adm-tiny] [--num-images 256] [--batch-size 32] [--size 64]
        Per-epoch time of training a linear probe with features recomputed by the frozen backbone versus read
        from a feature cache (same head, same batch size).

Timers synchronise the device; every timed call gets fresh random inputs; results are medians of ``--repeats``
after warm-up calls (the first call of a compiled setting, which compiles, is reported separately).
"""
import argparse
import json
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mmdiff.datasets.feature_cache import extract_to_cache
from mmdiff.models.backbones import DiffusionUNetBackbone
from mmdiff.models.backbones.backbone_inputs import check_image_batch

OUT_DIR = Path('work_dirs/benchmarks')


def synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(run: Callable[[], None], device: torch.device) -> float:
    """Wall time of one call, with the device synchronised before and after."""
    synchronize(device)
    start = time.perf_counter()
    run()
    synchronize(device)
    return time.perf_counter() - start


def median_seconds(run: Callable[[], None], repeats: int, warmup: int = 1,
                   device: torch.device = torch.device('cpu')) -> float:
    """Median wall time of ``run`` over ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run()
    return statistics.median(timed(run, device) for _ in range(repeats))


def device_name(device: torch.device) -> str:
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads'


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """The best of a few square matmuls: the throughput the convolutions and attention are measured against."""
    n = 8192 if device.type == 'cuda' else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    seconds = min(timed(lambda: a @ b, device) for _ in range(10))
    return 2 * n**3 / seconds / 1e12


def count_flops(run: Callable[[], None]) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def relative_error(reference: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]) -> float:
    """The largest ``||out - ref|| / ||ref||`` over the outputs."""
    return max(((out.float() - ref.float()).norm() / ref.float().norm()).item()
               for ref, out in zip(reference, outputs))


BACKBONE_SETTINGS = {
    # name: (what runs, backbone options); 'full' is diffusers' UNet2DModel forward on the same noised batch
    'fp32 full forward': ('full', dict()),
    'bf16 full forward': ('full', dict(dtype='bfloat16')),
    'fp32 backbone (truncated)': ('backbone', dict()),
    'bf16 backbone': ('backbone', dict(dtype='bfloat16')),
    'bf16 backbone, channels_last': ('backbone', dict(dtype='bfloat16', channels_last=True)),
    'bf16 backbone, channels_last, compiled': ('backbone', dict(dtype='bfloat16', channels_last=True,
                                                                torch_compile=True)),
    'bf16 backbone, channels_last, 3 timesteps': ('backbone', dict(dtype='bfloat16', channels_last=True,
                                                                   timesteps=(90, 150, 300))),
    # the same channels (512, 512, 1024, 1024) from taps that end in up_blocks[2]: stride 4 is its upsampler's
    # output instead of the last stride-4 layer of up_blocks[3], a third less work on ADM-256
    'bf16 backbone, channels_last, taps end at up_blocks[2]': ('backbone', dict(
        dtype='bfloat16', channels_last=True, out_strides=None,
        out_blocks=('up_blocks.2.upsamplers.0', 'up_blocks.2.attentions.2', 'up_blocks.1.attentions.2',
                    'up_blocks.0.attentions.2'))),
}


def host_synchronisations(run: Callable[[], None], device: torch.device) -> int:
    """How many times ``run`` makes the host wait for the device (CUDA's sync debug mode); 0 off CUDA."""
    if device.type != 'cuda':
        return 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            run()
        finally:
            torch.cuda.set_sync_debug_mode('default')
    return sum('synchronizing' in str(warning.message) for warning in caught)


def benchmark_input_checks(images: torch.Tensor, repeats: int, backbone_seconds: float) -> Dict:
    """Time the backbone's input checks on ``images``: the first batch's (values and range) and a later one's."""
    device = images.device
    first = median_seconds(lambda: check_image_batch(images, images.shape[1], first_batch=True), repeats,
                           device=device)
    later = median_seconds(lambda: check_image_batch(images, images.shape[1], first_batch=False), repeats,
                           device=device)
    return dict(first_batch_s=first, later_batch_s=later, fraction_of_fp32_backbone_batch=later / backbone_seconds,
                host_syncs_later_batch=host_synchronisations(
                    lambda: check_image_batch(images, images.shape[1], first_batch=False), device))


def benchmark_backbone(args: argparse.Namespace) -> Dict:
    device = torch.device(args.device)
    if device.type == 'cuda':
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 rows run as the reference figures do (tf32)
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    reference = DiffusionUNetBackbone(arch=args.arch).to(device)
    generator = torch.Generator(device).manual_seed(0)

    def fresh_batch() -> torch.Tensor:
        return torch.rand(args.batch_size, 3, args.size, args.size, device=device, generator=generator) * 2 - 1

    check_batch = fresh_batch()
    with torch.no_grad():
        reference_features = reference(check_batch)
        noisy, steps = reference.noised(check_batch)
        reference_full = reference.unet(noisy, steps).sample
    weights = {key: value.cpu() for key, value in reference.state_dict().items()}
    del reference  # each setting then holds one model, so peak memory is that setting's
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    peaks = {dtype: matmul_peak_tflops(device, dtype) for dtype in (torch.float32, torch.bfloat16)}
    rows = []
    for name, (kind, options) in BACKBONE_SETTINGS.items():
        if options.get('torch_compile') and not args.compile:
            continue
        backbone = DiffusionUNetBackbone(arch=args.arch, **options).to(device)
        backbone.load_state_dict(weights)
        backbone.eval()
        if kind == 'full':
            def run(images: torch.Tensor, backbone=backbone) -> torch.Tensor:
                sample, timesteps = backbone.noised(images)
                with torch.autocast(device.type, dtype=backbone.autocast_dtype,
                                    enabled=backbone.autocast_dtype != torch.float32):
                    return (backbone.unet(sample, timesteps).sample, )
        else:
            run = backbone
        with torch.no_grad():
            first_call_s = timed(lambda: run(fresh_batch()), device)
            for _ in range(args.warmup):
                run(fresh_batch())
            if device.type == 'cuda':
                torch.cuda.reset_peak_memory_stats(device)
            batches = [fresh_batch() for _ in range(args.repeats)]
            seconds = statistics.median(timed(lambda: run(batch), device) for batch in batches)
            peak_memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == 'cuda' else None
            outputs = run(check_batch)
            if kind == 'backbone' and len(backbone.timesteps) == 1 and 'out_blocks' not in options:
                error = relative_error(reference_features, outputs)
            elif kind == 'full':
                error = relative_error((reference_full, ), outputs)
            else:
                error = None  # other timesteps or taps: no fp32 twin in this table
            if options.get('torch_compile'):  # the eager row before it computes the same operations
                flops = rows[-1]['flops_per_batch']
            else:
                flops = count_flops(lambda: run(check_batch))
        achieved = flops / seconds / 1e12
        peak = peaks[torch.float32 if backbone.autocast_dtype == torch.float32 else torch.bfloat16]
        rows.append(dict(setting=name, images_per_s=args.batch_size / seconds,
                         samples_per_s=args.batch_size * len(backbone.timesteps) / seconds,
                         seconds_per_batch=seconds, first_call_s=first_call_s, flops_per_batch=flops,
                         gflop_per_image=flops / args.batch_size / 1e9, achieved_tflops=achieved,
                         fraction_of_matmul_peak=achieved / peak, peak_memory_gib=peak_memory,
                         relative_error_vs_fp32=error))
        del backbone
    fp32_backbone = next(row for row in rows if row['setting'] == 'fp32 backbone (truncated)')
    return dict(benchmark='backbone', arch=args.arch, batch_size=args.batch_size, size=args.size,
                device=device_name(device), repeats=args.repeats, torch=torch.__version__,
                matmul_peak_tflops={str(dtype): peak for dtype, peak in peaks.items()}, rows=rows,
                input_checks=benchmark_input_checks(check_batch, args.repeats, fp32_backbone['seconds_per_batch']))


def print_backbone_table(result: Dict) -> None:
    print(f'{result["arch"]}, batch {result["batch_size"]} at {result["size"]}px on {result["device"]} '
          f'(median of {result["repeats"]}; matmul peak fp32 {result["matmul_peak_tflops"]["torch.float32"]:.2f}, '
          f'bf16 {result["matmul_peak_tflops"]["torch.bfloat16"]:.2f} TFLOP/s)\n')
    print('| setting | images/s | samples/s | GFLOP/img | TFLOP/s | of peak | peak mem GiB | rel. error | '
          'first call s |')
    print('|---|---|---|---|---|---|---|---|---|')
    for row in result['rows']:
        memory = '-' if row['peak_memory_gib'] is None else f'{row["peak_memory_gib"]:.2f}'
        error = '-' if row['relative_error_vs_fp32'] is None else f'{row["relative_error_vs_fp32"]:.1e}'
        print(f'| {row["setting"]} | {row["images_per_s"]:.2f} | {row["samples_per_s"]:.2f} | '
              f'{row["gflop_per_image"]:.1f} | {row["achieved_tflops"]:.3f} | {row["fraction_of_matmul_peak"]:.0%} | '
              f'{memory} | {error} | {row["first_call_s"]:.2f} |')
    checks = result['input_checks']
    print(f'\ninput checks per batch: first {checks["first_batch_s"] * 1e3:.3f} ms (values and range), later '
          f'{checks["later_batch_s"] * 1e3:.3f} ms ({checks["fraction_of_fp32_backbone_batch"]:.2e} of the fp32 '
          f'backbone batch), host synchronisations after the first: {checks["host_syncs_later_batch"]}')


def benchmark_cache(args: argparse.Namespace) -> Dict:
    torch.manual_seed(0)
    backbone = DiffusionUNetBackbone(arch=args.arch, out_strides=None, out_blocks=(24, ), timesteps=(150, ))
    images = torch.rand(args.num_images, 3, args.size, args.size) * 2 - 1
    labels = torch.randint(0, 10, (args.num_images, ))
    channels = backbone.out_channels[-1]
    head = torch.nn.Linear(channels * 4, 10)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.01)
    batches = torch.arange(args.num_images).split(args.batch_size)

    def head_step(features: torch.Tensor, batch: torch.Tensor) -> None:
        loss = F.cross_entropy(head(F.adaptive_avg_pool2d(features, 2).flatten(1)), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def live_epoch() -> None:
        for batch in batches:
            with torch.no_grad():
                features = backbone(images[batch])[-1]
            head_step(features, batch)

    with tempfile.TemporaryDirectory() as cache_dir:
        cache = extract_to_cache(lambda index: (backbone(images[index]), labels[index]), args.num_images, cache_dir,
                                 dict(backbone=dict(arch=args.arch)), batch_size=args.batch_size,
                                 show_progress=False)
        level = cache.level(-1)

        def cached_epoch() -> None:
            for batch in batches:
                head_step(torch.from_numpy(np.array(level[batch[0]:batch[-1] + 1])), batch)

        live = median_seconds(live_epoch, args.repeats)
        cached = median_seconds(cached_epoch, args.repeats)
    return dict(benchmark='cache', arch=args.arch, num_images=args.num_images, batch_size=args.batch_size,
                size=args.size, device='cpu', threads=torch.get_num_threads(), live_epoch_s=live,
                cached_epoch_s=cached, speedup=live / cached)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest='command', required=True)
    cache = commands.add_parser('cache', help='linear-probe epoch from live features vs from the feature cache')
    cache.add_argument('--arch', default='adm-tiny', choices=sorted(DiffusionUNetBackbone.arch_settings))
    cache.add_argument('--num-images', type=int, default=256)
    cache.add_argument('--batch-size', type=int, default=32)
    cache.add_argument('--size', type=int, default=64)
    cache.add_argument('--repeats', type=int, default=5)
    default_device = 'cuda' if torch.cuda.is_available() else 'cpu'
    backbone = commands.add_parser('backbone', help='frozen-feature throughput of the speed settings')
    backbone.add_argument('--arch', default='adm-256u', choices=sorted(DiffusionUNetBackbone.arch_settings))
    backbone.add_argument('--batch-size', type=int, default=32)
    backbone.add_argument('--size', type=int, default=256)
    backbone.add_argument('--device', default=default_device)
    backbone.add_argument('--repeats', type=int, default=10)
    backbone.add_argument('--warmup', type=int, default=2)
    backbone.add_argument('--compile', action='store_true', help='include the torch.compile setting')
    step = commands.add_parser('step', help='runner train and test step of a detection/segmentation config')
    step.add_argument('config')
    step.add_argument('--backbone-arch', help='swap in this U-Net preset (random weights), e.g. adm-tiny on CPU')
    step.add_argument('--batch-size', type=int, default=2)
    step.add_argument('--size', type=int, default=256)
    step.add_argument('--device', default=default_device)
    step.add_argument('--repeats', type=int, default=5)
    step.add_argument('--warmup', type=int, default=1)
    args = parser.parse_args()

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if args.command == 'backbone':
        result = benchmark_backbone(args)
        print_backbone_table(result)
    elif args.command == 'step':
        result = benchmark_step(args)
        print(f'{result["config"]} with {result["backbone_arch"]}, batch {result["batch_size"]} at {result["size"]}px '
              f'on {result["device"]} (median of {result["repeats"]})\n\n| step | s | images/s | peak mem GiB |\n'
              f'|---|---|---|---|')
        for row in result['rows']:
            memory = '-' if row['peak_memory_gib'] is None else f'{row["peak_memory_gib"]:.2f}'
            print(f'| {row["step"]} | {row["seconds"]:.3f} | {row["images_per_s"]:.2f} | {memory} |')
    else:
        result = benchmark_cache(args)
        print_cache_table(result, args.repeats)
    name = {'backbone': lambda: f'backbone_{args.arch}_{args.device}', 'step': lambda: f'step_{Path(args.config).stem}',
            'cache': lambda: 'cache'}[args.command]()
    (OUT_DIR / f'{name}.json').write_text(json.dumps(result, indent=2))
    print(f'\nwrote {OUT_DIR / (name + ".json")}')


def print_cache_table(result: Dict, repeats: int) -> None:
    print(f'| setting | seconds per epoch |\n|---|---|\n| live backbone ({result["arch"]}, {result["num_images"]} '
          f'images of {result["size"]}px, batch {result["batch_size"]}) | {result["live_epoch_s"]:.4f} |\n'
          f'| feature cache | {result["cached_epoch_s"]:.4f} |\n\nspeed-up: {result["speedup"]:.1f}x '
          f'(median of {repeats}, {result["device"]}, {result["threads"]} threads)')


if __name__ == '__main__':
    main()
