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


# reduce-overhead records CUDA graphs on a GPU; on the CPU it compiles without them, through the same wrapper
@pytest.mark.parametrize('torch_compile', [True, dict(mode='reduce-overhead')], ids=['default', 'reduce-overhead'])
def test_torch_compile_keeps_the_features(torch_compile):
    reference, compiled = twins(SMALL, dict(out_strides=(1, 2)), dict(out_strides=(1, 2), torch_compile=torch_compile))
    first, second = images(2, 16), images(3, 16)
    kept = compiled(first)  # features of one batch stay valid while the next batch runs
    later = compiled(second)
    for inputs, features in ((first, kept), (second, later)):
        for a, b in zip(reference(inputs), features):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_half_precision_autocast_stays_within_its_tolerance(dtype):
    reference, half = twins(TINY, {}, dict(dtype=dtype))
    inputs = images(2, 64)
    for a, b in zip(reference(inputs), half(inputs)):
        assert b.dtype == torch.float32
        assert (a - b).norm() / a.norm() < (5e-2 if dtype == 'bfloat16' else 1e-2)


@pytest.mark.parametrize('dtype', ['bfloat16', 'float16'])
def test_half_precision_weights_equal_autocast_within_its_tolerance(dtype):
    reference = DiffusionUNetBackbone(arch=TINY)
    autocast = DiffusionUNetBackbone(arch=TINY, dtype=dtype)
    half = DiffusionUNetBackbone(arch=TINY, dtype=dtype, weights_dtype=dtype)
    autocast.load_state_dict(reference.state_dict())
    half.load_state_dict(reference.state_dict())  # float32 weights are cast on loading
    assert {p.dtype for p in half.unet.parameters()} == {getattr(torch, dtype)}
    assert {p.dtype for p in autocast.unet.parameters()} == {torch.float32}
    assert not any(p.requires_grad for p in half.unet.parameters())
    tolerance = 5e-2 if dtype == 'bfloat16' else 1e-2
    inputs = images(2, 64)
    for a, b, c in zip(reference(inputs), autocast(inputs), half(inputs)):
        assert c.dtype == torch.float32 and c.shape == b.shape
        assert (c - b).norm() / b.norm() < tolerance
        assert (c - a).norm() / a.norm() < tolerance


def test_half_precision_weights_load_a_float32_checkpoint(tmp_path):
    source = DiffusionUNetBackbone(arch=TINY)
    torch.save({'state_dict': source.state_dict()}, tmp_path / 'backbone.pth')
    target = DiffusionUNetBackbone(arch=TINY, dtype='bfloat16', weights_dtype='bfloat16',
                                   init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'backbone.pth')))
    target.init_weights()
    target.train()
    for (name, a), b in zip(source.unet.named_parameters(), target.unet.parameters()):
        assert b.dtype == torch.bfloat16 and not b.requires_grad, name
        assert torch.equal(b, a.to(torch.bfloat16)), name
    assert not target.unet.training


def test_bad_speed_options_are_named():
    with pytest.raises(ValueError, match=r"attention='flash' is not supported; choose one of \['sdpa', 'math'\]"):
        DiffusionUNetBackbone(arch=TINY, attention='flash')
    with pytest.raises(TypeError, match=r"torch_compile must be a bool or a dict .* got 'max-autotune'"):
        DiffusionUNetBackbone(arch=TINY, torch_compile='max-autotune')
    # weights_dtype: a known dtype, for a frozen U-Net, under autocast to the same dtype
    with pytest.raises(ValueError, match=r"weights_dtype='int8' is not supported; choose one of "
                       r"\['float32', 'bfloat16', 'float16'\]"):
        DiffusionUNetBackbone(arch=TINY, weights_dtype='int8')
    with pytest.raises(ValueError, match=r"weights_dtype='bfloat16' keeps the U-Net weights in half precision, "
                       r"which only a frozen U-Net can do; set frozen=True"):
        DiffusionUNetBackbone(arch=TINY, dtype='bfloat16', weights_dtype='bfloat16', frozen=False)
    with pytest.raises(ValueError, match=r"weights_dtype='float16' runs under autocast to the same dtype, but "
                       r"dtype='bfloat16'; set dtype='float16'"):
        DiffusionUNetBackbone(arch=TINY, dtype='bfloat16', weights_dtype='float16')
