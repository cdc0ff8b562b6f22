"""Write the generated shapes datasets the demos train on.

    python tools/misc/make_demo_data.py data/demo_shapes                  # detection, COCO format (make demo)
    python tools/misc/make_demo_data.py data/demo_shapes_seg --task seg   # segmentation, ADE20K layout (demo-seg)
    python tools/misc/make_demo_data.py data/demo_shapes_cls --task cls   # classification, CustomDataset folders

Options: --num-train, --num-val (images; per class for cls), --size, --max-objects (each >= 1), --seed. A root that
holds anything (an earlier demo dataset, or a dataset of yours) is written into only with --overwrite.
"""
import argparse

from mmdiff.apis.runner_config import positive_int
from mmdiff.datasets.synthetic_shapes import (make_shapes_classification_dataset, make_shapes_dataset,
                                              make_shapes_segmentation_dataset)
from mmdiff.utils.output_paths import check_output_free

# task -> (writer, default train count, default val count, default size)
TASKS = {
    'det': (make_shapes_dataset, 600, 150, 128),
    'seg': (make_shapes_segmentation_dataset, 300, 100, 128),
    'cls': (make_shapes_classification_dataset, 40, 20, 64),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', help='output folder')
    parser.add_argument('--task', choices=sorted(TASKS), default='det')
    parser.add_argument('--num-train', type=positive_int)
    parser.add_argument('--num-val', type=positive_int)
    parser.add_argument('--size', type=positive_int, help='image side in pixels')
    parser.add_argument('--max-objects', type=positive_int, default=4, help='most shapes per image (det, seg)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--overwrite', action='store_true', help='write into a root that holds files')
    args = parser.parse_args()
    check_output_free(args.root, args.overwrite)
    write, num_train, num_val, size = TASKS[args.task]
    counts = tuple(given if given is not None else default
                   for given, default in ((args.num_train, num_train), (args.num_val, num_val), (args.size, size)))
    if args.task == 'cls':
        outputs = write(args.root, *counts, seed=args.seed)
    else:
        outputs = write(args.root, *counts, max_objects=args.max_objects, seed=args.seed)
    for split, path in outputs.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    main()
