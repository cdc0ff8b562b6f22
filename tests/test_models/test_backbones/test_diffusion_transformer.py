"""DiffusionTransformerBackbone: every family's taps equal its own diffusers forward, the pass stops at the deepest
tap, blocks are numbered as timm numbers them, and bad values are named."""
import io
import shutil
from pathlib import Path

import pytest
import torch

from mmdiff.models.backbones import DiffusionTransformerBackbone, declared_feature_info, declared_out_channels
from mmdiff.models.backbones.transformer import resolve_transformer
from tests.test_utils.transformer_backbones import FAMILIES, TOKEN_STRIDES, TOKENS, tiny_backbone

PUBLISHED = Path(__file__).parent / 'published'
TAPS = (0, 'transformer_blocks.1', -1)


def flux_pack(latents: torch.Tensor) -> torch.Tensor:
    """FluxPipeline._pack_latents (diffusers 0.42.1 pipeline_flux.py:522-527; the pipeline needs transformers)."""
    batch, channels, height, width = latents.shape
    latents = latents.view(batch, channels, height // 2, 2, width // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return latents.reshape(batch, (height // 2) * (width // 2), channels * 4)


def flux_image_ids(height: int, width: int) -> torch.Tensor:
    """FluxPipeline._prepare_latent_image_ids (pipeline_flux.py:508-519)."""
    ids = torch.zeros(height, width, 3)
    ids[..., 1] = ids[..., 1] + torch.arange(height)[:, None]
    ids[..., 2] = ids[..., 2] + torch.arange(width)[None, :]
    return ids.reshape(height * width, 3)


def reference_forward(family: str, backbone, sample, steps, hooks_at) -> dict:
    """The family's own diffusers forward, called as its pipeline calls it, with each named block's image tokens
    caught by a forward hook."""
    model, captured = backbone.transformer, {}
    for name in hooks_at:
        model.get_submodule(name).register_forward_hook(
            lambda module, args, kwargs, output, name=name: captured.__setitem__(
                name, output[1] if isinstance(output, tuple) else output), with_kwargs=True)
    batch = sample.shape[0]
    text = None if backbone.context is None else backbone.context(batch)
    if family == 'dit':
        model(sample, timestep=steps, class_labels=torch.full((batch, ), 10))  # the null class
    elif family == 'pixart':
        model(sample, encoder_hidden_states=text, timestep=steps,
              added_cond_kwargs=dict(resolution=None, aspect_ratio=None))
    elif family == 'sana':  # SanaPipeline passes t x timestep_scale (1.0)
        model(sample, encoder_hidden_states=text, timestep=steps.float() * model.config.timestep_scale)
    elif family == 'sd3':
        model(hidden_states=sample, timestep=steps, encoder_hidden_states=text,
              pooled_projections=backbone.context.pooled_embedding(batch))
    else:
        height, width = sample.shape[2] // 2, sample.shape[3] // 2
        model(hidden_states=flux_pack(sample), timestep=steps.float() / 1000, encoder_hidden_states=text,
              pooled_projections=backbone.context.pooled_embedding(batch), guidance=torch.full((batch, ), 3.5),
              img_ids=flux_image_ids(height, width), txt_ids=torch.zeros(TOKENS, 3))
    return captured


@pytest.mark.parametrize('family', FAMILIES)
def test_taps_equal_the_familys_own_forward(family, tmp_path):
    """Every tap equals the image tokens of diffusers' forward at that block (forward hooks), on the same noised
    latents, steps and conditioning, laid out on the token grid; the noising is the family's scheduler's."""
    backbone = tiny_backbone(family, tmp_path, out_strides=None, out_blocks=TAPS, timesteps=(30, 700),
                             timestep_fusion='stack')
    flow = family in ('sd3', 'flux', 'sana')
    assert type(backbone.noise_scheduler).__name__ == ('FlowMatchEulerDiscreteScheduler' if flow else 'DDPMScheduler')
    images = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        outputs = dict(zip((level.block for level in backbone.feature_info), backbone(images)))
        sample, steps = backbone.noised(backbone.vae_encoder(images))
        captured = reference_forward(family, backbone, sample, steps, outputs)
    stride = TOKEN_STRIDES[family]
    assert [level.stride for level in backbone.feature_info] == [stride] * 3
    for name, output in outputs.items():
        grid = (64 // stride, 96 // stride)
        expected = captured[name].transpose(1, 2).reshape(4, -1, *grid)
        expected = expected.view(2, 2, *expected.shape[1:]).transpose(0, 1)  # (N, T, C, h, w)
        torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize('family', ['sd3', 'flux'])
def test_the_pass_runs_no_block_behind_the_deepest_tap(family, tmp_path):
    backbone = tiny_backbone(family, tmp_path, out_strides=None, out_blocks=('transformer_blocks.1', ))

    def refuse(*args, **kwargs):
        raise AssertionError('a block behind the deepest tap ran')

    for _, block in backbone.model_pass.blocks[2:]:
        block.forward = refuse
    width = 16 if family == 'sd3' else 32
    assert backbone(torch.rand(1, 3, 32, 32) * 2 - 1)[0].shape == (1, width, 2, 2)


def test_blocks_are_numbered_over_both_flux_block_kinds_and_from_the_end(tmp_path):
    backbone = tiny_backbone('flux', tmp_path, out_strides=None, out_blocks=(1, 2, -1))
    assert [level.block for level in backbone.feature_info] == [
        'transformer_blocks.1', 'single_transformer_blocks.0', 'single_transformer_blocks.1']
    with pytest.raises(KeyError, match=r'block 4 does not exist in this transformer; valid blocks are 0..3 or -4..-1'):
        tiny_backbone('flux', tmp_path, out_strides=None, out_blocks=(4, ))


def test_guidance_is_required_exactly_where_the_model_embeds_it(tmp_path):
    with pytest.raises(ValueError, match=r'guidance-distilled .* give guidance=, the scale its pipeline runs it with'):
        DiffusionTransformerBackbone(arch='flux-tiny', vae='flux-tiny', context=dict(type='zero', num_tokens=2))
    with pytest.raises(ValueError, match=r'guidance=3.5 was given, but the SD3Transformer2DModel has no guidance'):
        DiffusionTransformerBackbone(arch='sd3-tiny', vae='sd3-tiny', context=dict(type='zero'), guidance=3.5)


def test_the_default_pyramid_is_the_last_block_at_four_strides(tmp_path):
    backbone = tiny_backbone('sd3', tmp_path)
    assert backbone.out_strides == (4, 8, 16, 32) and {level.block for level in backbone.feature_info} == {
        'transformer_blocks.2'}
    assert list(backbone.out_channels) == declared_out_channels(dict(
        type='mmdiff.DiffusionTransformerBackbone', arch='sd3-tiny', vae='sd3-tiny', context=dict(type='zero')))
    outputs = backbone(torch.rand(1, 3, 64, 64) * 2 - 1)
    assert [tuple(out.shape) for out in outputs] == [(1, 16, 16, 16), (1, 16, 8, 8), (1, 16, 4, 4), (1, 16, 2, 2)]


def test_dit_runs_its_null_class_unless_told_otherwise(tmp_path):
    assert tiny_backbone('dit', tmp_path).class_label == 10
    assert tiny_backbone('dit', tmp_path, class_label=3).class_label == 3
    with pytest.raises(ValueError, match=r'class-conditional \(11 classes\); set class_label to a label in \[0, 11\)'):
        tiny_backbone('dit', tmp_path, class_label=11)


def test_the_flux_schnell_preset_is_the_published_layout(tmp_path):
    """The preset equals FLUX.1-schnell's transformer/config.json (a verbatim copy), checked as a folder is checked
    against arch; FLUX.1-dev's preset differs from it in the guidance embedding alone."""
    folder = tmp_path / 'FLUX.1-schnell' / 'transformer'
    folder.mkdir(parents=True)
    shutil.copy(PUBLISHED / 'flux.1-schnell_transformer_config.json', folder / 'config.json')
    source = resolve_transformer('flux-schnell', str(folder.parent), for_build=False)
    assert source.folder == str(folder) and source.config['num_single_layers'] == 38
    with pytest.raises(ValueError, match=r"does not match arch='flux-dev'.*'guidance_embeds': \(True, False\)"):
        resolve_transformer('flux-dev', str(folder.parent), for_build=False)
    assert declared_out_channels(dict(type='mmdiff.DiffusionTransformerBackbone', arch='flux-schnell', vae='flux',
                                      model_dir=str(folder.parent), context=dict(type='zero'),
                                      out_strides=None, out_blocks=(18, -1))) == [3072, 3072]


@pytest.mark.parametrize('preset, published', [
    ('dit-xl-2-256', 'dit-xl-2-256'), ('pixart-sigma-xl-2-1024', 'pixart-sigma-xl-2-1024-ms'),
    ('sd35-medium', 'sd3.5-medium'), ('flux-dev', 'flux.1-dev'), ('sana-1600m-1024', 'sana-1600m-1024')])
def test_the_full_size_presets_match_the_published_layouts(preset, published, tmp_path):
    """Each preset is checked against its layout as the conversion script that wrote the Hub file states it
    (published/reconstructed/, rebuilt from those scripts), as a folder is checked against arch; Sana's folder also
    brings its DC-AE and its flow-sigma solver, noised as flow matching."""
    folder = tmp_path / preset
    (folder / 'transformer').mkdir(parents=True)
    shutil.copy(PUBLISHED / 'reconstructed' / f'{published}_transformer_config.json', folder / 'transformer' /
                'config.json')
    assert resolve_transformer(preset, str(folder), for_build=False).folder == str(folder / 'transformer')
    if preset == 'sana-1600m-1024':
        for name, file in (('vae', 'config.json'), ('scheduler', 'scheduler_config.json')):
            (folder / name).mkdir()
            shutil.copy(PUBLISHED / 'reconstructed' / f'sana-1600m-1024_{name}_config.json', folder / name / file)
        info = declared_feature_info(dict(type='mmdiff.DiffusionTransformerBackbone', arch=preset, vae='sana',
                                          model_dir=str(folder), context=dict(type='zero', num_tokens=300),
                                          out_strides=None, out_blocks=(-1, )))
        assert [(level.channels, level.stride) for level in info] == [(2240, 32)]


@pytest.mark.parametrize('family', FAMILIES)
def test_the_frozen_backbone_traces_and_exports(family, tmp_path):
    """torch.jit.trace, torch.export and ONNX give the eager outputs; but for FLUX, whose RMSNorm the TorchScript
    ONNX exporter of torch 2.14 does not convert (aten::rms_norm), and Sana, whose DC-AE encoder it writes as a
    Transpose with a negative permutation that onnxruntime refuses."""
    import onnxruntime
    backbone = tiny_backbone(family, tmp_path, timesteps=(10, 150), out_strides=(8, 16)).eval()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = backbone(images)
        results = [torch.jit.trace(backbone, images, check_trace=False)(images),
                   torch.export.export(backbone, (images, )).module()(images)]
    if family not in ('flux', 'sana'):
        onnx_file = io.BytesIO()
        torch.onnx.export(backbone, (images, ), onnx_file, dynamo=False)
        session = onnxruntime.InferenceSession(onnx_file.getvalue())
        results.append([torch.from_numpy(out) for out in
                        session.run(None, {session.get_inputs()[0].name: images.numpy()})])
    for outputs in results:
        for output, reference in zip(outputs, expected):
            torch.testing.assert_close(output, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('family, deepest', [('sd3', 'transformer_blocks.1'), ('flux', 'transformer_blocks.1'),
                                             ('pixart', 'transformer_blocks.2')])
def test_fine_tuning_leaves_trainable_only_what_gets_a_gradient(family, deepest, tmp_path):
    """frozen=False: every parameter left trainable gets a gradient from the outputs (what DDP needs), and the
    embeddings and the blocks up to the deepest tap do train."""
    backbone = tiny_backbone(family, tmp_path, frozen=False, out_strides=None, out_blocks=(deepest, ))
    backbone(torch.rand(1, 3, 32, 32) * 2 - 1)[0].sum().backward()
    trainable = {name: p for name, p in backbone.transformer.named_parameters() if p.requires_grad}
    assert [name for name, p in trainable.items() if p.grad is None] == []
    assert any(name.startswith(deepest) for name in trainable) and not any(
        name.startswith(('proj_out', 'norm_out')) for name in trainable)


def test_guidance_is_checked_before_the_model_is_built(tmp_path, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError('the transformer was built before its guidance was checked')

    monkeypatch.setattr(DiffusionTransformerBackbone.family, 'build_model', no_build)
    with pytest.raises(ValueError, match=r'guidance-distilled'):
        DiffusionTransformerBackbone(arch='flux-tiny', vae='flux-tiny', context=dict(type='zero', num_tokens=2))


def test_attention_maps_are_a_unet_option(tmp_path):
    with pytest.raises(ValueError, match=r"attention_maps=\(16,\) appends VPD's cross-attention maps of a U-Net's"):
        DiffusionTransformerBackbone(arch='sd3-tiny', vae='sd3-tiny', context=dict(type='zero'), attention_maps=(16, ))
