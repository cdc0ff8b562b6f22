"""Every preset's and option's outputs stay what they were before the backbone's core was shared (issue 33).

``pinned_backbone_outputs.pt`` (beside this file) holds the outputs of each case below as computed by the commit before the
redesign (243a093); the test computes them again and asserts they are equal bit for bit. Write the file again only
where a change is meant to change the features: ``python tests/test_models/test_backbones/test_pinned_outputs.py
--overwrite``.
"""
import argparse
import os
import sys
from typing import Callable, Dict, Tuple

import pytest
import torch

from mmdiff.models.backbones import DifFeedBackbone, DiffusionUNetBackbone
from mmdiff.models.backbones.unet.presets import adm_unet_config

PINNED = os.path.join(os.path.dirname(__file__), 'pinned_backbone_outputs.pt')
TINY_CLASS_CONDITIONAL = adm_unet_config(image_size=32, model_channels=16, channel_mult=(1, 2), num_res_blocks=1,
                                         attention_resolutions=(16, ), num_head_channels=8, norm_num_groups=8,
                                         num_classes=10)
SD_TINY = dict(arch='sd-tiny', vae='sd-tiny', context=dict(type='zero', num_tokens=4))


def _images(batch: int, size: int, seed: int) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _run(backbone_class: type, size: int, call: dict = None, **arguments) -> Tuple[torch.Tensor, ...]:
    """Build with seeded random weights (and a seeded context/adapters), then run on seeded images."""
    torch.manual_seed(0)
    backbone = backbone_class(**arguments)
    with torch.no_grad():
        for parameter in backbone.parameters():  # zero-initialised layers (gates, learnable tokens) get values too
            if not parameter.any():
                parameter.normal_(0, 0.1)
    torch.manual_seed(1)
    with torch.no_grad():
        return backbone(_images(2, size, seed=size), **(call or {}))


CASES: Dict[str, Callable[[], Tuple[torch.Tensor, ...]]] = {
    'adm-tiny pyramid': lambda: _run(DiffusionUNetBackbone, 32, arch='adm-tiny', timesteps=(90, 150)),
    'adm-tiny taps stacked over draws': lambda: _run(
        DiffusionUNetBackbone, 16, arch='adm-tiny', timesteps=(10, 400), out_strides=None, num_noise_draws=2,
        timestep_fusion='stack', out_blocks=(24, 'mid_block', 'down_blocks.1.resnets.0.conv2',
                                             'up_blocks.2.upsamplers.0', 'conv_in')),
    'adm-tiny resampled, mean, projected': lambda: _run(
        DiffusionUNetBackbone, 32, arch='adm-tiny', timesteps=(50, 60), timestep_fusion='mean',
        out_strides=(2, 8, 64), resample_missing_strides=True, projection_channels=(3, 5, 7)),
    'adm-tiny random noise': lambda: _run(DiffusionUNetBackbone, 32, arch='adm-tiny', noise_mode='random',
                                          out_strides=(8, 16)),
    'adm-tiny per-image timesteps': lambda: _run(DiffusionUNetBackbone, 32, dict(timesteps=torch.tensor([3, 700])),
                                                 arch='adm-tiny', out_strides=(4, 16)),
    'adm-digits without noise': lambda: _run(DiffusionUNetBackbone, 16, arch='adm-digits', noise_mode='none',
                                             out_strides=None, out_blocks=(18, 13)),
    'ddpm-cifar10 cosine schedule': lambda: _run(
        DiffusionUNetBackbone, 16, arch='ddpm-cifar10', out_strides=(2, 4, 8),
        noise_scheduler=dict(type='DDPMScheduler', beta_schedule='squaredcos_cap_v2')),
    'class-conditional labels': lambda: _run(DiffusionUNetBackbone, 16, dict(class_labels=torch.tensor([3, 7])),
                                             arch=TINY_CLASS_CONDITIONAL, out_strides=(1, 2)),
    'sd-tiny latent pyramid': lambda: _run(DiffusionUNetBackbone, 64, **SD_TINY, out_strides=(4, 8, 16, 32, 64),
                                           resample_missing_strides=True),
    'sd-tiny VPD maps, unscaled, learnable adapter': lambda: _run(
        DiffusionUNetBackbone, 64, arch='sd-tiny', vae='sd-tiny', vae_latents='unscaled', out_strides=(8, 16, 32),
        context=dict(type='learnable', num_tokens=4, adapter=True), attention_maps=(8, 16), timesteps=(0, )),
    'sd-tiny residual and map taps': lambda: _run(
        DiffusionUNetBackbone, 64, **SD_TINY, out_strides=None,
        out_blocks=('mid_block.resnets.1.conv2', 'up_blocks.1.attentions.0.transformer_blocks.0.attn2.map')),
    'DifFeed published pairs': lambda: _run(DifFeedBackbone, 32, arch='adm-tiny', out_strides=None, out_blocks=(24, ),
                                            feedback=(21, 24, 27, 30, 33, 36)),
    'DifFeed gated, explicit pair': lambda: _run(DifFeedBackbone, 32, arch='adm-tiny', out_strides=(8, 16),
                                                 feedback=((24, 14), 27), adapter='gated-conv3x3-bn-relu'),
}


@pytest.fixture(scope='module')
def pinned() -> Dict[str, Tuple[torch.Tensor, ...]]:
    return torch.load(PINNED, weights_only=True)


@pytest.fixture
def one_thread():
    """The pinned outputs were computed on one thread: more split some reductions differently (about 1e-6)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_every_case_is_pinned(pinned):
    assert sorted(pinned) == sorted(CASES)


@pytest.mark.parametrize('case', list(CASES))
def test_outputs_equal_the_pinned_ones_bit_for_bit(case, pinned, one_thread):
    outputs = CASES[case]()
    assert [tuple(out.shape) for out in outputs] == [tuple(out.shape) for out in pinned[case]]
    for index, (out, expected) in enumerate(zip(outputs, pinned[case])):
        assert torch.equal(out, expected), (
            f'{case}: output {index} differs from the pinned one by up to {(out - expected).abs().max():.3g}')


def main() -> None:
    parser = argparse.ArgumentParser(description='Write the pinned outputs of every case.')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing file')
    args = parser.parse_args()
    if os.path.exists(PINNED) and not args.overwrite:
        sys.exit(f'{PINNED} exists; pass --overwrite to replace it')
    torch.set_num_threads(1)
    torch.save({case: CASES[case]() for case in CASES}, PINNED)
    print(f'wrote {len(CASES)} cases to {PINNED}')


if __name__ == '__main__':
    main()
