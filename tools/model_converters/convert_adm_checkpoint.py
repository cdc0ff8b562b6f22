"""Convert a guided-diffusion (ADM) U-Net checkpoint for mmdiff, or an mmdiff/diffusers U-Net back to ADM.

ADM -> mmdiff (the architecture is read from the weights; heads and resolution come from flags or a preset)::

    python tools/model_converters/convert_adm_checkpoint.py 256x256_diffusion_uncond.pt work_dirs/adm-256u.pth \\
        --preset 256x256_diffusion_uncond
    python tools/model_converters/convert_adm_checkpoint.py 64x64_diffusion.pt work_dirs/adm-64c --preset
    64x64_diffusion

``OUT`` ending in ``.pth``/``.pt`` is an mmdiff backbone checkpoint (``init_cfg=dict(type='Pretrained',
checkpoint=OUT)`` with the printed ``arch``); any other ``OUT`` is a diffusers pipeline folder with ``unet/`` and
``scheduler/`` (``model_dir=OUT, arch=None``). Every ADM key must be used exactly once and every U-Net key filled,
else nothing is written.

mmdiff/diffusers -> ADM::

    python tools/model_converters/convert_adm_checkpoint.py work_dirs/adm-256u.pth adm.pt --to-adm
"""
import argparse
import os
import sys
from typing import Dict, Tuple

import torch
from diffusers import DDPMScheduler, UNet2DModel

from mmdiff.models.backbones.unet.presets import UNET_PRESETS
from mmdiff.models.backbones.unet.adm_architecture import (GUIDED_DIFFUSION_MODELS, check_adm_flags,
                                                      infer_adm_architecture)
from mmdiff.models.backbones.unet.adm_key_map import convert_adm_to_diffusers, convert_diffusers_to_adm
from mmdiff.utils.output_paths import check_output, check_output_free
from mmdiff.utils.safe_checkpoint import load_checkpoint_file

SCHEDULES = {'linear': 'linear', 'cosine': 'squaredcos_cap_v2'}
CHECKPOINT_SUFFIXES = ('.pth', '.pt')


def _ints(text: str) -> Tuple[int, ...]:
    return tuple(int(value) for value in text.split(','))


def _bool(text: str) -> bool:
    if text.lower() not in ('true', 'false'):
        raise argparse.ArgumentTypeError(f'expected True or False, got {text!r}')
    return text.lower() == 'true'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', help='ADM state dict (.pt), or with --to-adm an mmdiff checkpoint / diffusers folder')
    parser.add_argument('out', help='.pth/.pt: an mmdiff checkpoint; otherwise a diffusers folder')
    parser.add_argument('--to-adm', action='store_true', help='convert an mmdiff/diffusers U-Net to ADM instead')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output (refused otherwise)')
    parser.add_argument('--preset', choices=sorted(GUIDED_DIFFUSION_MODELS),
                        help="the MODEL_FLAGS of a released guided-diffusion model (guided-diffusion's README)")
    flags = parser.add_argument_group('guided-diffusion flags (override the preset; checked against the weights)')
    flags.add_argument('--image-size', type=int)
    flags.add_argument('--num-channels', type=int)
    flags.add_argument('--channel-mult', type=_ints, help='e.g. 1,1,2,2,4,4')
    flags.add_argument('--num-res-blocks', type=int)
    flags.add_argument('--attention-resolutions', type=_ints, help='e.g. 32,16,8')
    flags.add_argument('--num-head-channels', type=int)
    flags.add_argument('--num-heads', type=int)
    flags.add_argument('--learn-sigma', type=_bool)
    flags.add_argument('--class-cond', type=_bool)
    flags.add_argument('--use-scale-shift-norm', type=_bool)
    flags.add_argument('--resblock-updown', type=_bool)
    flags.add_argument('--use-new-attention-order', type=_bool)
    flags.add_argument('--noise-schedule', choices=sorted(SCHEDULES))
    flags.add_argument('--diffusion-steps', type=int)
    return parser.parse_args()


def gather_flags(args: argparse.Namespace) -> dict:
    """The preset's flags, overridden by the ones given on the command line."""
    flags = dict(GUIDED_DIFFUSION_MODELS[args.preset]) if args.preset else {}
    names = ('image_size', 'num_channels', 'channel_mult', 'num_res_blocks', 'attention_resolutions',
             'num_head_channels', 'num_heads', 'learn_sigma', 'class_cond', 'use_scale_shift_norm',
             'resblock_updown', 'use_new_attention_order', 'noise_schedule', 'diffusion_steps')
    for name in names:
        if getattr(args, name) is not None:
            flags[name] = getattr(args, name)
    if args.num_heads is not None and args.num_head_channels is None:
        flags.pop('num_head_channels', None)
    if args.num_head_channels is not None and args.num_heads is None:
        flags.pop('num_heads', None)
    return flags


def load_adm_state_dict(path: str) -> Dict[str, torch.Tensor]:
    return load_checkpoint_file(path)


def adm_to_mmdiff(args: argparse.Namespace) -> None:
    state_dict = load_adm_state_dict(args.src)
    arch = infer_adm_architecture(state_dict)
    flags = gather_flags(args)
    check_adm_flags(arch, flags)
    missing = [name for name in ('image_size', ) if name not in flags]
    if 'num_head_channels' not in flags and 'num_heads' not in flags:
        missing.append('num_head_channels or num_heads')
    if missing:
        raise ValueError(f'the weights do not record {missing}: give them as flags (--image-size, '
                         f'--num-head-channels / --num-heads) or pick a --preset from '
                         f'{sorted(GUIDED_DIFFUSION_MODELS)}')
    print(f'architecture read from the weights: {arch}')
    config = arch.unet_config(flags['image_size'], flags.get('num_head_channels'), flags.get('num_heads'))
    new_order = flags.get('use_new_attention_order', False)
    converted = convert_adm_to_diffusers(state_dict, config, new_order)
    print(f'converted all {len(state_dict)} ADM tensors into {len(converted)} U-Net tensors '
          f'(attention order: {"new" if new_order else "legacy"})')
    preset = next((name for name, preset in UNET_PRESETS.items() if preset == config), None)
    if args.out.endswith(CHECKPOINT_SUFFIXES):
        meta = dict(arch=config, arch_preset=preset, converted_from=os.path.abspath(args.src), adm_flags=flags)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        torch.save(dict(meta=meta, state_dict={f'unet.{key}': value for key, value in converted.items()}), args.out)
        arch_text = repr(preset) if preset else repr(config)
        print(f'wrote {args.out}; use it as\n  backbone=dict(type=\'DiffusionUNetBackbone\', arch={arch_text}, '
              f'init_cfg=dict(type=\'Pretrained\', checkpoint={args.out!r}))')
    else:
        unet = UNet2DModel(**config)
        unet.load_state_dict(converted, strict=True)
        unet.save_pretrained(os.path.join(args.out, 'unet'))
        DDPMScheduler(num_train_timesteps=flags.get('diffusion_steps', 1000),
                      beta_schedule=SCHEDULES[flags.get('noise_schedule', 'linear')]).save_pretrained(
                          os.path.join(args.out, 'scheduler'))
        print(f'wrote the diffusers folder {args.out}; use it as\n  backbone=dict(type=\'DiffusionUNetBackbone\', '
              f'arch=None, model_dir={args.out!r})')


def load_mmdiff_unet(path: str) -> Tuple[dict, Dict[str, torch.Tensor]]:
    """The U-Net config and weights of an mmdiff checkpoint or a diffusers folder."""
    if os.path.isdir(path):
        subfolder = 'unet' if os.path.isdir(os.path.join(path, 'unet')) else None
        unet = UNet2DModel.from_pretrained(path, subfolder=subfolder, local_files_only=True)
        return dict(unet.config), unet.state_dict()
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path!r} is neither an mmdiff checkpoint nor a diffusers folder')
    checkpoint = load_checkpoint_file(path)
    arch = checkpoint.get('meta', {}).get('arch') if isinstance(checkpoint, dict) else None
    if arch is None:
        raise ValueError(f'{path!r} has no meta.arch (the U-Net config written by this tool); convert a diffusers '
                         f'folder instead')
    state = checkpoint['state_dict']
    return arch, {key[len('unet.'):]: value for key, value in state.items() if key.startswith('unet.')}


def mmdiff_to_adm(args: argparse.Namespace) -> None:
    config, state_dict = load_mmdiff_unet(args.src)
    new_order = bool(args.use_new_attention_order)
    converted = convert_diffusers_to_adm(state_dict, config, new_order)
    torch.save(converted, args.out)
    print(f'wrote {len(converted)} ADM tensors to {args.out} (attention order: {"new" if new_order else "legacy"})')


def main() -> None:
    args = parse_args()
    try:
        check_output(args.out, [args.src])
        check_output_free(args.out, args.overwrite)
        (mmdiff_to_adm if args.to_adm else adm_to_mmdiff)(args)
    except (ValueError, OSError) as error:  # refusals: unsafe, missing, a folder, in the way
        sys.exit(f'convert_adm_checkpoint: {error}')


if __name__ == '__main__':
    main()
