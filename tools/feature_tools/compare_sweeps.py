"""Compare timestep x block sweeps (tools/feature_tools/sweep_timesteps_blocks.py outputs), e.g. pretrained vs random
weights.

    python tools/feature_tools/compare_sweeps.py work_dirs/sweep_pretrained work_dirs/sweep_random \
        --names pretrained random [--out work_dirs/summary.md] [--overwrite]

Reads each WORK_DIR/sweep.json (they must share timesteps, blocks and held-out split) and writes a Markdown
summary: per run the best cell, its top-1 and the margin to the first run; where along t (best block per
timestep) and along depth (best timestep per block) each run peaks; the raw-pixel baseline where a sweep has
one; and the best cell of each few-label row (--labels-per-class) where the sweeps have them.
"""
import argparse
import json
from pathlib import Path
from typing import List

import numpy as np

from mmdiff.utils.output_paths import check_output, check_output_file, check_output_free, replace_link


def load_sweep(folder: str) -> dict:
    path = Path(folder) / 'sweep.json'
    if not path.is_file():
        raise FileNotFoundError(f'{path} does not exist; run tools/feature_tools/sweep_timesteps_blocks.py with '
                                f'--work-dir {folder}')
    return json.loads(path.read_text())


def summarize(sweeps: List[dict], names: List[str]) -> str:
    """The Markdown summary of sweeps over the same grid, the first one being the reference."""
    grid = [(sweep['timesteps'], sweep['blocks']) for sweep in sweeps]
    if any(g != grid[0] for g in grid):
        raise ValueError(f'the sweeps cover different grids (timesteps, blocks): {dict(zip(names, grid))}')
    timesteps, blocks = grid[0]
    reference = sweeps[0]['best']['top1']
    lines = ['| run | best cell | top-1 (%) | vs ' + names[0] + ' | mean over cells |', '|---|---|---|---|---|']
    for name, sweep in zip(names, sweeps):
        best, top1 = sweep['best'], np.asarray(sweep['top1'])
        lines.append(f'| {name} | block {best["block"]}, t={best["timestep"]} | {best["top1"]:.2f} | '
                     f'{best["top1"] - reference:+.2f} | {top1.mean():.2f} |')
    pixels = [sweep['pixel_top1'] for sweep in sweeps if sweep.get('pixel_top1') is not None]
    if pixels:
        lines.append(f'| raw pixels | - | {pixels[0]:.2f} | {pixels[0] - reference:+.2f} | - |')
    lines += ['', '**Along t** (top-1 of the best block at each timestep)', '',
              '| run | ' + ' | '.join(f't={t}' for t in timesteps) + ' |', '|---|' + '---|' * len(timesteps)]
    lines += [f'| {name} | ' + ' | '.join(f'{value:.2f}' for value in np.asarray(sweep['top1']).max(0)) + ' |'
              for name, sweep in zip(names, sweeps)]
    lines += ['', '**Along depth** (top-1 of the best timestep at each block)', '',
              '| run | ' + ' | '.join(str(block) for block in blocks) + ' |', '|---|' + '---|' * len(blocks)]
    lines += [f'| {name} | ' + ' | '.join(f'{value:.2f}' for value in np.asarray(sweep['top1']).max(1)) + ' |'
              for name, sweep in zip(names, sweeps)]
    counts = sorted({int(count) for sweep in sweeps for count in sweep.get('few_labels') or {}})
    if counts:
        lines += ['', '**Few labels** (top-1 of the best cell with the probe fitted on N train samples per class)', '',
                  '| run | ' + ' | '.join(f'{count} per class' for count in counts) + ' |',
                  '|---|' + '---|' * len(counts)]
        lines += [f'| {name} | ' + ' | '.join(few_label_cell(sweep, count) for count in counts) + ' |'
                  for name, sweep in zip(names, sweeps)]
        with_pixels = [sweep for sweep in sweeps if sweep.get('pixel_top1') is not None and sweep.get('few_labels')]
        if with_pixels:
            rows = with_pixels[0]['few_labels']
            lines.append('| raw pixels | ' + ' | '.join(
                f'{rows[str(count)]["pixel_top1"]:.2f}' if str(count) in rows else '-' for count in counts) + ' |')
    return '\n'.join(lines) + '\n'


def few_label_cell(sweep: dict, count: int) -> str:
    """The best cell of a sweep's few-label row with ``count`` samples per class, or '-' where it has none."""
    row = (sweep.get('few_labels') or {}).get(str(count))
    if row is None:
        return '-'
    best = row['best']
    return f'{best["top1"]:.2f} (block {best["block"]}, t={best["timestep"]})'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('sweeps', nargs='+', help='work dirs of tools/feature_tools/sweep_timesteps_blocks.py runs')
    parser.add_argument('--names', nargs='+', help='a name per sweep; defaults to the folder names')
    parser.add_argument('--out', help='also write the summary to this Markdown file')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out')
    args = parser.parse_args()
    if args.out:
        check_output_file(args.out)
        check_output(args.out, [str(Path(folder) / 'sweep.json') for folder in args.sweeps])
        check_output_free(args.out, args.overwrite)
    names = args.names or [Path(folder).name for folder in args.sweeps]
    if len(names) != len(args.sweeps):
        raise ValueError(f'{len(names)} names for {len(args.sweeps)} sweeps; give one name per sweep')
    summary = summarize([load_sweep(folder) for folder in args.sweeps], names)
    print(summary)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        replace_link(args.out)
        Path(args.out).write_text(summary)


if __name__ == '__main__':
    main()
