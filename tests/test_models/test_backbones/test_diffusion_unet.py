"""DiffusionUNetBackbone on tiny random U-Nets, CPU only."""
import collections
import math

import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel

from mmdiff.models import DiffusionUNetBackbone
from mmdiff.models.backbones import UNET_PRESETS, list_unet_taps
from tests.test_utils.tool_runs import run

TINY = 'adm-tiny'
# a second layout: four levels, conv up/down, one resnet per level, attention only at the bottom
SMALL_DICT = dict(
    sample_size=32,
    block_out_channels=(8, 16, 16, 32),
    layers_per_block=1,
    down_block_types=('DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'AttnDownBlock2D'),
    up_block_types=('AttnUpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D'),
    norm_num_groups=4,
    attention_head_dim=8)


def images(batch: int = 1, height: int = 32, width: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, height, width, generator=generator) * 2 - 1


def expected_shape(level, batch: int, height: int, width: int) -> tuple:
    return (batch, level.channels, math.ceil(height / level.stride), math.ceil(width / level.stride))


def test_invalid_arguments():
    # arch: a known preset name, a dict or None
    with pytest.raises(ValueError,
                       match=r"arch='adm-512' is not supported; choose one of "
                       r"\['adm-256u', 'adm-tiny', 'adm-digits', 'adm-cifar32', 'adm-64', 'ddpm-cifar10', 'sd15', "
                       r"'sd-tiny', 'sdxl-base', 'sdxl-tiny'\]"):
        DiffusionUNetBackbone(arch='adm-512')
    with pytest.raises(TypeError, match='arch must be a preset name'):
        DiffusionUNetBackbone(arch=3)
    with pytest.raises(ValueError, match='arch=None needs model_dir'):
        DiffusionUNetBackbone(arch=None)
    # noise mode, fusion, dtype: one of the listed choices
    with pytest.raises(ValueError, match=r"noise_mode='gaussian' is not supported; choose one of \['fixed'"):
        DiffusionUNetBackbone(arch=TINY, noise_mode='gaussian')
    with pytest.raises(ValueError, match=r"timestep_fusion='sum' is not supported; choose one of \['concat'"):
        DiffusionUNetBackbone(arch=TINY, timestep_fusion='sum')
    with pytest.raises(ValueError, match=r"dtype='int8' is not supported; choose one of \['float32'"):
        DiffusionUNetBackbone(arch=TINY, dtype='int8')
    # timesteps: a non-empty list of integers in [0, T)
    with pytest.raises(ValueError, match=r'timesteps is empty; give at least one noise step in \[0, 1000\)'):
        DiffusionUNetBackbone(arch=TINY, timesteps=())
    with pytest.raises(ValueError, match=r"timestep 1000 is outside the scheduler's range \[0, 1000\)"):
        DiffusionUNetBackbone(arch=TINY, timesteps=(90, 1000))
    with pytest.raises(ValueError, match=r"timestep -1 is outside the scheduler's range \[0, 1000\)"):
        DiffusionUNetBackbone(arch=TINY, timesteps=-1)
    with pytest.raises(ValueError, match=r"timestep 150 is outside the scheduler's range \[0, 100\)"):
        DiffusionUNetBackbone(
            arch=TINY, timesteps=150, noise_scheduler=dict(type='DDPMScheduler', num_train_timesteps=100))
    with pytest.raises(TypeError, match='timesteps must be integers, got 0.5'):
        DiffusionUNetBackbone(arch=TINY, timesteps=(0.5, ))
    # scheduler: a supported diffusers class
    with pytest.raises(ValueError, match=r"noise_scheduler type='EulerScheduler' is not supported; choose one of "
                                         r"\['DDPMScheduler', 'DDIMScheduler', 'FlowMatchEulerDiscreteScheduler'\]"):
        DiffusionUNetBackbone(arch=TINY, noise_scheduler=dict(type='EulerScheduler'))
    # taps: out_blocks takes over from the default strides, not from strides given; each tap must exist, once
    assert DiffusionUNetBackbone(arch=TINY, out_blocks=(24, )).feature_info[0].block == 'up_blocks.1.attentions.1'
    assert DiffusionUNetBackbone(arch=TINY, out_blocks=24).out_channels == (64, )  # one block needs no tuple
    with pytest.raises(ValueError, match='give exactly one of out_strides and out_blocks'):
        DiffusionUNetBackbone(arch=TINY, out_strides=(8, 16), out_blocks=(24, ))
    with pytest.raises(ValueError, match='give exactly one of out_strides and out_blocks'):
        DiffusionUNetBackbone(arch=TINY, out_strides=None)
    with pytest.raises(ValueError, match=r'repeat an output: .*up_blocks.1.attentions.1 at stride 16'):
        DiffusionUNetBackbone(arch=TINY, out_strides=None, out_blocks=(24, 'up_blocks.1.attentions.1'))
    with pytest.raises(ValueError, match=r'repeat an output'):
        DiffusionUNetBackbone(arch=TINY, out_strides=(8, 8))
    for widths in (8, (8, 0, 8, 8), (8, -1, 8, 8)):
        with pytest.raises(ValueError, match='projection_channels must be a sequence of widths >= 1'):
            DiffusionUNetBackbone(arch=TINY, projection_channels=widths)
    for value, error in ((150.0, TypeError), (True, TypeError), ((150, 150), ValueError)):
        with pytest.raises(error, match='must be an integer|must be integers|repeat a step'):
            DiffusionUNetBackbone(arch=TINY, timesteps=value)
    with pytest.raises(TypeError, match='class_label must be an integer class index or None, got 1.5'):
        DiffusionUNetBackbone(arch=TINY, class_label=1.5)
    for draws in ('2', 1.5, 0):
        with pytest.raises(ValueError, match='num_noise_draws must be an integer >= 1'):
            DiffusionUNetBackbone(arch=TINY, num_noise_draws=draws)
    with pytest.raises(ValueError, match='noise_seed must be an integer >= 0, got -1'):
        DiffusionUNetBackbone(arch=TINY, noise_seed=-1)
    import numpy as np
    assert DiffusionUNetBackbone(arch=TINY, timesteps=np.int64(150)).timesteps == (150, )
    with pytest.raises(KeyError, match=r"'up_blocks.9' is not a tappable block of this U-Net; valid names are: "
                       r'conv_in, down_blocks.0.resnets.0'):
        DiffusionUNetBackbone(arch=TINY, out_strides=None, out_blocks=('up_blocks.9', ))
    with pytest.raises(KeyError, match=r'diffssl block 38 does not exist in this U-Net; valid blocks are 1..37'):
        DiffusionUNetBackbone(arch=TINY, out_strides=None, out_blocks=(38, ))
    with pytest.raises(TypeError, match='out_blocks entries are submodule names'):
        DiffusionUNetBackbone(arch=TINY, out_strides=None, out_blocks=(24.0, ))
    with pytest.raises(ValueError, match='out_blocks is empty'):
        DiffusionUNetBackbone(arch=TINY, out_strides=None, out_blocks=())
    # strides: produced by the decoder, or resampled when asked to; never a non-power of two
    with pytest.raises(ValueError, match=r'the decoder has no output at stride 64 \(it has \[1, 2, 4, 8, 16, 32\]\); '
                       'set resample_missing_strides=True'):
        DiffusionUNetBackbone(arch=TINY, out_strides=(8, 64))
    with pytest.raises(ValueError, match=r'stride 12 cannot be produced: strides are powers of two'):
        DiffusionUNetBackbone(arch=TINY, out_strides=(12, ), resample_missing_strides=True)
    # projections: one width per output
    with pytest.raises(ValueError, match=r'projection_channels has 2 widths for 4 outputs \(strides \[4, 8, 16, 32\]\)'):
        DiffusionUNetBackbone(arch=TINY, projection_channels=(8, 8))
    # noise ensembles need noise; checkpointing needs gradients; labels need a class-conditional U-Net
    with pytest.raises(ValueError, match="num_noise_draws=2 averages over noise draws, but noise_mode='none'"):
        DiffusionUNetBackbone(arch=TINY, noise_mode='none', num_noise_draws=2)
    with pytest.raises(ValueError, match='num_noise_draws must be an integer >= 1, got 0'):
        DiffusionUNetBackbone(arch=TINY, num_noise_draws=0)
    with pytest.raises(ValueError, match='with_cp=True checkpoints gradients, but a frozen U-Net has none'):
        DiffusionUNetBackbone(arch=TINY, with_cp=True)
    with pytest.raises(ValueError, match='class_label=3 was given, but the U-Net is not class-conditional'):
        DiffusionUNetBackbone(arch=TINY, class_label=3)
    with pytest.raises(ValueError, match=r'the U-Net is class-conditional \(10 classes\); set class_label to a label '
                       r'in \[0, 10\) or None \(labels per image at each call\), got 10'):
        DiffusionUNetBackbone(arch=dict(SMALL_DICT, num_class_embeds=10), class_label=10)


def test_bad_inputs():
    backbone = DiffusionUNetBackbone(arch=TINY)
    # the channel count must match the U-Net's in_channels
    with pytest.raises(ValueError, match=r'expected images of shape \(N, 3, H, W\), got \(1, 1, 32, 32\)'):
        backbone(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r'expected images of shape \(N, 3, H, W\), got \(3, 32, 32\)'):
        backbone(torch.zeros(3, 32, 32))
    # images clearly outside [-1, 1] (here 0..255) warn once, naming the expected normalisation
    with pytest.warns(UserWarning, match=r'expects images normalised to \[-1, 1\] \(data preprocessor '
                      r'mean=std=127.5\), but the first batch spans \[0.00, 255.00\]'):
        backbone(torch.linspace(0, 255, 3 * 32 * 32).view(1, 3, 32, 32))


def test_bad_pixels_are_named_and_never_switch_the_check_off():
    backbone = DiffusionUNetBackbone(arch=TINY)
    nan_batch = images(2, 32, 32)
    nan_batch[1, 0, 3, 4] = float('nan')
    nan_batch[0, 2, 0, 0] = float('inf')
    with pytest.raises(ValueError, match=r'holds 2 NaN or infinite values \(of 6144\)'):
        backbone(nan_batch)
    # the failed first batch did not use up the range check: [0, 1] images are still reported
    with pytest.warns(UserWarning, match=r'spans \[0.00, 1.00\] \(no negative value: images in \[0, 1\]\?\)'):
        backbone(torch.linspace(0, 1, 3 * 32 * 32).view(1, 3, 32, 32))
    # on the CPU every batch is checked for non-finite values
    with pytest.raises(ValueError, match='holds 1 NaN or infinite values'):
        backbone(nan_batch[1:])
    for empty in (torch.zeros(0, 3, 32, 32), torch.zeros(1, 3, 0, 32)):
        with pytest.raises(ValueError, match=r'holds no pixels; give at least one image of at least 1x1 pixels'):
            backbone(empty)


@pytest.mark.parametrize('arch', [TINY, SMALL_DICT])
@pytest.mark.parametrize('size', [(32, 32), (64, 48), (37, 45), (1, 70)])
def test_pyramid_shapes_match_declared_feature_info(arch, size):
    backbone = DiffusionUNetBackbone(arch=arch, timesteps=(10, 500), out_strides=(4, 8, 16, 32),
                                     resample_missing_strides=True)
    features = backbone(images(2, *size))
    assert len(features) == len(backbone.feature_info) == 4
    assert backbone.out_strides == (4, 8, 16, 32)
    for level, feature in zip(backbone.feature_info, features):
        assert feature.shape == expected_shape(level, 2, *size)
        assert feature.dtype == torch.float32


def test_tiny_preset_channels_and_blocks():
    backbone = DiffusionUNetBackbone(arch=TINY, timesteps=(90, 150, 300))
    # decoder widths 32, 32, 64, 64 at strides 4..32, three timesteps concatenated
    assert backbone.out_channels == (96, 96, 192, 192)
    assert [level.block for level in backbone.feature_info] == [
        'up_blocks.3.resnets.2', 'up_blocks.2.attentions.2', 'up_blocks.1.attentions.2', 'up_blocks.0.attentions.2'
    ]


def test_small_layout_resamples_the_missing_stride():
    # the four-level U-Net's decoder has strides 1, 2, 4 and 8: stride 16 and 32 are pooled from stride 8
    backbone = DiffusionUNetBackbone(arch=SMALL_DICT, out_strides=(4, 8, 16, 32), resample_missing_strides=True)
    assert [(level.stride, level.source_stride) for level in backbone.feature_info] == [(4, 4), (8, 8), (16, 8),
                                                                                      (32, 8)]
    stride8, stride16, stride32 = backbone(images(1, 64, 64))[1:]
    assert torch.allclose(stride16, torch.nn.functional.avg_pool2d(stride8, 2), atol=1e-6)
    assert torch.allclose(stride32, torch.nn.functional.avg_pool2d(stride8, 4, ceil_mode=True), atol=1e-6)


def test_adm_256_layout_diffssl_blocks():
    """The papers' ADM ImageNet-256 U-Net: 37 blocks, 19 the middle, 24 a 1024-channel decoder block at stride 16."""
    with torch.device('meta'):
        unet = UNet2DModel(**UNET_PRESETS['adm-256u'])
        backbone = DiffusionUNetBackbone(arch='adm-256u', out_strides=None, out_blocks=(1, 18, 19, 24, 37))
    # guided-diffusion's UNetModel with these flags has exactly this many (tests/test_utils/adm_reference.py)
    assert sum(p.numel() for p in unet.parameters()) == 552_814_086
    taps = {tap.diffssl_index: tap for tap in list_unet_taps(unet) if tap.diffssl_index is not None}
    assert sorted(taps) == list(range(1, 38))
    assert [taps[i].stage for i in (1, 18, 19, 20, 37)] == ['encoder', 'encoder', 'middle', 'decoder', 'decoder']
    # (channels, stride) of every block, as guided-diffusion's input/middle/output blocks produce them
    # encoder: conv_in, then per level two res blocks and (except at the bottom) a downsampling block
    encoder = [(256, 1)] * 3 + [(256, 2)] * 3 + [(256, 4)] + [(512, 4)] * 2 + [(512, 8)] * 3 + [(512, 16)] + \
        [(1024, 16)] * 2 + [(1024, 32)] * 3
    # decoder: per level three res blocks, the last one upsampling (except at the top)
    decoder = [(1024, 32)] * 2 + [(1024, 16)] * 3 + [(1024, 8)] + [(512, 8)] * 2 + [(512, 4)] * 3 + [(512, 2)] + \
        [(256, 2)] * 2 + [(256, 1)] * 4
    assert [(taps[i].channels, taps[i].stride) for i in range(1, 19)] == encoder
    assert (taps[19].name, taps[19].channels, taps[19].stride) == ('mid_block', 1024, 32)
    assert [(taps[i].channels, taps[i].stride) for i in range(20, 38)] == decoder
    assert (taps[24].name, taps[24].channels, taps[24].stride) == ('up_blocks.1.attentions.1', 1024, 16)
    assert [(level.block, level.channels, level.stride) for level in backbone.feature_info] == [
        ('conv_in', 256, 1), ('up_blocks.5.resnets.2', 256, 1), ('up_blocks.1.attentions.1', 1024, 16),
        ('down_blocks.5.attentions.1', 1024, 32), ('mid_block', 1024, 32)
    ]
    with torch.device('meta'):
        fpn = DiffusionUNetBackbone(arch='adm-256u')
    assert fpn.out_channels == (512, 512, 1024, 1024) and fpn.out_strides == (4, 8, 16, 32)


def full_forward_taps(unet: UNet2DModel, sample: torch.Tensor, timesteps: torch.Tensor, names) -> dict:
    """Tap outputs recorded with hooks during diffusers' own, untruncated UNet2DModel.forward."""
    outputs = {}

    def record(name):

        def hook(module, args, output):
            outputs[name] = output[0] if isinstance(output, tuple) else output

        return hook

    handles = [unet.get_submodule(name).register_forward_hook(record(name)) for name in names]
    with torch.no_grad():
        unet(sample, timesteps)
    for handle in handles:
        handle.remove()
    return outputs


@pytest.mark.parametrize('blocks', [('conv_in', ), (5, 'down_blocks.2'), (19, ), (24, 12), (1, 37, 'up_blocks.4')])
def test_truncated_forward_equals_full_forward(blocks):
    backbone = DiffusionUNetBackbone(arch=TINY, timesteps=(150, ), noise_mode='none', out_strides=None,
                                     out_blocks=blocks)
    inputs = images(2, 64, 64)
    features = backbone(inputs)
    reference = full_forward_taps(backbone.unet, inputs, torch.tensor([150, 150]),
                                  [level.block for level in backbone.feature_info])
    for level, feature in zip(backbone.feature_info, features):
        assert torch.allclose(feature, reference[level.block], atol=1e-5), level.block


def test_fixed_noise_is_the_same_for_an_image_in_any_batch():
    backbone = DiffusionUNetBackbone(arch=TINY, timesteps=(300, ), noise_mode='fixed', noise_seed=7)
    image = images(1, 64, 64, seed=1)
    alone = backbone(image)
    in_three = backbone(torch.cat([images(1, 64, 64, seed=2), image, images(1, 64, 64, seed=3)]))
    in_five = backbone(torch.cat([images(4, 64, 64, seed=4), image]))
    for level, a, b, c in zip(backbone.feature_info, alone, in_three, in_five):
        assert torch.allclose(a[0], b[1], atol=1e-5), level.block
        assert torch.allclose(a[0], c[4], atol=1e-5), level.block
    # the noise is really there: another seed gives other features
    reseeded = DiffusionUNetBackbone(arch=TINY, timesteps=(300, ), noise_seed=8)
    reseeded.load_state_dict(backbone.state_dict())
    assert not torch.allclose(reseeded(image)[0], alone[0])


def test_random_noise_changes_per_call_and_follows_the_global_seed():
    backbone = DiffusionUNetBackbone(arch=TINY, timesteps=(300, ), noise_mode='random')
    image = images(1, 64, 64)
    torch.manual_seed(0)
    first, second = backbone(image)[0], backbone(image)[0]
    torch.manual_seed(0)
    replay = backbone(image)[0]
    assert not torch.allclose(first, second)
    assert torch.equal(first, replay)


def test_noise_mode_none_feeds_the_clean_image_with_the_time_embedding():
    backbone = DiffusionUNetBackbone(arch=TINY, timesteps=(20, 700), noise_mode='none', timestep_fusion='stack',
                                     out_strides=None, out_blocks=(24, ))
    inputs = images(1, 64, 64)
    stacked = backbone(inputs)[0]
    for index, t in enumerate((20, 700)):
        reference = full_forward_taps(backbone.unet, inputs, torch.tensor([t]), ['up_blocks.1.attentions.1'])
        assert torch.allclose(stacked[:, index], reference['up_blocks.1.attentions.1'], atol=1e-5)


def test_noise_draw_ensemble_averages_the_draws():
    single = DiffusionUNetBackbone(arch=TINY, timesteps=(400, ), num_noise_draws=1)
    ensemble = DiffusionUNetBackbone(arch=TINY, timesteps=(400, ), num_noise_draws=3)
    ensemble.load_state_dict(single.state_dict())
    inputs = images(2, 64, 64)
    averaged = ensemble(inputs)
    # draw 0 of the ensemble is the single-draw noise, so the ensemble moves away from it but stays reproducible
    assert not torch.allclose(averaged[0], single(inputs)[0])
    assert all(torch.equal(a, b) for a, b in zip(averaged, ensemble(inputs)))
    # the mean over draws: noised inputs are linear in the noise, so at t = 0 (alpha ~ 1) draws barely matter
    quiet = DiffusionUNetBackbone(arch=TINY, timesteps=(0, ), num_noise_draws=3, noise_scheduler=dict(
        type='DDPMScheduler', num_train_timesteps=1000, beta_schedule='linear', beta_start=1e-8, beta_end=0.02))
    quiet.load_state_dict(single.state_dict())
    clean = DiffusionUNetBackbone(arch=TINY, timesteps=(0, ), noise_mode='none')
    clean.load_state_dict(single.state_dict())
    assert torch.allclose(quiet(inputs)[0], clean(inputs)[0], atol=1e-3)


@pytest.mark.parametrize('fusion', ['concat', 'mean', 'stack'])
def test_one_batched_call_equals_separate_calls_per_timestep(fusion):
    timesteps = (50, 150, 400)
    batched = DiffusionUNetBackbone(arch=TINY, timesteps=timesteps, timestep_fusion=fusion)
    singles = []
    for t in timesteps:
        single = DiffusionUNetBackbone(arch=TINY, timesteps=t)
        single.load_state_dict(batched.state_dict())
        singles.append(single(images(2, 48, 64)))
    features = batched(images(2, 48, 64))
    for index, level in enumerate(batched.feature_info):
        per_t = torch.stack([single[index] for single in singles], dim=1)  # (N, T, C, h, w)
        expected = {'concat': per_t.flatten(1, 2), 'mean': per_t.mean(1), 'stack': per_t}[fusion]
        assert features[index].shape == expected.shape
        assert torch.allclose(features[index], expected, atol=1e-5), level.block
    channels = {'concat': (96, 96, 192, 192), 'mean': (32, 32, 64, 64), 'stack': (32, 32, 64, 64)}[fusion]
    assert batched.out_channels == channels


def test_one_unet_call_for_all_timesteps():
    backbone = DiffusionUNetBackbone(arch=TINY, timesteps=(50, 150, 400))
    batch_sizes = []
    backbone.unet.conv_in.register_forward_hook(lambda module, args, output: batch_sizes.append(output.shape[0]))
    backbone(images(2, 32, 32))
    assert batch_sizes == [6]


def test_projection_to_given_widths():
    backbone = DiffusionUNetBackbone(arch=TINY, timesteps=(90, 150), projection_channels=(8, 16, 24, 32))
    assert backbone.out_channels == (8, 16, 24, 32)
    features = backbone(images(1, 64, 64))
    assert [f.shape[1] for f in features] == [8, 16, 24, 32]
    stacked = DiffusionUNetBackbone(arch=TINY, timesteps=(90, 150), timestep_fusion='stack',
                                    projection_channels=(8, 8, 8, 8))
    assert stacked(images(1, 64, 64))[0].shape == (1, 2, 8, 16, 16)


def test_frozen_backbone_has_no_gradients_and_ignores_train():
    backbone = DiffusionUNetBackbone(arch=TINY, projection_channels=(4, 4, 4, 4))
    backbone.train()
    assert all(not p.requires_grad for p in backbone.unet.parameters())
    assert all(not module.training for module in backbone.unet.modules())
    assert all(p.requires_grad for p in backbone.projections.parameters())
    assert backbone.projections.training
    features = backbone(images(1, 32, 32))
    sum(f.sum() for f in features).backward()
    assert all(p.grad is None for p in backbone.unet.parameters())
    assert all(p.grad is not None for p in backbone.projections.parameters())
    unprojected = DiffusionUNetBackbone(arch=TINY)
    assert not any(f.requires_grad for f in unprojected(images(1, 32, 32)))


def test_finetuning_gradients_flow_to_the_used_blocks_only():
    backbone = DiffusionUNetBackbone(arch=TINY, frozen=False, out_strides=None, out_blocks=(24, ))
    backbone.train()
    assert backbone.unet.down_blocks[0].training
    # 64 pixels, so the deepest attention sees 2x2 tokens: over one token, softmax gives its query and key no gradient
    sum(f.sum() for f in backbone(images(1, 64, 64))).backward()
    used = [backbone.unet.conv_in, backbone.unet.time_embedding, *backbone.unet.down_blocks, backbone.unet.mid_block,
            backbone.unet.up_blocks[0], backbone.unet.up_blocks[1].resnets[0]]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for module in used for p in module.parameters())
    # blocks after the last tap never run, and layers after it in its block feed no output: all frozen
    skipped = [*backbone.unet.up_blocks[2:], backbone.unet.conv_out, backbone.unet.up_blocks[1].attentions[2],
               backbone.unet.up_blocks[1].upsamplers[0]]
    assert all(not p.requires_grad and p.grad is None for module in skipped for p in module.parameters())


@pytest.mark.parametrize('with_cp', [False, True])
def test_the_pass_ends_right_after_the_last_tapped_module(with_cp):
    """Nothing behind the last tap runs: not the next block, not the layers or the upsampler after it in its block
    (with gradient checkpointing too: each layer is checkpointed on its own), and the next forward runs the same
    modules again. The pass calls the blocks' layers, never a whole block."""
    backbone = DiffusionUNetBackbone(arch=TINY, frozen=not with_cp, with_cp=with_cp, out_strides=None,
                                     out_blocks=('up_blocks.1.resnets.1', ))
    calls = collections.Counter()
    for name, module in backbone.unet.named_modules():
        if name.count('.') <= 3:
            module.register_forward_pre_hook(lambda module, args, name=name: calls.update([name]))
    for _ in range(2):
        backbone(images(1, 32, 32))
    assert calls['up_blocks.1.resnets.1'] == 2 and calls['up_blocks.0.resnets.2'] == 2
    assert calls['up_blocks.0'] == calls['down_blocks.0'] == calls['mid_block'] == 0
    behind = ['up_blocks.1.attentions.1', 'up_blocks.1.resnets.2', 'up_blocks.1.upsamplers.0']
    assert [calls[name] for name in behind] == [0, 0, 0]
    assert not any(calls[name] for name in calls if name.startswith(('up_blocks.2', 'conv_out')))


@pytest.mark.parametrize('outputs', [dict(), dict(out_strides=None, out_blocks=(24, )),
                                     dict(out_strides=None, out_blocks=('up_blocks.2.resnets.0', 13))])
def test_finetuning_every_trainable_parameter_gets_a_gradient(outputs):
    # DDP (find_unused_parameters=False) waits for a gradient of every parameter that requires one
    backbone = DiffusionUNetBackbone(arch=TINY, frozen=False, **outputs)
    backbone.train()
    sum(f.sum() for f in backbone(images(1, 32, 32))).backward()
    starved = [name for name, p in backbone.named_parameters() if p.requires_grad and p.grad is None]
    assert starved == []


def test_gradient_checkpointing_gives_the_same_gradients():
    plain = DiffusionUNetBackbone(arch=TINY, frozen=False, noise_mode='fixed')
    checkpointed = DiffusionUNetBackbone(arch=TINY, frozen=False, with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    for backbone in (plain, checkpointed):
        backbone.train()
        sum(f.square().mean() for f in backbone(images(1, 32, 32))).backward()
    for (name, a), b in zip(plain.unet.named_parameters(), checkpointed.unet.parameters()):
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_bf16_autocast_stays_close_to_float32():
    reference = DiffusionUNetBackbone(arch=TINY)
    bf16 = DiffusionUNetBackbone(arch=TINY, dtype='bfloat16')
    bf16.load_state_dict(reference.state_dict())
    inputs = images(1, 64, 64)
    for a, b in zip(reference(inputs), bf16(inputs)):
        assert b.dtype == torch.float32
        assert (a - b).norm() / a.norm() < 5e-2


def test_model_dir_loads_a_local_diffusers_folder(tmp_path):
    unet = UNet2DModel(**UNET_PRESETS[TINY])
    unet.save_pretrained(tmp_path / 'model')
    loaded = DiffusionUNetBackbone(arch=None, model_dir=str(tmp_path / 'model'))
    assert all(torch.equal(a, b) for a, b in zip(unet.state_dict().values(), loaded.unet.state_dict().values()))
    # a preset that matches the folder is accepted, one that does not is refused with the differences
    DiffusionUNetBackbone(arch=TINY, model_dir=str(tmp_path / 'model'))
    with pytest.raises(ValueError, match=r"does not match arch='adm-256u': \(given, folder\) differ in .*"
                       r"'block_out_channels': \(\(256, 256, 512, 512, 1024, 1024\), \[16, 16, 32, 32, 64, 64\]\)"):
        DiffusionUNetBackbone(arch='adm-256u', model_dir=str(tmp_path / 'model'))
    # a pipeline folder brings its own scheduler
    unet.save_pretrained(tmp_path / 'pipeline' / 'unet')
    DDPMScheduler(num_train_timesteps=400, beta_schedule='squaredcos_cap_v2').save_pretrained(tmp_path / 'pipeline' /
                                                                                            'scheduler')
    pipeline = DiffusionUNetBackbone(arch=None, model_dir=str(tmp_path / 'pipeline'), timesteps=399)
    assert pipeline.num_train_timesteps == 400
    assert pipeline.noise_scheduler.config.beta_schedule == 'squaredcos_cap_v2'
    with pytest.raises(ValueError, match=r"timestep 400 is outside the scheduler's range \[0, 400\)"):
        DiffusionUNetBackbone(arch=None, model_dir=str(tmp_path / 'pipeline'), timesteps=400)


def test_model_dir_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model_dir '.*missing' does not exist; give a local diffusers"):
        DiffusionUNetBackbone(arch=None, model_dir=str(tmp_path / 'missing'))
    (tmp_path / 'weights.pt').touch()
    with pytest.raises(ValueError, match=r"is not a diffusers folder: it has neither config.json nor unet/config.json "
                       r"\(it holds \['weights.pt'\]\)"):
        DiffusionUNetBackbone(arch=None, model_dir=str(tmp_path))


def test_init_cfg_loads_an_mmdiff_checkpoint(tmp_path):
    source = DiffusionUNetBackbone(arch=TINY, projection_channels=(4, 4, 4, 4))
    torch.save({'state_dict': source.state_dict()}, tmp_path / 'backbone.pth')
    target = DiffusionUNetBackbone(arch=TINY, projection_channels=(4, 4, 4, 4),
                                   init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'backbone.pth')))
    assert not torch.equal(target.unet.conv_in.weight, source.unet.conv_in.weight)
    target.init_weights()
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name
    # a checkpoint for another layout fails with the mismatched keys, before any training step
    other = DiffusionUNetBackbone(arch=SMALL_DICT, out_strides=(4, 8))
    torch.save({'state_dict': other.state_dict()}, tmp_path / 'other.pth')
    wrong = DiffusionUNetBackbone(arch=TINY, init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'other.pth')))
    with pytest.raises(ValueError, match=r"checkpoint '.*other.pth' does not fit this backbone: \d+ missing keys "
                       r"\['unet.down_blocks.0.downsamplers.0.conv1.bias'.*shape mismatches \['unet.conv_in.bias: "
                       r'checkpoint \(8,\) vs model \(16,\)'):
        wrong.init_weights()
    # a missing file is refused when the backbone is built, naming where checkpoints come from
    with pytest.raises(FileNotFoundError, match=r"backbone checkpoint 'missing.pth' \(init_cfg\) does not exist. An "
                       r'mmdiff backbone checkpoint is the state dict of a DiffusionUNetBackbone'):
        DiffusionUNetBackbone(arch=TINY, init_cfg=dict(type='Pretrained', checkpoint='missing.pth'))


def test_describe_taps_lists_every_block():
    table = DiffusionUNetBackbone(arch=TINY).describe_taps()
    assert 'up_blocks.1.attentions.1' in table and 'mid_block' in table
    assert len(table.splitlines()) == 1 + len(list_unet_taps(UNet2DModel(**UNET_PRESETS[TINY])))


# each task package's default scope in turn, in one fresh interpreter that imports mmdiff only through the first
# config's custom_imports: a line per scope
BUILT_BY_NAME = """
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import import_modules_from_strings
for scope in ('mmdet', 'mmseg', 'mmpretrain'):
    cfg = Config(dict(default_scope=scope, custom_imports=dict(imports=['mmdiff'], allow_failed_imports=False),
                      model=dict(type='mmdiff.DiffusionUNetBackbone', arch='adm-tiny', timesteps=(90, 150))))
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    built = MODELS.build(cfg.model)
    print(scope, type(built).__module__, built.out_channels, type(built).__name__)
"""


@pytest.fixture(scope='module')
def built_by_name() -> list:
    result = run(['-c', BUILT_BY_NAME], timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_builds_by_its_mmdiff_name_after_custom_imports(built_by_name, scope):
    assert f'{scope} mmdiff.models.backbones.diffusion_unet (64, 64, 128, 128) DiffusionUNetBackbone' in built_by_name


def test_backbone_works_with_the_task_packages_blocked():
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmdet', 'mmseg', 'mmpretrain', 'mmcv'):
            raise ImportError(f'{name} is blocked for this test')
sys.meta_path.insert(0, Block())
import torch
from mmdiff.models import DiffusionUNetBackbone
features = DiffusionUNetBackbone(arch='adm-tiny')(torch.zeros(1, 3, 32, 32))
print([tuple(f.shape) for f in features])
"""
    result = run(['-c', code], timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[(1, 32, 8, 8), (1, 32, 4, 4), (1, 64, 2, 2), (1, 64, 1, 1)]'
