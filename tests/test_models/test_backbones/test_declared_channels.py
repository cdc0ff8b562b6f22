"""Channels and strides declared from the U-Net's config alone: every tap equals what the built U-Net outputs, and
every backbone config declares the feature_info (and output shapes) the built backbone has."""
import json
import math

import pytest
import torch
from diffusers import UNet2DConditionModel, UNet2DModel

from mmdiff.models.backbones import (UNET_PRESETS, DiffusionUNetBackbone, UNetPass, declared_feature_info,
                                     declared_out_channels, list_config_taps)
from mmdiff.models.backbones.core.vae_encoder import VAE_PRESETS
from mmdiff.registry import MODELS

SD_TINY = {key: value for key, value in UNET_PRESETS['sd-tiny'].items() if key != 'type'}
# every preset, and UNet2DConditionModel layouts the presets do not exercise
UNET_CONFIGS = dict(
    {name: (config.get('type', 'UNet2DModel'), {key: value for key, value in config.items() if key != 'type'})
     for name, config in UNET_PRESETS.items()},
    **{
        'sd-tiny-2-transformer-blocks': ('UNet2DConditionModel', dict(SD_TINY, transformer_layers_per_block=2)),
        'sd-tiny-per-level-layers': ('UNet2DConditionModel', dict(SD_TINY, layers_per_block=(1, 2, 1, 2),
                                                                  transformer_layers_per_block=(1, 2, 1, 1))),
        'sd-tiny-plain-mid-block': ('UNet2DConditionModel', dict(SD_TINY, mid_block_type='UNetMidBlock2D')),
        'sd-tiny-no-mid-block': ('UNet2DConditionModel', dict(SD_TINY, mid_block_type=None)),
        'adm-tiny-no-attention': ('UNet2DModel', dict(UNET_PRESETS['adm-tiny'], add_attention=False,
                                                      downsample_type='conv', upsample_type='conv')),
    })
TOKENS = 5


def sdxl_conditions(config) -> dict:
    """SDXL's added conditioning (the pooled embedding and the image size its time ids are made of) for a text_time
    U-Net, else nothing."""
    if config.get('addition_embed_type') != 'text_time':
        return {}
    pooled = config['projection_class_embeddings_input_dim'] - 6 * config['addition_time_embed_dim']
    return dict(pooled=torch.empty(1, pooled), image_size=(64, 64))


@pytest.mark.parametrize('name', UNET_CONFIGS)
def test_every_config_tap_is_what_the_built_unet_outputs(name):
    """On the meta device (shapes without arithmetic, so the 860 M-parameter SD 1.5 takes a second): every tap
    the config declares is an output of the U-Net pass with the declared channels and stride."""
    unet_type, config = UNET_CONFIGS[name]
    conditional = unet_type == 'UNet2DConditionModel'
    taps = list_config_taps(config, unet_type, context_tokens=TOKENS if conditional else None)
    size = 64
    with torch.device('meta'):
        unet = {'UNet2DModel': UNet2DModel, 'UNet2DConditionModel': UNet2DConditionModel}[unet_type](**config)
        outputs = UNetPass(unet)(
            torch.empty(1, unet.config.in_channels, size, size), torch.zeros(1, dtype=torch.long),
            [tap.name for tap in taps],
            context=torch.empty(1, TOKENS, unet.config.cross_attention_dim) if conditional else None,
            labels=torch.zeros(1, dtype=torch.long) if unet.config.num_class_embeds else None,
            **sdxl_conditions(unet.config))
    assert {tap.name: tuple(outputs[tap.name].shape) for tap in taps} == {
        tap.name: (1, tap.channels, size // tap.stride, size // tap.stride) for tap in taps}
    # and none is missing: the pass can return nothing else but the middle block's inner layers
    names = [tap.name for tap in taps]
    assert len(set(names)) == len(names)
    assert sorted(set(UNetPass(unet).step_names) - set(names)) == sorted(
        name for name in UNetPass(unet).step_names if name.startswith(('mid_block.resnets.', 'mid_block.attentions.'))
        and not name.endswith('.conv2') and not name.endswith('.map'))


ADM_TINY = dict(arch='adm-tiny')
SD_LATENT = dict(arch='sd-tiny', vae='sd-tiny', context=dict(type='zero', num_tokens=TOKENS))
BACKBONES = {
    'adm-tiny-default-strides': ADM_TINY,
    'adm-tiny-names': dict(ADM_TINY, out_strides=None,
                           out_blocks=('mid_block', 'up_blocks.1.attentions.1', 'down_blocks.2.downsamplers.0')),
    'adm-tiny-diffssl-numbers-3-timesteps': dict(ADM_TINY, out_strides=None, out_blocks=(19, 24, 30),
                                                 timesteps=(90, 150, 300)),
    'adm-tiny-strides-mean': dict(ADM_TINY, out_strides=(1, 2, 32), timesteps=(10, 20), timestep_fusion='mean'),
    'adm-tiny-stack': dict(ADM_TINY, out_strides=(8, 16), timesteps=(10, 20, 30), timestep_fusion='stack'),
    'adm-tiny-residuals': dict(ADM_TINY, out_strides=None, out_blocks=('mid_block.resnets.1.conv2',
                                                                       'up_blocks.2.resnets.0.conv2', 4)),
    'adm-tiny-resampled-projected': dict(ADM_TINY, out_strides=(4, 64), resample_missing_strides=True,
                                         timesteps=(5, 50, 500), projection_channels=(7, 9)),
    'adm-tiny-diffeed': dict(ADM_TINY, type='mmdiff.DifFeedBackbone', out_strides=None, out_blocks=(24, ),
                             feedback=(21, 24)),
    'adm-digits-default': dict(arch='adm-digits', out_strides=(1, 2, 4, 8)),
    'adm-digits-block-18': dict(arch='adm-digits', out_strides=None, out_blocks=(18, 13), timesteps=(100, 200)),
    'sd-tiny-latent-strides': dict(SD_LATENT, out_strides=(8, 16, 32, 64)),
    'sd-tiny-attention-maps-3-timesteps': dict(SD_LATENT, out_strides=(8, 16, 32, 64), attention_maps=(16, 32),
                                               timesteps=(1, 50, 100)),
    'sd-tiny-maps-projected': dict(SD_LATENT, out_strides=(16, 32), attention_maps=(16, ),
                                   projection_channels=(6, 6)),
    'sd-tiny-map-tap-resampled': dict(SD_LATENT, out_strides=(4, 8), resample_missing_strides=True),
    'sd-tiny-map-by-name': dict(SD_LATENT, out_strides=None, out_blocks=(
        'down_blocks.1.attentions.0.transformer_blocks.0.attn2.map', 'up_blocks.1.attentions.1')),
    'sd-tiny-pixels': dict(arch='sd-tiny', context=dict(type='learnable'), out_strides=(1, 2, 4, 8)),
}
PUBLIC_FIELDS = ('channels', 'stride', 'block', 'source_stride', 'timesteps', 'fusion', 'attention_maps')


def described(feature_info) -> list:
    """What a neck or head reads of each output."""
    return [tuple(getattr(level, field) for field in PUBLIC_FIELDS) for level in feature_info]


@pytest.mark.parametrize('name', BACKBONES)
def test_declared_feature_info_is_the_built_backbones(name):
    """The declaration (no module built) equals the built backbone's feature_info, its projections take the declared
    widths, and a forward pass returns exactly the declared shapes."""
    config = dict(BACKBONES[name], type=BACKBONES[name].get('type', 'mmdiff.DiffusionUNetBackbone'))
    declared = declared_feature_info(config)
    torch.manual_seed(0)
    backbone = MODELS.build(config)
    assert described(declared) == described(backbone.feature_info)
    assert declared_out_channels(config) == list(backbone.out_channels)
    if backbone.projections is None:
        assert all(level.projected_from is None for level in declared)
    else:
        assert [conv.in_channels for conv in backbone.projections] == [level.projected_from for level in declared]
    height, width = 72, 40
    with torch.no_grad():
        outputs = backbone(torch.rand(2, backbone.in_channels, height, width) * 2 - 1)
    timesteps = len(declared[0].timesteps)
    assert [tuple(output.shape) for output in outputs] == [
        (2, ) + ((timesteps, ) if level.fusion == 'stack' else ()) + (level.channels, math.ceil(height / level.stride),
                                                                      math.ceil(width / level.stride))
        for level in declared]


def test_big_presets_declare_the_known_pyramids():
    """ADM-256 and SD 1.5, checked against literal widths and a meta-device build."""
    known = [
        (dict(arch='adm-256u'), [512, 512, 1024, 1024], [4, 8, 16, 32]),
        (dict(arch='adm-256u', out_strides=None, out_blocks=(24, )), [1024], [16]),  # the diffssl block
        (dict(arch='adm-256u', out_strides=None, out_blocks=(19, 24, 30), timesteps=(90, 150, 300)),
         [3 * 512, 3 * 1024, 3 * 1024], [4, 16, 32]),  # DifFormer's blocks, concatenated over three timesteps
        (dict(arch='adm-64', class_label=0, out_strides=None, out_blocks=('mid_block.resnets.1.conv2', )), [768],
         [8]),  # RepFusion's ImageNet-64 teacher
        (dict(arch='sd15', vae='sd', context=dict(type='zero', num_tokens=150), out_strides=(8, 16, 32, 64),
              attention_maps=(16, 32)), [320, 640 + 150, 1280 + 150, 1280], [8, 16, 32, 64]),  # VPD
        (dict(arch='sd15', vae='sd', context=dict(type='zero'), out_strides=(8, 16, 32, 64), attention_maps=(32, ),
              projection_channels=(64, 128, 256, 512)), [64, 128, 256, 512], [8, 16, 32, 64]),
    ]
    for config, channels, strides in known:
        declared = declared_feature_info(config)
        assert ([level.channels for level in declared], [level.stride for level in declared]) == (channels, strides)
        with torch.device('meta'):
            backbone = DiffusionUNetBackbone(**config)
        assert described(declared) == described(backbone.feature_info)
    # the default context holds 77 tokens: the empty prompt's
    assert declared_out_channels(dict(arch='sd15', vae='sd', context=dict(type='zero'), out_strides=(32, ),
                                      attention_maps=(32, ))) == [1280 + 77]


def test_a_folder_of_configs_without_weights_declares_its_outputs(tmp_path):
    """With model_dir only the config.json files are read (diffusers' load_config): there are no weights here."""
    for folder, class_name, config, file in (
            ('unet', 'UNet2DConditionModel', SD_TINY, 'config.json'),
            ('vae', 'AutoencoderKL', VAE_PRESETS['sd-tiny'], 'config.json'),
            ('scheduler', 'DDPMScheduler', dict(num_train_timesteps=60), 'scheduler_config.json')):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / file).write_text(json.dumps(dict(config, _class_name=class_name)))
    backbone = dict(arch=None, model_dir=str(tmp_path), context=dict(type='zero', num_tokens=3),
                    out_strides=(8, 64), attention_maps=(8, ), timesteps=(10, 59))
    declared = [(level.channels, level.stride) for level in declared_feature_info(backbone)]
    assert declared == [(2 * (16 + 3), 8), (2 * 64, 64)]
    # the folder's scheduler has T = 60 steps, its U-Net is what arch would otherwise describe
    with pytest.raises(ValueError, match=r"timestep 60 is outside the scheduler's range \[0, 60\)"):
        declared_feature_info(dict(backbone, timesteps=(60, )))
    assert declared_out_channels(dict(backbone, model_dir=None, arch='sd-tiny', vae='sd-tiny')) == [38, 128]
    with pytest.raises(OSError):  # building needs the weights the folder lacks
        DiffusionUNetBackbone(**backbone)


def test_declarations_refuse_what_the_backbone_refuses():
    # an argument the backbone does not take
    with pytest.raises(TypeError, match=r"DiffusionUNetBackbone takes no arguments \['out_stride'\]"):
        declared_feature_info(dict(arch='adm-tiny', out_stride=(8, )))
    # only DiffusionUNetBackbone configs declare these outputs
    with pytest.raises(ValueError, match=r"DiffusionUNetBackbone or a subclass, got type='mmdiff.CachedFeatureBackbone'"):
        declared_feature_info(dict(type='mmdiff.CachedFeatureBackbone'))
    # arch=None reads the U-Net from model_dir
    with pytest.raises(ValueError, match='arch=None needs model_dir'):
        declared_feature_info(dict(arch=None))
    # a block type without a declared layout
    with pytest.raises(ValueError, match=r"down_block_types\[0\]='KDownBlock2D' is not supported; choose one of "
                                         r"\['DownBlock2D', "):
        list_config_taps(dict(SD_TINY, down_block_types=('KDownBlock2D', ) * 4), 'UNet2DConditionModel')
    # one block type per level
    with pytest.raises(ValueError, match=r'4 block_out_channels \(16, 32, 64, 64\) but 3 down_block_types and 4 '):
        list_config_taps(dict(SD_TINY, down_block_types=SD_TINY['down_block_types'][1:]), 'UNet2DConditionModel')
    # projections: one width >= 1 per output
    with pytest.raises(ValueError, match=r'projection_channels has 1 widths for 4 outputs'):
        declared_feature_info(dict(arch='adm-tiny', projection_channels=(8, )))
    with pytest.raises(ValueError, match='timestep_fusion=.sum. is not supported'):
        declared_feature_info(dict(arch='adm-tiny', timestep_fusion='sum'))
