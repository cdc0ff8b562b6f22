"""Write the generated shapes datasets the demos train on.

    python tools/misc/make_demo_data.py data/demo_shapes                    # detection, COCO format (make demo)
    python tools/misc/make_demo_data.py data/demo_shapes_seg --task seg     # segmentation, ADE20K layout (make
    demo-seg)
    python tools/misc/make_demo_data.py data/demo_shapes_cls --task cls     # classification, CustomDataset folders

Options: --num-train, --num-val (images; per class for cls), --size, --max-objects, --seed.
"""
import argparse

from mmdiff.datasets.synthetic_shapes import (make_shapes_classification_dataset, make_shapes_dataset,
                                              make_shapes_segmentation_dataset)

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
    parser.add_argument('--num-train', type=int)
    parser.add_argument('--num-val', type=int)
    parser.add_argument('--size', type=int, help='image side in pixels')
    parser.add_argument('--max-objects', type=int, default=4, help='most shapes per image (det, seg)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    write, num_train, num_val, size = TASKS[args.task]
    counts = (args.num_train or num_train, args.num_val or num_val, args.size or size)
    if args.task == 'cls':
        outputs = write(args.root, *counts, seed=args.seed)
    else:
        outputs = write(args.root, *counts, max_objects=args.max_objects, seed=args.seed)
    for split, path in outputs.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    main()
