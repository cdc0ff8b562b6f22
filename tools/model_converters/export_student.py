"""Write the student backbone of a RepFusion distillation checkpoint for other OpenMMLab configs to load.

    python tools/model_converters/export_student.py CHECKPOINT --out STUDENT.pth [--weights {ema,raw}]

The file holds ``state_dict`` with the student's weights under ``backbone.`` (the layout of an mmpretrain
classifier checkpoint), so mmpretrain, mmdet and mmseg configs load it with

    backbone=dict(..., init_cfg=dict(type='Pretrained', checkpoint='STUDENT.pth', prefix='backbone.'))

The teacher, projector, policy and heads are left out.
"""
import argparse
import os
import os.path as osp

import torch

from mmdiff.utils.checkpoint_weights import WEIGHT_KINDS, checkpoint_weights
from mmdiff.utils.output_paths import check_output, check_output_file, check_output_free, replace_link
from mmdiff.utils.safe_checkpoint import load_checkpoint_file

PREFIX = 'backbone.'


def export_student(checkpoint_path: str, out: str, weights: str = 'ema') -> int:
    """Export the ``backbone.`` weights of a distillation checkpoint; returns how many tensors were written.

    Raises:
        FileNotFoundError: When the checkpoint does not exist.
        ValueError: When it has no ``backbone.`` weights or holds a teacher (it is not a RepFusion checkpoint).
    """
    if not osp.isfile(checkpoint_path):
        raise FileNotFoundError(f'checkpoint {checkpoint_path!r} does not exist')
    checkpoint = load_checkpoint_file(checkpoint_path)
    state = checkpoint_weights(checkpoint, weights, repr(checkpoint_path))
    if not any(key.startswith('teacher.') for key in state):
        prefixes = sorted({key.split('.')[0] + '.' for key in state})
        raise ValueError(f'{checkpoint_path!r} is not a RepFusionDistiller checkpoint (no teacher. weights; its '
                         f'top-level modules are {prefixes})')
    student = {key: value for key, value in state.items() if key.startswith(PREFIX)}
    if not student:
        raise ValueError(f'{checkpoint_path!r} has no {PREFIX} (student) weights')
    meta = dict(source=osp.abspath(checkpoint_path), weights=weights, iter=checkpoint.get('meta', {}).get('iter'))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(dict(state_dict=student, meta=meta), out)
    return len(student)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('checkpoint', help='a RepFusionDistiller training checkpoint')
    parser.add_argument('--out', required=True, help='where to write the student weights')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out (refused otherwise)')
    parser.add_argument('--weights', choices=WEIGHT_KINDS, default='ema',
                        help='the EMA or the raw weights, where the run kept an EMA (default: ema)')
    args = parser.parse_args()
    check_output_file(args.out)
    check_output(args.out, [args.checkpoint])
    check_output_free(args.out, args.overwrite)
    replace_link(args.out)
    count = export_student(args.checkpoint, args.out, args.weights)
    print(f'wrote {count} student tensors (prefix {PREFIX!r}) to {args.out}')


if __name__ == '__main__':
    main()
