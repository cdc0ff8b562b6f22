"""Find the best noise step and U-Net block for a dataset: a linear probe per (timestep, block) cell.

    python tools/feature_tools/sweep_timesteps_blocks.py CONFIG --timesteps 50 150 300 --blocks 19 24 30 \
        --work-dir work_dirs/sweep [--pool 2] [--epochs 100] [--pixel-baseline] [--labels-per-class 10 100] \
        [--seed 0] [--device cuda] [--num-workers 8] [--launcher pytorch] [--overwrite] [--cfg-options k=v ...]

CONFIG is a classification config with a DiffusionUNetBackbone (its train and val splits are used). All cells come
from one U-Net call per batch (every timestep and block at once), cached under WORK_DIR/cache (resumable: an
interrupted sweep continues when run again). A finished sweep in WORK_DIR is replaced only with --overwrite.
Blocks are diffssl numbers or submodule names. --pixel-baseline also fits the same probe on the raw preprocessed
pixels (unpooled; meant for small images). --labels-per-class N ... fits every cell (and the pixel baseline) again
on only the first N train samples of each class, from the same cache: few-label rows. Writes WORK_DIR/sweep.csv,
sweep.md, sweep.json and heatmap.png, and prints the best cell. The extraction runs on the device, fed by
DataLoader workers, and in a distributed job (bash tools/torchrun.sh feature_tools/sweep_timesteps_blocks.py NPROC
...) every process writes its own shards; the probes are then fitted by rank 0 alone.
"""
import argparse
import csv
import json
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.dist import get_dist_info

from mmdiff.apis.linear_probe_fit import fit_linear_probe
from mmdiff.apis.run_inputs import data_inputs, model_inputs
from mmdiff.apis.runner_config import (add_device_arguments, check_device, default_device, join_process_group,
                                       leave_process_group, positive_int)
from mmdiff.datasets.class_subset import first_per_class
from mmdiff.feature_cache.extraction import extract_split, loader_workers, preprocessed_pixels
from mmdiff.models.backbones import DiffusionUNetBackbone
from mmdiff.models.backbones.core.taps import resolve_taps
from mmdiff.utils.config_scope import load_config
from mmdiff.utils.output_paths import check_output, check_output_free


def parse_block(text: str) -> Union[int, str]:
    return int(text) if text.lstrip('-').isdigit() else text


def grid_table(accuracy: np.ndarray, timesteps: List[int], blocks: List) -> List[str]:
    """The Markdown lines of a (block x timestep) accuracy grid."""
    lines = ['| block \\ t | ' + ' | '.join(str(t) for t in timesteps) + ' |', '|---|' + '---|' * len(timesteps)]
    return lines + [f'| {block} | ' + ' | '.join(f'{value:.2f}' for value in accuracy[row]) + ' |'
                    for row, block in enumerate(blocks)]


def best_cell(accuracy: np.ndarray, timesteps: List[int], blocks: List, names: List[str]) -> dict:
    """The grid's best cell: its block, tap, timestep and top-1."""
    row, column = np.unravel_index(np.argmax(accuracy), accuracy.shape)
    return dict(block=blocks[row], tap=names[row], timestep=timesteps[column], top1=float(accuracy[row, column]))


def write_report(accuracy: np.ndarray, timesteps: List[int], blocks: List, work_dir: Path,
                 pixel_accuracy: Optional[float] = None, few_labels: Optional[Dict[int, dict]] = None) -> str:
    """Write sweep.csv, sweep.md and heatmap.png; return the Markdown table (the pixel baseline, and per few-label
    row its grid, best cell and pixel baseline)."""
    with open(work_dir / 'sweep.csv', 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['block', 'timestep', 'top1'])
        for row, block in enumerate(blocks):
            for column, t in enumerate(timesteps):
                writer.writerow([block, t, f'{accuracy[row, column]:.2f}'])
    lines = grid_table(accuracy, timesteps, blocks)
    if pixel_accuracy is not None:
        lines.append(f'\nraw pixels (same probe, unpooled): {pixel_accuracy:.2f}')
    for count, row in (few_labels or {}).items():
        best = row['best']
        lines += [f'\nFitted on {count} train samples per class (best: block {best["block"]}, t={best["timestep"]}, '
                  f'{best["top1"]:.2f})\n', *grid_table(np.asarray(row['top1']), timesteps, blocks)]
        if row.get('pixel_top1') is not None:
            lines.append(f'\nraw pixels, {count} per class: {row["pixel_top1"]:.2f}')
    table = '\n'.join(lines)
    (work_dir / 'sweep.md').write_text('Linear-probe top-1 (%) on the held-out split\n\n' + table + '\n')

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(1.2 + 0.9 * len(timesteps), 1.0 + 0.6 * len(blocks)))
    image = axes.imshow(accuracy, cmap='viridis', aspect='auto')
    axes.set_xticks(range(len(timesteps)), [str(t) for t in timesteps])
    axes.set_yticks(range(len(blocks)), [str(block) for block in blocks])
    axes.set_xlabel('timestep t')
    axes.set_ylabel('block')
    for row in range(len(blocks)):
        for column in range(len(timesteps)):
            axes.text(column, row, f'{accuracy[row, column]:.1f}', ha='center', va='center', color='white')
    figure.colorbar(image, label='top-1 (%)')
    axes.set_title('linear probe accuracy')
    figure.tight_layout()
    figure.savefig(work_dir / 'heatmap.png', dpi=100)
    plt.close(figure)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('--timesteps', type=int, nargs='+', required=True)
    parser.add_argument('--blocks', type=parse_block, nargs='+', required=True,
                        help='diffssl block numbers (e.g. 19 24 30) or submodule names')
    parser.add_argument('--work-dir', required=True)
    parser.add_argument('--pool', type=positive_int, default=2, help='pool each map to N x N before the probe')
    parser.add_argument('--epochs', type=int, default=100, help='linear-probe epochs per cell')
    parser.add_argument('--batch-size', type=positive_int, default=32, help='images per U-Net call')
    parser.add_argument('--pixel-baseline', action='store_true',
                        help='also fit the probe on the raw preprocessed pixels of the same splits')
    parser.add_argument('--labels-per-class', type=positive_int, nargs='+', default=[],
                        help='also fit every cell (and the pixel baseline) on only the first N train samples of '
                        'each class: a few-label row per N')
    parser.add_argument('--seed', type=int, default=0, help='seed of the probes (the model is initialised with '
                        'the config\'s randomness.seed, the same for both splits)')
    add_device_arguments(parser)
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a finished sweep\'s tables and heatmap in --work-dir (a cache there of other '
                        'features is still refused: delete it, or choose another --work-dir)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()

    cfg = load_config(args.config, args.cfg_options)
    cfg.model.backbone.update(
        timesteps=args.timesteps, out_strides=None, out_blocks=args.blocks, timestep_fusion='stack',
        projection_channels=None)
    # resolve the grid's blocks on a weightless copy: unknown blocks fail here, listing the valid ones
    with torch.device('meta'):
        taps = DiffusionUNetBackbone(**{k: v for k, v in cfg.model.backbone.items() if k not in ('type', 'init_cfg')})
    names = [tap.name for tap in resolve_taps(taps.taps, args.blocks, taps.family.name)]

    work_dir = Path(args.work_dir)
    check_output(args.work_dir, data_inputs(cfg) + model_inputs(cfg) + [args.config], what='--work-dir')
    # a finished sweep (its sweep.json) is replaced only when asked; an unfinished one resumes from its caches
    check_output_free(str(work_dir / 'sweep.json'), args.overwrite)
    work_dir.mkdir(parents=True, exist_ok=True)
    device = join_process_group(args.launcher, check_device(args.device or default_device()))
    caches = {split: extract_split(cfg, split, str(work_dir / 'cache' / split), device=device,
                                   num_workers=args.num_workers, batch_size=args.batch_size, pool_size=args.pool)
              for split in ('train', 'val')}
    rank, _ = get_dist_info()
    leave_process_group()  # the probes are small: rank 0 fits them alone
    if rank != 0:
        return
    labels = {split: torch.from_numpy(np.array(caches[split].labels)) for split in ('train', 'val')}
    # the train samples of each fit: all of them, then the first N of each class per few-label row
    subsets = {None: slice(None), **{count: torch.from_numpy(first_per_class(labels['train'].numpy(), count))
                                     for count in args.labels_per_class}}
    accuracy = {count: np.zeros((len(args.blocks), len(args.timesteps))) for count in subsets}
    for row, name in enumerate(names):
        level = caches['train'].manifest['taps'].index(name)
        train, val = (torch.from_numpy(np.asarray(caches[split].level(level))) for split in ('train', 'val'))
        for column in range(len(args.timesteps)):
            for count, subset in subsets.items():
                accuracy[count][row, column], _ = fit_linear_probe(
                    train[subset, column], labels['train'][subset], val[:, column], labels['val'],
                    epochs=args.epochs, seed=args.seed)
            print(f'block {args.blocks[row]} ({name}), t={args.timesteps[column]}: '
                  f'top-1 {accuracy[None][row, column]:.2f}')
    pixel_accuracy = {count: None for count in subsets}
    if args.pixel_baseline:
        (train_pixels, train_labels), (val_pixels, val_labels) = (
            preprocessed_pixels(cfg, split, num_workers=loader_workers(cfg, args.num_workers))
            for split in ('train', 'val'))
        for count, subset in subsets.items():
            pixel_accuracy[count], _ = fit_linear_probe(train_pixels[subset], train_labels[subset], val_pixels,
                                                        val_labels, epochs=args.epochs, seed=args.seed)
    few_labels = {count: dict(top1=accuracy[count].round(2).tolist(), pixel_top1=pixel_accuracy[count],
                              best=best_cell(accuracy[count], args.timesteps, args.blocks, names))
                  for count in args.labels_per_class}
    table = write_report(accuracy[None], args.timesteps, args.blocks, work_dir, pixel_accuracy[None], few_labels)
    best = best_cell(accuracy[None], args.timesteps, args.blocks, names)
    init_cfg = cfg.model.backbone.get('init_cfg') or {}
    (work_dir / 'sweep.json').write_text(json.dumps(dict(
        config=args.config, checkpoint=init_cfg.get('checkpoint'), timesteps=args.timesteps, blocks=args.blocks,
        taps=names, pool=args.pool, epochs=args.epochs, seed=args.seed, top1=accuracy[None].round(2).tolist(),
        best=best, pixel_top1=pixel_accuracy[None], few_labels=few_labels), indent=1))
    print(f'\n{table}\n\nbest cell: block {best["block"]} at t={best["timestep"]}, top-1 {best["top1"]:.2f}%  '
          f'(table, CSV, JSON and heatmap in {work_dir})')


if __name__ == '__main__':
    main()
