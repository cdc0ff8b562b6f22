"""Give a COCO-format set without a validation split (COCO128) the layout mmdiff's COCO configs read.

    python tools/misc/coco_holdout_split.py SOURCE OUT [--val-every 4]
        [--ann-file annotations/instances_train2017.json] [--img-dir train2017] [--overwrite]
    MMDIFF_COCO_ROOT=OUT/ python tools/train.py configs/mask_rcnn_diffusion_coco.py

SOURCE holds the annotation file and the image folder (COCO128: ``annotations/instances_train2017.json`` and
``train2017/``). OUT gets ``annotations/instances_train2017.json`` and ``annotations/instances_val2017.json``,
a fixed split by image id (every ``--val-every``-th image in id order is held out: COCO128's 128 images give 96
train and 32 val), with each split's images and annotations and all categories, and ``train2017`` and ``val2017``
as links to SOURCE's image folder, so no image is copied. SOURCE is only read; OUT may not lie in it, and an OUT
that holds files is written into only with --overwrite.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

from mmdiff.apis.runner_config import positive_int
from mmdiff.utils.output_paths import check_output, check_output_free

SPLITS = ('train2017', 'val2017')


def holdout_split(coco: Dict, val_every: int) -> Tuple[Dict, Dict]:
    """Split a COCO dict by image id: every ``val_every``-th image (in id order, from the first) is held out.

    Args:
        coco (dict): A COCO instances dict (``images``, ``annotations``, ``categories``, ...).
        val_every (int): One image in this many goes to the held-out split.

    Returns:
        tuple[dict, dict]: The train and the held-out dicts; each keeps every category and the other top-level
        entries (``info``, ``licenses``).
    """
    ids = sorted(image['id'] for image in coco['images'])
    held_out = set(ids[::val_every])
    parts: List[Dict] = []
    for keep in (lambda image_id: image_id not in held_out, lambda image_id: image_id in held_out):
        parts.append(dict(coco, images=[image for image in coco['images'] if keep(image['id'])],
                          annotations=[ann for ann in coco['annotations'] if keep(ann['image_id'])]))
    return parts[0], parts[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('source', help='folder holding the annotation file and the image folder')
    parser.add_argument('out', help='the data root to write (MMDIFF_COCO_ROOT)')
    parser.add_argument('--val-every', type=positive_int, default=4, help='hold out one image in this many')
    parser.add_argument('--ann-file', default='annotations/instances_train2017.json', help='relative to SOURCE')
    parser.add_argument('--img-dir', default='train2017', help='the image folder, relative to SOURCE')
    parser.add_argument('--overwrite', action='store_true', help='write into an OUT that holds files')
    args = parser.parse_args()
    check_output(args.out, [args.source], what='OUT')
    check_output_free(args.out, args.overwrite)
    if args.val_every < 2:
        raise ValueError(f'--val-every {args.val_every} would hold out every image; give 2 or more')
    with open(osp.join(args.source, args.ann_file)) as f:
        coco = json.load(f)
    train, val = holdout_split(coco, args.val_every)
    os.makedirs(osp.join(args.out, 'annotations'), exist_ok=True)
    for split, part in zip(SPLITS, (train, val)):
        with open(osp.join(args.out, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(part, f)
        link = osp.join(args.out, split)
        if osp.lexists(link) and not osp.islink(link):
            raise FileExistsError(f'{link!r} is a folder of its own; this tool writes a link there: choose another OUT')
        if osp.islink(link):
            os.unlink(link)
        os.symlink(osp.abspath(osp.join(args.source, args.img_dir)), link)
        print(f'{split}: {len(part["images"])} images, {len(part["annotations"])} annotations')
    print(f'MMDIFF_COCO_ROOT={osp.abspath(args.out)}/')


if __name__ == '__main__':
    main()
