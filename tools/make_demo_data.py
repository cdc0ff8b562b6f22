"""Write the synthetic shapes dataset (COCO instance format) used by the detection demo.

    python tools/make_demo_data.py data/demo_shapes [--num-train 600] [--num-val 150] [--size 128] [--seed 0]
"""
import argparse

from mmdiff.datasets.synthetic_shapes import make_shapes_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('root', help='output folder')
    parser.add_argument('--num-train', type=int, default=600)
    parser.add_argument('--num-val', type=int, default=150)
    parser.add_argument('--size', type=int, default=128, help='image side in pixels')
    parser.add_argument('--max-objects', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    files = make_shapes_dataset(args.root, args.num_train, args.num_val, args.size, args.max_objects, args.seed)
    for split, path in files.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    main()
