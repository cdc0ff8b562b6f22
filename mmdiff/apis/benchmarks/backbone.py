"""``tools/analysis_tools/benchmark.py backbone``: frozen-feature throughput of the backbone's speed settings.

Per setting: images/s, samples/s, counted GFLOP per image, achieved TFLOP/s and its fraction of a measured matmul
peak, the first call (for a compiled setting the compilation: cold on an empty inductor cache, and warm: a fresh
compile in the same process, which reuses the cache), peak device memory (CUDA), the weights' memory and the error
against the fp32 features of the same weights. Optionally a ``torch.profiler`` table of one setting's top kernels,
the cost of the input checks, and a summary against the GPU target, printed last.

``--arch`` names a U-Net preset or a diffusion-transformer preset; a transformer runs with the VAE, prompt length
(zero tokens) and guidance its pipeline pairs it with (``TRANSFORMER_COMPANIONS``). The full-forward rows, the
cheaper U-Net taps and the summary against the ADM-256 target are the U-Nets' only.
"""
import argparse
import json
import statistics
from typing import Callable, Dict, List, Optional, Tuple

import torch

from mmdiff.apis.benchmarks.timing import (count_flops, device_name, host_synchronisations, matmul_peak_tflops,
                                           median_seconds, profile_top_ops, relative_error, timed, weights_gib)
from mmdiff.models.backbones import DiffusionBackbone, DiffusionTransformerBackbone, DiffusionUNetBackbone
from mmdiff.models.backbones.core.backbone_inputs import check_image_batch
from mmdiff.models.backbones.transformer import TRANSFORMER_COMPANIONS

BF16_WEIGHTS = dict(dtype='bfloat16', weights_dtype='bfloat16', channels_last=True)
THREE_TIMESTEPS = (90, 150, 300)
# the same channels (512, 512, 1024, 1024) from taps that end in up_blocks[2]: stride 4 is its upsampler's output
# instead of the last stride-4 layer of up_blocks[3], a third less work on ADM-256
CHEAPER_TAPS = dict(out_strides=None, out_blocks=('up_blocks.2.upsamplers.0', 'up_blocks.2.attentions.2',
                                                  'up_blocks.1.attentions.2', 'up_blocks.0.attentions.2'))
SETTINGS = {
    # name: (what runs, backbone options); 'full' is diffusers' UNet2DModel forward on the same noised batch. The
    # compiled settings come last: each eager twin's FLOPs are counted first, and no eager row runs after a compile
    'fp32 full forward': ('full', dict()),
    'bf16 full forward': ('full', dict(dtype='bfloat16')),
    'fp32 backbone (truncated)': ('backbone', dict()),
    'bf16 backbone': ('backbone', dict(dtype='bfloat16')),
    'bf16 backbone, channels_last': ('backbone', dict(dtype='bfloat16', channels_last=True)),
    'bf16 weights, channels_last': ('backbone', BF16_WEIGHTS),
    'bf16 weights, channels_last, 3 timesteps': ('backbone', dict(BF16_WEIGHTS, timesteps=THREE_TIMESTEPS)),
    'bf16 weights, channels_last, taps end at up_blocks[2]': ('backbone', dict(BF16_WEIGHTS, **CHEAPER_TAPS)),
    'bf16 weights, channels_last, compiled': ('backbone', dict(BF16_WEIGHTS, torch_compile=True)),
    'bf16 weights, channels_last, compiled, CUDA graphs': ('backbone', dict(
        BF16_WEIGHTS, torch_compile=dict(mode='reduce-overhead'))),
    'bf16 weights, channels_last, compiled, 3 timesteps': ('backbone', dict(
        BF16_WEIGHTS, timesteps=THREE_TIMESTEPS, torch_compile=True)),
}
WARM_COMPILE = 'bf16 weights, channels_last, compiled'  # compiled a second time in the process: the warm cache
PROFILED = ('bf16 weights, channels_last, compiled', 'bf16 weights, channels_last')  # with, without --compile
# the target on one H100/H200 at 256x256 (ADM-256, default FPN taps)
TARGET_IMAGES_PER_S = 600
TARGET_THREE_TIMESTEP_RATIO = 0.9
TARGET_RELATIVE_ERROR = 1e-2
# every preset --arch takes, and its backbone
ARCHES = dict(dict.fromkeys(DiffusionUNetBackbone.arch_settings, DiffusionUNetBackbone),
              **dict.fromkeys(DiffusionTransformerBackbone.arch_settings, DiffusionTransformerBackbone))


def arch_options(arch: str) -> dict:
    """What the preset's backbone is built with beside ``arch``: a transformer's companions, nothing for a U-Net."""
    return dict(TRANSFORMER_COMPANIONS[arch]) if ARCHES[arch] is DiffusionTransformerBackbone else {}


def runs_setting(arch: str, kind: str, options: dict) -> bool:
    """Whether the setting applies to ``arch``: a transformer has no full-forward row and no U-Net taps."""
    return ARCHES[arch] is DiffusionUNetBackbone or (kind == 'backbone' and 'out_blocks' not in options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``backbone`` subcommand's options."""
    parser.add_argument('--arch', default='adm-256u', choices=sorted(ARCHES))
    parser.add_argument('--checkpoint', help='an mmdiff backbone checkpoint for the weights (errors at trained '
                        'scale); default: random weights')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--compile', action=argparse.BooleanOptionalAction, default=False,
                        help='include the torch.compile settings (each compiles on its first call)')
    parser.add_argument('--profile', action=argparse.BooleanOptionalAction, default=False,
                        help=f'profile warm calls of {PROFILED[0]!r} ({PROFILED[1]!r} without --compile)')


def output_name(args: argparse.Namespace) -> str:
    """The JSON file's stem under ``work_dirs/benchmarks/``."""
    return f'backbone_{args.arch}_{args.device}'


def _runner(kind: str, backbone: DiffusionBackbone) -> Callable[[torch.Tensor], Tuple[torch.Tensor, ...]]:
    """What one timed call runs: the backbone, or diffusers' full forward on the same noised batch."""
    if kind == 'backbone':
        return backbone

    def full_forward(images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        sample, timesteps = backbone.noised(images)
        with torch.autocast(images.device.type, dtype=backbone.autocast_dtype,
                            enabled=backbone.autocast_dtype != torch.float32):
            return (backbone.unet(sample, timesteps).sample, )

    return full_forward


def _build(args: argparse.Namespace, options: dict, weights: Dict[str, torch.Tensor]) -> DiffusionBackbone:
    """The setting's backbone on the device, in eval mode, with the reference weights."""
    if options.get('torch_compile'):
        torch.compiler.reset()  # every compiled setting starts from a clean dynamo state (no recompile limit)
    backbone = ARCHES[args.arch](arch=args.arch, **arch_options(args.arch), **options).to(args.device)
    backbone.load_state_dict(weights)
    return backbone.eval()


def _eager_flops(rows: List[Dict], options: dict) -> Optional[int]:
    """The counted FLOPs of the eager row with the same options as a compiled one (the same operations)."""
    eager = {key: value for key, value in options.items() if key != 'torch_compile'}
    return next((row['flops_per_batch'] for row in rows if row['options'] == eager), None)


class Bench:
    """What every setting is measured with: the fp32 reference's weights, features and full-forward output on one
    check batch, a source of fresh batches and the matmul peaks.

    Args:
        args (argparse.Namespace): The subcommand's options.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.device = torch.device(args.device)
        torch.manual_seed(0)
        init_cfg = dict(type='Pretrained', checkpoint=args.checkpoint) if args.checkpoint else None
        reference = ARCHES[args.arch](arch=args.arch, init_cfg=init_cfg, **arch_options(args.arch))
        if init_cfg is not None:
            reference.init_weights()
        reference.to(self.device)
        self.generator = torch.Generator(self.device).manual_seed(0)
        self.check_batch = self.fresh_batch()
        with torch.no_grad():
            self.reference_features = reference(self.check_batch)
            self.reference_full = None  # diffusers' full forward: the U-Nets' rows
            if ARCHES[args.arch] is DiffusionUNetBackbone:
                noisy, steps = reference.noised(self.check_batch)
                self.reference_full = reference.unet(noisy, steps).sample
        self.weights = {key: value.cpu() for key, value in reference.state_dict().items()}
        del reference  # each setting then holds one model, so peak memory is that setting's
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()
        self.peaks = {dtype: matmul_peak_tflops(self.device, dtype) for dtype in (torch.float32, torch.bfloat16)}

    def fresh_batch(self) -> torch.Tensor:
        """Random images ``(N, 3, size, size)`` in [-1, 1]."""
        args = self.args
        return torch.rand(args.batch_size, 3, args.size, args.size, device=self.device,
                          generator=self.generator) * 2 - 1

    @torch.no_grad()
    def measure(self, name: str, kind: str, options: dict, rows: List[Dict], profile: bool) -> Tuple[Dict, Dict]:
        """One row of the table (and, with ``profile``, the profiler's ranking of this setting's warm calls)."""
        args, device = self.args, self.device
        backbone = _build(args, options, self.weights)
        run = _runner(kind, backbone)
        first_call_s = timed(lambda: run(self.fresh_batch()), device)
        for _ in range(args.warmup):
            run(self.fresh_batch())
        if device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(device)
        batches = [self.fresh_batch() for _ in range(args.repeats)]
        seconds = statistics.median(timed(lambda: run(batch), device) for batch in batches)
        peak_memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == 'cuda' else None
        outputs = run(self.check_batch)
        if kind == 'full':
            error = relative_error((self.reference_full, ), outputs)
        elif len(backbone.timesteps) == 1 and 'out_blocks' not in options:
            error = relative_error(self.reference_features, outputs)
        else:
            error = None  # other timesteps or taps: no fp32 twin in this table
        flops = _eager_flops(rows, options) if options.get('torch_compile') else None
        if flops is None:
            flops = count_flops(lambda: run(self.check_batch))
        profiled = dict(setting=name, **profile_top_ops(lambda: run(self.check_batch), device)) if profile else None
        achieved = flops / seconds / 1e12
        peak = self.peaks[torch.float32 if backbone.autocast_dtype == torch.float32 else torch.bfloat16]
        row = dict(setting=name, kind=kind, options=options, images_per_s=args.batch_size / seconds,
                   samples_per_s=args.batch_size * len(backbone.timesteps) / seconds, seconds_per_batch=seconds,
                   first_call_s=first_call_s, warm_first_call_s=self.warm_first_call(options)
                   if name == WARM_COMPILE else None, flops_per_batch=flops,
                   gflop_per_image=flops / args.batch_size / 1e9, achieved_tflops=achieved,
                   fraction_of_matmul_peak=achieved / peak, peak_memory_gib=peak_memory,
                   weights_gib=weights_gib(backbone.model), relative_error_vs_fp32=error)
        return row, profiled

    @torch.no_grad()
    def warm_first_call(self, options: dict) -> float:
        """The first call of the setting compiled again in this process: dynamo traces anew, inductor's caches
        hit (what a second run on a warm cache pays)."""
        backbone = _build(self.args, options, self.weights)
        return timed(lambda: backbone(self.check_batch), self.device)


def benchmark_backbone(args: argparse.Namespace) -> Dict:
    """Run every setting of :data:`SETTINGS` (the compiled ones with ``--compile``) and return the report.

    After each row the report so far is written to ``args.output`` (JSON), so a run stopped by a time limit keeps
    what it measured.
    """
    if args.device.startswith('cuda'):
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 rows run as the reference figures do (tf32)
        torch.backends.cudnn.allow_tf32 = True
    bench = Bench(args)
    result = dict(benchmark='backbone', arch=args.arch, checkpoint=args.checkpoint, batch_size=args.batch_size,
                  size=args.size, device=device_name(bench.device), repeats=args.repeats, torch=torch.__version__,
                  matmul_peak_tflops={str(dtype): peak for dtype, peak in bench.peaks.items()}, rows=[],
                  profile=None)
    profiled = PROFILED[0] if args.compile else PROFILED[1]
    for name, (kind, options) in SETTINGS.items():
        if (options.get('torch_compile') and not args.compile) or not runs_setting(args.arch, kind, options):
            continue
        row, profile = bench.measure(name, kind, options, result['rows'], args.profile and name == profiled)
        result['rows'].append(row)
        if profile is not None:
            result['profile'] = profile
        args.output.write_text(json.dumps(result, indent=2))
    fp32_backbone = next(row for row in result['rows'] if row['setting'] == 'fp32 backbone (truncated)')
    result['input_checks'] = benchmark_input_checks(bench.check_batch, args.repeats,
                                                    fp32_backbone['seconds_per_batch'])
    result['summary'] = summarize(result['rows']) if ARCHES[args.arch] is DiffusionUNetBackbone else []
    return result


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


def summarize(rows: List[Dict]) -> List[Dict]:
    """The target's three checks: the fastest default-tap single-timestep setting against 600 images/s, its bf16
    error against 1e-2, and three timesteps in one call against 0.9x its per-sample rate."""
    by_name = {row['setting']: row for row in rows}
    single = [row for row in rows if row['kind'] == 'backbone' and row['relative_error_vs_fp32'] is not None]
    best = max(single, key=lambda row: row['images_per_s'])
    checks = [dict(check=f'FPN features images/s ({best["setting"]})', value=best['images_per_s'],
                   target=f'>= {TARGET_IMAGES_PER_S}', met=best['images_per_s'] >= TARGET_IMAGES_PER_S),
              dict(check=f'relative error vs fp32 ({best["setting"]})', value=best['relative_error_vs_fp32'],
                   target=f'<= {TARGET_RELATIVE_ERROR:.0e}',
                   met=best['relative_error_vs_fp32'] <= TARGET_RELATIVE_ERROR)]
    for one in ('bf16 weights, channels_last, compiled', 'bf16 weights, channels_last'):
        three = by_name.get(f'{one}, 3 timesteps')
        if one in by_name and three is not None:
            ratio = three['samples_per_s'] / by_name[one]['images_per_s']
            checks.append(dict(check=f'3 timesteps / 1, per-sample rate ({one})', value=ratio,
                               target=f'>= {TARGET_THREE_TIMESTEP_RATIO}', met=ratio >= TARGET_THREE_TIMESTEP_RATIO))
            break
    return checks


def print_table(result: Dict) -> None:
    """The rows, the input checks, the profiler table and, last, the summary against the target."""
    print(f'{result["arch"]}, batch {result["batch_size"]} at {result["size"]}px on {result["device"]} '
          f'(median of {result["repeats"]}; matmul peak fp32 {result["matmul_peak_tflops"]["torch.float32"]:.2f}, '
          f'bf16 {result["matmul_peak_tflops"]["torch.bfloat16"]:.2f} TFLOP/s)\n')
    print('| setting | images/s | samples/s | GFLOP/img | TFLOP/s | of peak | peak mem GiB | weights GiB | '
          'rel. error | first call s |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for row in result['rows']:
        memory = '-' if row['peak_memory_gib'] is None else f'{row["peak_memory_gib"]:.2f}'
        error = '-' if row['relative_error_vs_fp32'] is None else f'{row["relative_error_vs_fp32"]:.1e}'
        warm = row['warm_first_call_s']
        first = f'{row["first_call_s"]:.2f}' + ('' if warm is None else f' (warm {warm:.2f})')
        print(f'| {row["setting"]} | {row["images_per_s"]:.2f} | {row["samples_per_s"]:.2f} | '
              f'{row["gflop_per_image"]:.1f} | {row["achieved_tflops"]:.3f} | {row["fraction_of_matmul_peak"]:.0%} | '
              f'{memory} | {row["weights_gib"]:.3f} | {error} | {first} |')
    checks = result['input_checks']
    print(f'\ninput checks per batch: first {checks["first_batch_s"] * 1e3:.3f} ms (values and range), later '
          f'{checks["later_batch_s"] * 1e3:.3f} ms ({checks["fraction_of_fp32_backbone_batch"]:.2e} of the fp32 '
          f'backbone batch), host synchronisations after the first: {checks["host_syncs_later_batch"]}')
    profile = result['profile']
    if profile is not None:
        print(f'\nprofile of {profile["setting"]!r}, by {profile["sort_by"]} ({profile["total_ms"]:.2f} ms per '
              f'call):\n\n| kernel or operator | calls per call | ms per call | share |\n|---|---|---|---|')
        for row in profile['rows']:
            print(f'| {row["name"][:80]} | {row["calls"]} | {row["self_ms"]:.3f} | {row["fraction"]:.1%} |')
    if result['summary']:
        print('\nsummary (the target is for one H100/H200 at 256x256 with ADM-256):\n\n| check | value | target | '
              'met |\n|---|---|---|---|')
    for check in result['summary']:
        value = f'{check["value"]:.1e}' if 'error' in check['check'] else f'{check["value"]:.2f}'
        print(f'| {check["check"]} | {value} | {check["target"]} | {"yes" if check["met"] else "no"} |')
