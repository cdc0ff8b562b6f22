"""Draw images from a DiffusionPretrainer checkpoint and save them as a PNG grid.

    python tools/misc/sample_diffusion.py CONFIG CHECKPOINT --out samples.png [--num-images 64] [--sampler ddim]
        [--steps 50] [--seed 0] [--weights ema|raw] [--device cuda] [--overwrite] [--cfg-options k=v ...]

CONFIG is the pre-training config (its model is a DiffusionPretrainer); the sampler (diffusers' DDIM or DDPM) is
built from its noise scheduler. A class-conditional U-Net draws the classes in turn; the grid is square. An
existing --out (or a link there) is replaced only with --overwrite, as a file (never the file a link points to),
and never when it is the config or the checkpoint.
"""
import argparse

from mmengine.config import DictAction
from mmengine.registry import MODELS

from mmdiff.apis.runner_config import check_device, default_device, positive_int
from mmdiff.models import DiffusionPretrainer
from mmdiff.utils.checkpoint_weights import WEIGHT_KINDS, checkpoint_weights
from mmdiff.utils.config_scope import enter_config_scope, load_config
from mmdiff.utils.diffusion_sampling import SAMPLERS, sample_images, save_image_grid
from mmdiff.utils.output_paths import check_output, check_output_file, check_output_free, replace_link
from mmdiff.utils.safe_checkpoint import load_checkpoint_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='PNG file of the grid')
    parser.add_argument('--num-images', type=positive_int, default=64)
    parser.add_argument('--sampler', choices=sorted(SAMPLERS), default='ddim')
    parser.add_argument('--steps', type=positive_int, default=50, help='denoising steps')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--weights', choices=WEIGHT_KINDS, default='ema',
                        help='the run\'s EMA weights (default) or its raw trained weights')
    parser.add_argument('--device', default=None, help="'cuda', 'cuda:N' or 'cpu'; default: 'cuda' when available")
    parser.add_argument('--overwrite', action='store_true', help='replace an existing --out')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config entries, key=value')
    args = parser.parse_args()
    check_output_file(args.out)
    check_output(args.out, [args.config, args.checkpoint])
    check_output_free(args.out, args.overwrite)

    cfg = load_config(args.config, args.cfg_options)
    enter_config_scope(cfg)
    model = MODELS.build(cfg.model)
    if not isinstance(model, DiffusionPretrainer):
        raise ValueError(f'{args.config} builds a {type(model).__name__}; give a pre-training config whose model '
                         f'is a DiffusionPretrainer')
    weights = checkpoint_weights(load_checkpoint_file(args.checkpoint), args.weights, repr(args.checkpoint))
    model.load_state_dict(weights)
    model.to(check_device(args.device or default_device()))
    images = sample_images(model.unet, model.noise_scheduler, args.num_images, args.sampler, args.steps,
                           args.seed)
    replace_link(args.out)
    save_image_grid(images, args.out)
    print(f'saved {args.num_images} samples ({args.sampler}, {args.steps} steps, {args.weights} weights) to '
          f'{args.out}')


if __name__ == '__main__':
    main()
