"""Tabulate the last logged value of some metrics over several training runs' work dirs.

    python tools/analysis_tools/summarize_runs.py WORK_DIR [WORK_DIR ...] --metric accuracy/top1 [--metric NAME ...]
        [--out FILE] [--overwrite]

Each work dir is read through its newest run's ``<timestamp>/vis_data/scalars.json`` (mmengine's LocalVisBackend,
which the OpenMMLab default runtimes use): for each metric, the value of the last line that logs it, with its step.
Prints a Markdown table (one row per run) and writes it to ``--out`` when given.
"""
import argparse
import json
import os.path as osp
from glob import glob
from typing import Dict, List, Optional, Sequence, Tuple

from mmdiff.utils.output_paths import check_output_file, check_output_free, replace_link


def last_values(work_dir: str, metrics: Sequence[str]) -> Dict[str, Optional[Tuple[float, int]]]:
    """The last logged ``(value, step)`` of each metric in the newest run of ``work_dir`` (None when never logged).

    Raises:
        FileNotFoundError: When ``work_dir`` holds no ``*/vis_data/scalars.json``.
    """
    logs = sorted(glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not logs:
        raise FileNotFoundError(f'{work_dir!r} holds no <timestamp>/vis_data/scalars.json; is it the work dir of a '
                                f'tools/train.py run with the LocalVisBackend?')
    found: Dict[str, Optional[Tuple[float, int]]] = {metric: None for metric in metrics}
    with open(logs[-1]) as file:
        for line in file:
            record = json.loads(line)
            for metric in metrics:
                if metric in record:
                    found[metric] = (float(record[metric]), int(record.get('step', -1)))
    return found


def summary_table(work_dirs: Sequence[str], metrics: Sequence[str]) -> str:
    """A Markdown table with one row per work dir and one ``value (step)`` column per metric."""
    rows: List[str] = [
        '| run | ' + ' | '.join(metrics) + ' |',
        '|---|' + '---|' * len(metrics),
    ]
    for work_dir in work_dirs:
        values = last_values(work_dir, metrics)
        cells = [f'{value[0]:.4g} (step {value[1]})' if value is not None else '-' for value in values.values()]
        rows.append(f'| {osp.basename(osp.normpath(work_dir))} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(rows) + '\n'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('work_dirs', nargs='+', help='work dirs of tools/train.py runs')
    parser.add_argument('--metric', action='append', required=True, dest='metrics',
                        help='a logged scalar, e.g. accuracy/top1; repeat for several')
    parser.add_argument('--out', help='also write the table to this Markdown file')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out')
    args = parser.parse_args()
    if args.out:
        check_output_file(args.out)
        check_output_free(args.out, args.overwrite)
    table = summary_table(args.work_dirs, args.metrics)
    print(table, end='')
    if args.out:
        replace_link(args.out)
        with open(args.out, 'w') as file:
            file.write(table)


if __name__ == '__main__':
    main()
