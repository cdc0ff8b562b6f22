"""SDXL on DiffusionUNetBackbone: the published layout, the added text-time conditioning from the context file and
the batch, and taps equal to diffusers' own UNet2DConditionModel forward."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from mmdiff.models.backbones import DiffusionUNetBackbone, declared_out_channels
from mmdiff.models.backbones.core.sources import resolve_scheduler, resolve_vae
from mmdiff.models.backbones.unet import resolve_unet

PUBLISHED = Path(__file__).parent / 'published'
TOKENS, WIDTH, POOLED = 5, 32, 16  # the sdxl-tiny preset cross-attends to 32-wide tokens with a 16-wide pooled one
TAPS = ('down_blocks.2.attentions.1', 'mid_block', 'up_blocks.0.attentions.2', 'up_blocks.1.resnets.1',
        'up_blocks.2.resnets.2')


def prompt_file(folder: Path, pooled_shape=(1, POOLED), with_pooled: bool = True) -> str:
    """An SDXL context file as tools/model_converters/make_prompt_embedding.py writes it, with seeded values."""
    generator = torch.Generator().manual_seed(3)
    saved = dict(prompt_embeds=torch.randn(1, TOKENS, WIDTH, generator=generator))
    if with_pooled:
        saved['pooled_prompt_embeds'] = torch.randn(*pooled_shape, generator=generator)
    path = folder / 'prompt.pth'
    torch.save(saved if with_pooled or pooled_shape is None else saved['prompt_embeds'], path)
    return str(path)


def test_sdxl_taps_equal_the_diffusers_forward_with_the_same_added_conditioning(tmp_path):
    """Every tap equals the output of diffusers' UNet2DConditionModel forward (forward hooks at the block) given the
    file's prompt embedding as encoder_hidden_states and added_cond_kwargs as SDXL's pipeline builds them: the
    pooled embedding and the time ids (original size, crop (0, 0), target size) of the image."""
    path = prompt_file(tmp_path)
    torch.manual_seed(0)
    backbone = DiffusionUNetBackbone(arch='sdxl-tiny', vae='sd-tiny', context=dict(type='file', path=path),
                                     timesteps=(70, 400), timestep_fusion='stack', out_strides=None, out_blocks=TAPS)
    height, width = 64, 96  # a multiple of the downsampling (32 image pixels): no padding, no crop
    images = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        outputs = dict(zip((level.block for level in backbone.feature_info), backbone(images)))
        sample, timesteps = backbone.noised(backbone.vae_encoder(images))
        saved = torch.load(path, weights_only=True)
        batch = sample.shape[0]
        captured = {}
        for name in TAPS:
            backbone.unet.get_submodule(name).register_forward_hook(
                lambda module, args, output, name=name: captured.__setitem__(
                    name, output[0] if isinstance(output, tuple) else getattr(output, 'sample', output)))
        backbone.unet(sample, timesteps, encoder_hidden_states=saved['prompt_embeds'].expand(batch, -1, -1),
                      added_cond_kwargs=dict(text_embeds=saved['pooled_prompt_embeds'].expand(batch, -1),
                                             time_ids=torch.tensor([[height, width, 0, 0, height, width]],
                                                                   dtype=torch.float32).expand(batch, -1)))
    for name in TAPS:
        expected = captured[name].view(2, 2, *captured[name].shape[1:]).transpose(0, 1)  # (N, T, C, h, w)
        torch.testing.assert_close(outputs[name], expected, rtol=1e-5, atol=1e-5, msg=name)


def test_missing_or_misshaped_added_conditioning_is_refused_naming_the_shapes(tmp_path):
    bare = tmp_path / 'bare'
    bare.mkdir()
    path = prompt_file(bare, pooled_shape=None, with_pooled=False)
    with pytest.raises(ValueError, match=r"U-Net takes a pooled text embedding of width 16 beside the prompt embedding "
                                         r"\(SDXL's added conditioning.* holds the prompt embedding alone; expected "
                                         r'dict\(prompt_embeds=\(1, 5, 32\), '
                                         r'pooled_prompt_embeds=\(1, 16\)\): '
                                          r'tools/model_converters/make_prompt_embedding.py'):
        DiffusionUNetBackbone(arch='sdxl-tiny', vae='sd-tiny', context=dict(type='file', path=path), out_strides=(8, ))
    wide = tmp_path / 'wide'
    wide.mkdir()
    path = prompt_file(wide, pooled_shape=(1, 24))
    with pytest.raises(ValueError, match=r'pooled_prompt_embeds of width 24, but the U-Net takes 16; expected '
                                         r'dict\(prompt_embeds=\(1, 5, 32\)'):
        DiffusionUNetBackbone(arch='sdxl-tiny', vae='sd-tiny', context=dict(type='file', path=path), out_strides=(8, ))
    path = prompt_file(wide, pooled_shape=(2, 16))
    with pytest.raises(ValueError, match=r'pooled_prompt_embeds of shape \(2, 16\); expected \(pooled_dim,\) or '
                                         r'\(1, pooled_dim\)'):
        DiffusionUNetBackbone(arch='sdxl-tiny', vae='sd-tiny', context=dict(type='file', path=path), out_strides=(8, ))


def test_zero_and_learnable_contexts_carry_a_pooled_embedding():
    torch.manual_seed(0)
    backbone = DiffusionUNetBackbone(arch='sdxl-tiny', vae='sd-tiny', out_strides=(8, 16),
                                     context=dict(type='learnable', num_tokens=3))
    assert backbone.context.pooled.shape == (POOLED, ) and backbone.context.pooled.requires_grad
    backbone(torch.rand(1, 3, 32, 32) * 2 - 1)[0].sum().backward()
    assert backbone.context.pooled.grad is not None and backbone.context.pooled.grad.abs().sum() > 0
    zero = DiffusionUNetBackbone(arch='sdxl-tiny', vae='sd-tiny', context=dict(type='zero', num_tokens=3), out_strides=(8, ))
    assert not zero.context.pooled.any() and 'context.pooled' not in zero.state_dict()


def test_sdxl_base_preset_is_the_published_layout(tmp_path):
    """The preset, the 'sdxl' VAE and the scheduler equal SDXL-base-1.0's configuration files (copied verbatim),
    checked as a model folder's config.json is checked against arch (nothing is built or loaded)."""
    folder = tmp_path / 'stable-diffusion-xl-base-1.0'
    for part, name in (('unet', 'config.json'), ('vae', 'config.json'), ('scheduler', 'scheduler_config.json')):
        (folder / part).mkdir(parents=True)
        shutil.copy(PUBLISHED / f'sdxl-base-1.0_{part}_{name.replace("scheduler_", "")}', folder / part / name)
    source = resolve_unet('sdxl-base', str(folder), for_build=False)
    assert source.folder == str(folder / 'unet') and source.config['transformer_layers_per_block'] == [1, 2, 10]
    assert resolve_vae('sdxl', 'scaled', str(folder)).config['scaling_factor'] == 0.13025
    scheduler = resolve_scheduler(None, str(folder))
    assert (scheduler.type, scheduler.config['beta_schedule']) == ('DDPMScheduler', 'scaled_linear')
    config = json.loads((folder / 'unet' / 'config.json').read_text())
    assert config['projection_class_embeddings_input_dim'] == 1280 + 6 * config['addition_time_embed_dim']
    backbone = dict(type='mmdiff.DiffusionUNetBackbone', arch='sdxl-base', vae='sdxl', model_dir=str(folder),
                    context=dict(type='zero'), out_strides=(4, 8, 16, 32), resample_missing_strides=True)
    assert declared_out_channels(backbone) == [320, 320, 640, 1280]
    (folder / 'unet' / 'config.json').write_text(json.dumps(dict(config, transformer_layers_per_block=[1, 2, 2])))
    with pytest.raises(ValueError, match=r"does not match arch='sdxl-base'.*transformer_layers_per_block"):
        resolve_unet('sdxl-base', str(folder), for_build=False)


def test_sdxl_cross_attention_maps_come_from_the_same_pass(tmp_path):
    """VPD's map channels on SDXL's linear-projection transformers: the features beside them are diffusers' forward,
    and each pixel's mean map is a distribution over the context tokens."""
    path = prompt_file(tmp_path)
    torch.manual_seed(0)
    backbone = DiffusionUNetBackbone(arch='sdxl-tiny', vae='sd-tiny', context=dict(type='file', path=path),
                                     timesteps=(100, ), out_strides=(16, ), attention_maps=(16, ))
    # the two encoder and three decoder transformers at stride 16, one block each
    assert backbone.out_channels == (32 + TOKENS, ) and len(backbone.feature_info[0].attention_maps) == 2 + 3
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    captured = {}
    backbone.unet.get_submodule('up_blocks.1.attentions.2').register_forward_hook(
        lambda module, args, output: captured.__setitem__('tap', output[0]))
    saved = torch.load(path, weights_only=True)
    with torch.no_grad():
        output, = backbone(images)
        sample, timesteps = backbone.noised(backbone.vae_encoder(images))
        backbone.unet(sample, timesteps, encoder_hidden_states=saved['prompt_embeds'],
                      added_cond_kwargs=dict(text_embeds=saved['pooled_prompt_embeds'],
                                             time_ids=torch.tensor([[64., 64., 0., 0., 64., 64.]])))
    torch.testing.assert_close(output[:, :32], captured['tap'], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(output[:, 32:].sum(1), torch.ones(1, 4, 4))
