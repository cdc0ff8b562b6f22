"""Backbone smoke demo: build a tiny DiffusionUNetBackbone, list its taps and print the pyramid it returns.

    python tools/misc/backbone_demo.py [--arch adm-tiny] [--size 96 80]
"""
import argparse

import torch

from mmdiff.models import DiffusionUNetBackbone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--arch', default='adm-tiny', choices=sorted(DiffusionUNetBackbone.arch_settings))
    parser.add_argument('--size', type=int, nargs=2, default=(96, 80), metavar=('H', 'W'))
    args = parser.parse_args()

    backbone = DiffusionUNetBackbone(arch=args.arch, timesteps=(90, 150))
    print(f'U-Net {args.arch}: the blocks it can tap\n{backbone.describe_taps()}\n')
    print('declared outputs:')
    for level in backbone.feature_info:
        print(f'  {level}')
    images = torch.rand(2, 3, *args.size) * 2 - 1
    with torch.no_grad():
        features = backbone(images)
    print(f'\nfeatures of a batch {tuple(images.shape)}:')
    for level, feature in zip(backbone.feature_info, features):
        print(f'  stride {level.stride:>2}: {tuple(feature.shape)}')


if __name__ == '__main__':
    main()
