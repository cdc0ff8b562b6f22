"""DiTF's feature options (AdaLN-modulated taps, massive-activation channels zeroed) and ViTDet's simple feature
pyramid on the diffusion transformers."""
import pytest
import torch
import torch.nn.functional as F

from mmdiff.models.backbones import DiffusionTransformerBackbone, declared_feature_info
from mmdiff.models.backbones.transformer import TRANSFORMER_PRESETS, TransformerPass
from tests.test_utils.transformer_backbones import FAMILIES, tiny_backbone

IMAGES = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1


def shift_scale(family: str, model, block, steps, conditions) -> tuple:
    """The AdaLN shift and scale ``(B, 1, C)`` that ``block`` (None: the output norm) applies to its input, restated
    from diffusers' AdaLayerNormZero / AdaLayerNormZeroSingle / SD35AdaLayerNormZeroX / AdaLayerNormContinuous /
    AdaLN-single (PixArt, Sana) / DiT's output head, with their chunk orders."""
    batch, silu = steps.shape[0], F.silu
    if family in ('pixart', 'sana'):
        embed = model.adaln_single if family == 'pixart' else model.time_embed
        extra = dict(added_cond_kwargs=dict(resolution=None, aspect_ratio=None)) if family == 'pixart' else {}
        six, embedded = embed(steps.float(), **extra, batch_size=batch, hidden_dtype=torch.float32)
        if block is None:
            return (model.scale_shift_table[None] + embedded[:, None]).chunk(2, dim=1)
        return (block.scale_shift_table[None] + six.reshape(batch, 6, -1)).chunk(6, dim=1)[:2]
    if family == 'dit':
        labels = conditions['labels']
        if block is None:
            shift, scale = model.proj_out_1(silu(model.transformer_blocks[0].norm1.emb(steps, labels, torch.float32)))\
                .chunk(2, dim=1)
            return shift[:, None], scale[:, None]
        shift, scale = block.norm1.linear(silu(block.norm1.emb(steps, labels, torch.float32))).chunk(6, dim=1)[:2]
        return shift[:, None], scale[:, None]
    if family == 'sd3':
        temb = model.time_text_embed(steps, conditions['pooled'])
    else:
        temb = model.time_text_embed(steps.float(), torch.full((batch, ), 3500.0), conditions['pooled'])
    if block is None:  # AdaLayerNormContinuous: scale first
        scale, shift = model.norm_out.linear(silu(temb)).chunk(2, dim=1)
    elif hasattr(block, 'norm1'):  # AdaLayerNormZero (6 chunks) or SD3.5's dual-attention X (9)
        shift, scale = block.norm1.linear(silu(temb)).chunk(9 if block.norm1.linear.out_features == 9 * temb.shape[1]
                                                            else 6, dim=1)[:2]
    else:  # FLUX's single-stream AdaLayerNormZeroSingle
        shift, scale = block.norm.linear(silu(temb)).chunk(3, dim=1)[:2]
    return shift[:, None], scale[:, None]


@pytest.mark.parametrize('family', FAMILIES)
def test_modulated_taps_equal_a_restatement_of_the_next_norms_adaln(family, tmp_path):
    """modulated=True: each block's output, through a LayerNorm without affine (eps 1e-6, as DiTF's pre_norm) and
    the next block's AdaLN (1 + scale) x + shift for this step, the last block's through the output norm."""
    arch = FAMILIES[family][0]
    if family == 'sd3':  # a dual-attention block after block 0, as in SD3.5's blocks 0-12
        arch = dict(TRANSFORMER_PRESETS['sd3-tiny'], dual_attention_layers=(1, ))
    backbone = tiny_backbone(family, tmp_path, arch=arch, modulated=True, timesteps=(40, 600))
    model = backbone.transformer
    raw_pass = TransformerPass(model)
    names = raw_pass.step_names
    with torch.no_grad():
        sample, steps, conditions = backbone.prepare_inputs(IMAGES)
        modulated = backbone.model_pass(sample, steps, names, **conditions)
        raw = raw_pass(sample, steps, names, **conditions)
        blocks = dict(raw_pass.blocks)
        for index, name in enumerate(names):
            following = blocks[names[index + 1]] if index + 1 < len(names) else None
            shift, scale = shift_scale(family, model, following, steps, conditions)
            tokens = raw[name].flatten(2).transpose(1, 2)
            expected = F.layer_norm(tokens, tokens.shape[-1:], eps=1e-6) * (1 + scale) + shift
            torch.testing.assert_close(modulated[name].flatten(2).transpose(1, 2), expected, rtol=1e-5, atol=1e-5,
                                       msg=name)


def boosted_backbone(tmp_path, channel: int = 5, **kwargs) -> DiffusionTransformerBackbone:
    """A tiny FLUX whose double-stream blocks write a massive activation into ``channel`` (as FLUX.1-dev's blocks
    write one into channels 154 and 1446)."""
    backbone = tiny_backbone('flux', tmp_path, out_strides=None, out_blocks=(0, 1), **kwargs)
    for block in backbone.transformer.transformer_blocks:
        block.ff.net[2].bias.data[channel] += 300.0
    return backbone


def test_drop_massive_channels_picks_what_a_direct_computation_picks_and_zeroes_them(tmp_path):
    backbone = boosted_backbone(tmp_path, drop_massive_channels=2)
    reference = boosted_backbone(tmp_path)  # the same weights (seeded), nothing dropped
    assert not backbone.massive_channels_chosen
    captured = {}
    for index in (0, 1):  # the direct computation: forward hooks on diffusers' blocks, mean |x| over tokens
        backbone.transformer.transformer_blocks[index].register_forward_hook(
            lambda module, args, output, index=index: captured.__setitem__(index, output[1]))
    with torch.no_grad():
        outputs = backbone(IMAGES)  # the first batch chooses
        sample, steps, conditions = backbone.prepare_inputs(IMAGES)
        captured.clear()
        backbone.model_pass(sample, steps, ['transformer_blocks.1'], **conditions)
        expected = [sorted(captured[index].abs().mean((0, 1)).topk(2).indices.tolist()) for index in (0, 1)]
        unchanged = reference(IMAGES)
    assert backbone.massive_channels.tolist() == expected and all(5 in row for row in expected)
    for output, full, channels in zip(outputs, unchanged, expected):
        assert output[:, channels].abs().max() == 0
        kept = [c for c in range(output.shape[1]) if c not in channels]
        torch.testing.assert_close(output[:, kept], full[:, kept])


def test_a_saved_and_reloaded_backbone_replays_the_chosen_channels(tmp_path, monkeypatch):
    backbone = boosted_backbone(tmp_path, drop_massive_channels=2)
    with torch.no_grad():
        first = backbone(IMAGES)
    path = tmp_path / 'backbone.pth'
    torch.save(backbone.state_dict(), path)
    reloaded = boosted_backbone(tmp_path, drop_massive_channels=2)
    reloaded.load_state_dict(torch.load(path, weights_only=True))

    def no_choice(*args, **kwargs):
        raise AssertionError('a reloaded backbone chose its channels again')

    monkeypatch.setattr(reloaded, 'choose_massive_channels', no_choice)
    assert reloaded.massive_channels_chosen
    assert torch.equal(reloaded.massive_channels, backbone.massive_channels)
    with torch.no_grad():
        other_batch = reloaded(IMAGES.flip(0))
    for output, expected in zip(other_batch, first):
        torch.testing.assert_close(output, expected.flip(0))


def test_given_channels_are_zeroed_without_calibration(tmp_path):
    backbone = tiny_backbone('dit', tmp_path, out_strides=None, out_blocks=(-1, ), drop_massive_channels=(9, 2))
    assert backbone.massive_channels_chosen and backbone.massive_channels.tolist() == [[2, 9]]
    output = backbone(IMAGES)[0]
    assert output[:, [2, 9]].abs().max() == 0 and output[:, 3].abs().max() > 0
    with pytest.raises(ValueError, match=r'drop_massive_channels must be a count k in \[0, 16\) .* got \(3, 3\)'):
        tiny_backbone('dit', tmp_path, drop_massive_channels=(3, 3))


@pytest.mark.parametrize('fusion', ['concat', 'stack'])
def test_the_simple_pyramid_is_vitdets_stages_on_one_block(fusion, tmp_path):
    """pyramid='simple': strides 4, 8, 16, 32 from one block with channels C/4, C/2, C, C as declared; the stride-16
    level is the block itself, stride 32 its 2x2 max-pool (rounded up); the stages train with a frozen model."""
    config = dict(type='mmdiff.DiffusionTransformerBackbone', arch='dit-tiny', vae='sd-tiny', pyramid='simple',
                  timesteps=(10, 100), timestep_fusion=fusion, out_blocks=(20, ))
    declared = declared_feature_info(config)
    backbone = tiny_backbone('dit', tmp_path, **{k: v for k, v in config.items() if k not in ('type', 'arch', 'vae')})
    plain = tiny_backbone('dit', tmp_path, out_strides=None, out_blocks=(20, ), timesteps=(10, 100),
                          timestep_fusion=fusion)
    assert backbone.feature_info == declared and [level.stride for level in declared] == [4, 8, 16, 32]
    width = 32 if fusion == 'concat' else 16
    assert [level.channels for level in declared] == [width // 4, width // 2, width, width]
    images = torch.rand(1, 3, 80, 112) * 2 - 1  # a 5 x 7 token grid
    outputs = backbone(images)
    grids = [tuple(out.shape[-2:]) for out in outputs]
    assert grids == [(20, 28), (10, 14), (5, 7), (3, 4)]
    with torch.no_grad():
        block = plain(images)[0]
    torch.testing.assert_close(outputs[2], block)
    pooled = F.max_pool2d(block.flatten(0, 1) if fusion == 'stack' else block, 2, ceil_mode=True)
    torch.testing.assert_close(outputs[3], pooled.view_as(outputs[3]))
    sum(out.sum() for out in outputs).backward()
    assert all(p.grad is not None for p in backbone.projections.parameters())
    assert all(p.grad is None for p in backbone.transformer.parameters())


def test_simple_pyramid_values_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"makes every level from one block; out_blocks names 2"):
        tiny_backbone('dit', tmp_path, pyramid='simple', out_blocks=(1, 2))
    with pytest.raises(ValueError, match=r"makes the strides \[4, 8, 16, 32\] from transformer_blocks.27 at stride "
                       r"16 .* got out_strides=\(64,\)"):
        tiny_backbone('dit', tmp_path, pyramid='simple', out_strides=(64, ))
    with pytest.raises(ValueError, match=r"takes no projection_channels"):
        tiny_backbone('dit', tmp_path, pyramid='simple', projection_channels=(8, 8, 8, 8))
    with pytest.raises(ValueError, match=r"pyramid='pyramidal' is not supported; choose one of \['resample', "
                       r"'simple'\]"):
        tiny_backbone('dit', tmp_path, pyramid='pyramidal')


@pytest.mark.parametrize('family', ['sana', 'flux'])
def test_modulated_fine_tuning_trains_the_modulating_norm(family, tmp_path):
    """frozen=False with modulated=True: every trainable parameter gets a gradient, the next block's norm among them
    (the output norm after the last block), and nothing behind it."""
    backbone = tiny_backbone(family, tmp_path, frozen=False, modulated=True, out_strides=None, out_blocks=(0, -1))
    sum(out.sum() for out in backbone(torch.rand(1, 3, 64, 64) * 2 - 1)).backward()
    trainable = {name for name, p in backbone.transformer.named_parameters() if p.requires_grad}
    assert [name for name, p in backbone.transformer.named_parameters() if p.requires_grad and p.grad is None] == []
    output_norm = 'scale_shift_table' if family == 'sana' else 'norm_out.linear.weight'  # Sana's has no affine
    assert output_norm in trainable and not any(name.startswith('proj_out') for name in trainable)


def test_channels_are_chosen_in_the_precision_the_model_runs_in(tmp_path):
    """A bf16-weights backbone chooses its channels under its own autocast, as its forward runs."""
    backbone = tiny_backbone('dit', tmp_path, out_strides=None, out_blocks=(-1, ), drop_massive_channels=2,
                             dtype='bfloat16', weights_dtype='bfloat16')
    output = backbone(IMAGES)[0]
    assert backbone.massive_channels_chosen and output[:, backbone.massive_channels[0]].abs().max() == 0
