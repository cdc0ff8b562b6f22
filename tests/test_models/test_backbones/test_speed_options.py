"""The backbone's speed options change how fast features come, not what they are (within each option's tolerance)."""
import pytest
import torch

from mmdiff.models.backbones import DiffusionUNetBackbone, adm_unet_config

TINY = 'adm-tiny'
# two levels with attention: compiles in a fraction of the six-level preset's time
SMALL = adm_unet_config(image_size=16, model_channels=16, channel_mult=(1, 2), num_res_blocks=1,
                        attention_resolutions=(8, ), num_head_channels=8, norm_num_groups=8)


def images(n: int, size: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(n * size)) * 2 - 1


def twins(arch, reference_kwargs: dict, option_kwargs: dict):
    reference = DiffusionUNetBackbone(arch=arch, **reference_kwargs)
    option = DiffusionUNetBackbone(arch=arch, **option_kwargs)
    option.load_state_dict(reference.state_dict())
    return reference, option


OPTIONS = {
    'channels_last': dict(channels_last=True),
    'math_attention': dict(attention='math'),
    'channels_last_math_attention': dict(channels_last=True, attention='math'),
}


@pytest.mark.parametrize('option', OPTIONS.values(), ids=OPTIONS.keys())
def test_layout_and_attention_kernels_keep_the_features(option):
    reference, fast = twins(TINY, dict(timesteps=(90, 150)), dict(timesteps=(90, 150), **option))
    inputs = images(2, 64)
    for a, b in zip(reference(inputs), fast(inputs)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_torch_compile_keeps_the_features():
    reference, compiled = twins(SMALL, dict(out_strides=(1, 2)), dict(out_strides=(1, 2), torch_compile=True))
    inputs = images(2, 16)
    for a, b in zip(reference(inputs), compiled(inputs)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_half_precision_autocast_stays_within_its_tolerance(dtype):
    reference, half = twins(TINY, {}, dict(dtype=dtype))
    inputs = images(2, 64)
    for a, b in zip(reference(inputs), half(inputs)):
        assert b.dtype == torch.float32
        assert (a - b).norm() / a.norm() < (5e-2 if dtype == 'bfloat16' else 1e-2)


def test_bad_speed_options_are_named():
    with pytest.raises(ValueError, match=r"attention='flash' is not supported; choose one of \['sdpa', 'math'\]"):
        DiffusionUNetBackbone(arch=TINY, attention='flash')
    with pytest.raises(TypeError, match=r"torch_compile must be a bool or a dict .* got 'max-autotune'"):
        DiffusionUNetBackbone(arch=TINY, torch_compile='max-autotune')
