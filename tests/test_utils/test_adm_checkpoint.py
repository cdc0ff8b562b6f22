"""The ADM <-> diffusers key map: coverage, exact round trips and forward equality with guided-diffusion's model."""
import pytest
import torch
from diffusers import UNet2DModel

from mmdiff.models.backbones.unet.presets import adm_unet_config
from mmdiff.models.backbones.unet.adm_architecture import (GUIDED_DIFFUSION_MODELS, AdmArchitecture, check_adm_flags,
                                                      infer_adm_architecture)
from mmdiff.models.backbones.unet.adm_key_map import adm_key_map, convert_adm_to_diffusers, convert_diffusers_to_adm
from tests.test_utils.adm_reference import AdmUNet

IMAGE_SIZE = 16


def small_adm(resblock_updown=True, new_attention_order=False, use_scale_shift_norm=True, num_classes=None,
              seed=0) -> AdmUNet:
    """A 3-level ADM U-Net (widths 32/64/64, attention at 8 and 4 px of 16) with no zero-initialised layers."""
    torch.manual_seed(seed)
    return AdmUNet(in_channels=3, model_channels=32, out_channels=6, num_res_blocks=2, attention_ds=(2, 4),
                   channel_mult=(1, 2, 2), num_head_channels=16, num_classes=num_classes,
                   use_scale_shift_norm=use_scale_shift_norm, resblock_updown=resblock_updown,
                   new_attention_order=new_attention_order).eval()


VARIANTS = {
    'papers-256u-style': dict(),
    'conv-resample-no-scale-shift-new-order-classes': dict(resblock_updown=False, new_attention_order=True,
                                                           use_scale_shift_norm=False, num_classes=5),
    'class-conditional-new-order': dict(new_attention_order=True, num_classes=3),
}


@pytest.mark.parametrize('variant', VARIANTS.values(), ids=VARIANTS.keys())
def test_converted_unet_computes_what_the_adm_model_computes(variant):
    adm = small_adm(**variant)
    state = adm.state_dict()
    arch = infer_adm_architecture(state)
    assert arch == AdmArchitecture(in_channels=3, out_channels=6, model_channels=32, channel_mult=(1, 2, 2),
                                   num_res_blocks=2, attention_levels=(False, True, True),
                                   resblock_updown=variant.get('resblock_updown', True),
                                   use_scale_shift_norm=variant.get('use_scale_shift_norm', True),
                                   num_classes=variant.get('num_classes'))
    assert arch.attention_resolutions(IMAGE_SIZE) == (8, 4)
    config = arch.unet_config(IMAGE_SIZE, num_head_channels=16)
    new_order = variant.get('new_attention_order', False)
    unet = UNet2DModel(**config).eval()
    unet.load_state_dict(convert_adm_to_diffusers(state, config, new_order), strict=True)

    x = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    t = torch.tensor([3, 700])
    labels = torch.tensor([1, 2]) if arch.num_classes else None
    with torch.no_grad():
        expected = adm(x, t, labels)
        actual = unet(x, t, class_labels=labels).sample
    assert expected.abs().mean() > 0.1  # no zero-initialised output layer hides a difference
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)

    # and back: the ADM weights come out bit for bit
    back = convert_diffusers_to_adm(unet.state_dict(), config, new_order)
    assert back.keys() == state.keys() and all(torch.equal(back[key], state[key]) for key in state)


def test_the_attention_order_matters():
    """Converting a new-order model as legacy gives a different function: the flag is not cosmetic."""
    adm = small_adm(new_attention_order=True)
    config = infer_adm_architecture(adm.state_dict()).unet_config(IMAGE_SIZE, num_head_channels=16)
    unet = UNet2DModel(**config).eval()
    unet.load_state_dict(convert_adm_to_diffusers(adm.state_dict(), config, new_attention_order=False))
    x, t = torch.randn(1, 3, IMAGE_SIZE, IMAGE_SIZE), torch.tensor([100])
    with torch.no_grad():
        assert not torch.allclose(unet(x, t).sample, adm(x, t), atol=1e-3)


@pytest.mark.parametrize('new_order', [False, True])
def test_diffusers_to_adm_to_diffusers_is_exact(new_order):
    config = adm_unet_config(image_size=IMAGE_SIZE, model_channels=32, channel_mult=(1, 2), num_res_blocks=1,
                             attention_resolutions=(16, 8), num_head_channels=8, num_classes=4)
    torch.manual_seed(1)
    state = UNet2DModel(**config).state_dict()
    adm_state = convert_diffusers_to_adm(state, config, new_order)
    assert infer_adm_architecture(adm_state).unet_config(IMAGE_SIZE, num_head_channels=8) == config
    again = convert_adm_to_diffusers(adm_state, config, new_order)
    assert again.keys() == state.keys() and all(torch.equal(again[key], state[key]) for key in state)


def test_partial_conversions_are_refused():
    state = small_adm().state_dict()
    config = infer_adm_architecture(state).unet_config(IMAGE_SIZE, num_head_channels=16)
    # a source key the map does not use
    with pytest.raises(ValueError, match=r"left over \['input_blocks.1.0.extra'\]"):
        convert_adm_to_diffusers(dict(state, **{'input_blocks.1.0.extra': torch.zeros(1)}), config)
    # a target key nothing fills
    without = {key: value for key, value in state.items() if key != 'middle_block.1.qkv.bias'}
    with pytest.raises(ValueError, match=r"missing \['middle_block.1.qkv.bias'\]"):
        convert_adm_to_diffusers(without, config)
    # a tensor whose shape disagrees with the architecture
    wrong = dict(state, **{'out.2.bias': torch.zeros(3)})
    with pytest.raises(ValueError, match=r'out.2.bias \(3,\) does not fit conv_out.bias \(6,\)'):
        convert_adm_to_diffusers(wrong, config)


def test_not_an_adm_state_dict_says_what_it_found():
    with pytest.raises(ValueError, match=r"not a guided-diffusion .* found a dict with 2 keys, starting "
                                         r"\['conv_in.weight', 'conv_in.bias'\]"):
        infer_adm_architecture({'conv_in.weight': torch.zeros(1), 'conv_in.bias': torch.zeros(1)})
    with pytest.raises(ValueError, match='found a list'):
        infer_adm_architecture([1, 2])


def test_flags_that_contradict_the_weights_are_named():
    arch = infer_adm_architecture(small_adm(num_classes=5).state_dict())
    check_adm_flags(arch, dict(num_channels=32, channel_mult=(1, 2, 2), image_size=16,
                               attention_resolutions=(4, 8), class_cond=True))
    with pytest.raises(ValueError, match=r"num_channels: 64 vs 32, .*attention_resolutions: \(16,\) vs \(4, 8\), "
                                         r"class_cond: False vs True"):
        check_adm_flags(arch, dict(num_channels=64, image_size=16, attention_resolutions=(16, ), class_cond=False))


def test_released_models_diffusers_cannot_express_are_refused_with_the_reason():
    flags = GUIDED_DIFFUSION_MODELS['128x128_diffusion']
    with pytest.raises(ValueError, match=r'num_heads=4 gives head widths \[128, 192, 256\]'):
        adm_unet_config(image_size=128, model_channels=256, channel_mult=flags['channel_mult'], num_res_blocks=2,
                        attention_resolutions=(32, 16, 8), num_head_channels=None, num_heads=4)
    with pytest.raises(ValueError, match=r'starts with 0.5, not 1'):
        adm_unet_config(image_size=512, model_channels=256, channel_mult=(0.5, 1, 1, 2, 2, 4, 4),
                        num_res_blocks=2, attention_resolutions=(32, 16, 8))


def test_released_256_model_layout_maps_completely():
    """The papers' model: its flags give the adm-256u preset, and the key map covers every parameter."""
    from mmdiff.models.backbones.unet.presets import UNET_PRESETS
    flags = GUIDED_DIFFUSION_MODELS['256x256_diffusion_uncond']
    config = adm_unet_config(image_size=256, model_channels=flags['num_channels'], channel_mult=flags['channel_mult'],
                             num_res_blocks=flags['num_res_blocks'],
                             attention_resolutions=flags['attention_resolutions'],
                             num_head_channels=flags['num_head_channels'])
    assert config == UNET_PRESETS['adm-256u']
    with torch.device('meta'):
        reference = AdmUNet(3, 256, 6, 2, attention_ds=(8, 16, 32), channel_mult=flags['channel_mult'],
                            num_head_channels=64)
    groups = adm_key_map(config)
    assert sorted(group.adm_key for group in groups) == sorted(reference.state_dict())


def test_released_64_model_flags_give_the_adm_64_preset():
    """RepFusion's Tiny-ImageNet teacher: guided-diffusion's class-conditional 64x64 model is the adm-64 preset."""
    from mmdiff.models.backbones.unet.presets import UNET_PRESETS

    flags = GUIDED_DIFFUSION_MODELS['64x64_diffusion']
    config = adm_unet_config(image_size=64, model_channels=flags['num_channels'], channel_mult=flags['channel_mult'],
                             num_res_blocks=flags['num_res_blocks'],
                             attention_resolutions=flags['attention_resolutions'],
                             num_head_channels=flags['num_head_channels'], num_classes=1000)
    assert flags['class_cond'] and config == UNET_PRESETS['adm-64']
