"""Show what each tapped block encodes at each timestep, before training anything on it.

    python tools/feature_tools/visualize_features.py CONFIG IMAGE [IMAGE ...] --out DIR [--size 256] [--overwrite]
        [--cfg-options k=v ...]

For every image writes DIR/<image name>.png with one row per tapped level of the config's DiffusionUNetBackbone:
the input (labelled with the block and its stride), then one panel per timestep showing the first three PCA
components of the feature map as RGB, upsampled to the input size. DIR may not be or hold an input; a picture
already there is replaced only with --overwrite.
"""
import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.registry import MODELS

from mmdiff.apis.feature_pca import pca_rgb
from mmdiff.apis.runner_config import positive_int
from mmdiff.utils.config_scope import enter_config_scope, load_config
from mmdiff.utils.output_paths import check_output, check_output_free, replace_link


def label(panel: np.ndarray, text: str) -> np.ndarray:
    panel = panel.copy()
    cv2.rectangle(panel, (0, 0), (panel.shape[1], 16), (0, 0, 0), thickness=-1)
    cv2.putText(panel, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return panel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='any config whose model.backbone is a DiffusionUNetBackbone')
    parser.add_argument('images', nargs='+')
    parser.add_argument('--out', required=True)
    parser.add_argument('--size', type=positive_int, default=256, help='images are resized to SIZE x SIZE')
    parser.add_argument('--overwrite', action='store_true', help='replace earlier pictures of the same images')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    out = Path(args.out)
    # the pictures never land on what the run reads (the images' folders, the config, the weights)
    check_output(args.out, [*args.images, args.config], what='--out')
    targets = [out / f'{Path(path).stem}.png' for path in args.images]
    for target in targets:
        check_output_free(str(target), args.overwrite)

    cfg = load_config(args.config, args.cfg_options)
    enter_config_scope(cfg)
    backbone_cfg = dict(cfg.model.backbone, timestep_fusion='stack', projection_channels=None)
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    backbone.eval()
    out.mkdir(parents=True, exist_ok=True)
    for path, target in zip(args.images, targets):
        image = cv2.imread(path)
        if image is None:
            raise FileNotFoundError(f'cannot read image {path!r}')
        image = cv2.resize(image, (args.size, args.size), interpolation=cv2.INTER_AREA)
        rgb = torch.from_numpy(image[..., ::-1].copy()).permute(2, 0, 1).float() / 127.5 - 1
        with torch.no_grad():
            features = backbone(rgb[None])  # each (1, T, C, h, w)
        rows = []
        for level, feature in zip(backbone.feature_info, features):
            panels = [label(image, f'{level.block} (stride {level.stride})')]
            for index, t in enumerate(level.timesteps):
                pca = cv2.resize(pca_rgb(feature[0, index])[..., ::-1], (args.size, args.size),
                                 interpolation=cv2.INTER_NEAREST)
                panels.append(label(pca, f't={t}'))
            rows.append(np.concatenate(panels, axis=1))
        replace_link(str(target))
        cv2.imwrite(str(target), np.concatenate(rows, axis=0))
        print(f'{path} -> {target}')


if __name__ == '__main__':
    main()
