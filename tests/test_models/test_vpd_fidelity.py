"""VPD (Zhao et al. 2023) as published: the backbone, the config and the recipe against
tests/test_utils/vpd_reference.py, a restatement of github wl-zhao/VPD @ 92095ab."""
import copy
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor
from mmengine.config import Config

from mmdiff.models.backbones import DiffusionUNetBackbone, declared_out_channels
from mmdiff.diffusers_compat import check_map_support, transformer_with_maps
from mmdiff.models.backbones.unet.presets import sd_unet_config
from mmdiff.models.backbones.core.vae_encoder import VAE_PRESETS
from tests.test_utils.vpd_reference import text_adapter, unscaled_mode, vpd_unet_features

ROOT = Path(__file__).resolve().parents[2]
VPD_CONFIG = ROOT / 'configs/vpd/fpn_vpd-sd15_8xb2-80k_ade20k-512x512.py'
# SD 1.5's layout (three output blocks per decoder level, so ldm output blocks 1, 4, 7 and 11 mean what they mean
# for SD 1.5) with a few channels; two heads, so the mean over heads matters
TINY_SD15 = sd_unet_config(block_out_channels=(16, 32, 64, 64), layers_per_block=2, cross_attention_dim=32,
                           attention_head_dim=2, norm_num_groups=8, sample_size=16)
NUM_CLASSES = 6


def vpd_backbone_cfg() -> dict:
    return dict(copy.deepcopy(Config.fromfile(str(VPD_CONFIG)).model.backbone))


def tiny_vpd_cfg(tmp_path) -> dict:
    """The config's backbone on the tiny SD-1.5 layout and the tiny VAE, with NUM_CLASSES class embeddings."""
    embeddings = tmp_path / 'class_embeddings.pth'
    torch.save(torch.randn(NUM_CLASSES, 32, generator=torch.Generator().manual_seed(3)), embeddings)
    cfg = vpd_backbone_cfg()
    cfg.update(arch=TINY_SD15, vae='sd-tiny', model_dir=None, with_cp=False,
               context=dict(cfg['context'], path=str(embeddings), num_tokens=NUM_CLASSES, adapter_hidden_channels=32))
    return cfg


def tiny_vpd_backbone(tmp_path) -> DiffusionUNetBackbone:
    cfg = tiny_vpd_cfg(tmp_path)
    cfg.pop('type')
    torch.manual_seed(0)
    backbone = DiffusionUNetBackbone(**cfg)
    with torch.no_grad():  # a trained-looking adapter, so that its residual shows in the context
        backbone.context.gamma.uniform_(0.5, 1.0)
    return backbone


def test_vpd_backbone_is_vpds_extract_feat(tmp_path):
    """Latents, context, taps and attention maps together: the backbone equals the restated VPD forward."""
    backbone = tiny_vpd_backbone(tmp_path).eval()
    vae = AutoencoderKL(**VAE_PRESETS['sd-tiny'])
    vae.load_state_dict(backbone.vae_encoder.state_dict(), strict=False)  # the same encoder; the decoder is unused
    unet = copy.deepcopy(backbone.unet).eval()
    unet.set_attn_processor(AttnProcessor())
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        latents = unscaled_mode(vae, images)
        context = text_adapter(backbone.context.tokens, backbone.context.adapter, backbone.context.gamma, 2)
        expected = vpd_unet_features(unet, latents, context, base_size=128)
        outputs = backbone(images)
    assert [out.shape[1] for out in outputs] == [16, 32 + NUM_CLASSES, 64 + NUM_CLASSES, 64]
    assert backbone.out_strides == (8, 16, 32, 64)
    for ours, reference in zip(outputs, expected):
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
    # the appended channels are attention probabilities: each pixel's maps sum to one over the classes
    torch.testing.assert_close(outputs[1][:, 32:].sum(1), torch.ones(2, 8, 8))
    assert [len(level.attention_maps) for level in backbone.feature_info] == [0, 5, 5, 0]  # 2 encoder + 3 decoder


def map_trained_gradients(backbone: DiffusionUNetBackbone, images: torch.Tensor, loss_of) -> dict:
    """The gradient ``loss_of(outputs)`` gives each parameter that makes the maps: the context adapter and the
    cross-attention's query and key projections (zeros where none arrives)."""
    backbone.zero_grad()
    loss_of(backbone(images)).backward()
    return {name: torch.zeros_like(p) if p.grad is None else p.grad.clone() for name, p in backbone.named_parameters()
            if name.startswith('context.') or '.attn2.to_q.' in name or '.attn2.to_k.' in name}


def test_vpds_attention_maps_carry_no_gradient_and_its_features_theirs(tmp_path):
    """VPD's checkpointed blocks store the maps from a forward under no_grad: a loss on the map channels trains
    nothing, a loss on the features trains as with maps that carry gradient (mmdiff's attention_maps_grad=True)."""
    published = tiny_vpd_backbone(tmp_path)
    assert published.attention_maps_grad is False  # the config's setting
    cfg = dict(tiny_vpd_cfg(tmp_path), attention_maps_grad=True)
    cfg.pop('type')
    differentiable = DiffusionUNetBackbone(**cfg)
    differentiable.load_state_dict(published.state_dict())
    images = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(1)) * 2 - 1
    channels = (16, 32, 64, 64)  # each output's own features; what follows them are maps

    def map_loss(outputs):
        return sum(out[:, width:].square().sum() for out, width in zip(outputs, channels))

    def feature_loss(outputs):
        return sum(out[:, :width].square().mean() for out, width in zip(outputs, channels))

    on_maps = map_trained_gradients(published, images, map_loss)
    assert len(on_maps) > 2 and all(not grad.any() for grad in on_maps.values())
    assert any(grad.any() for grad in map_trained_gradients(differentiable, images, map_loss).values())
    on_features = map_trained_gradients(published, images, feature_loss)
    assert any(grad.any() for grad in on_features.values())
    for name, grad in map_trained_gradients(differentiable, images, feature_loss).items():
        torch.testing.assert_close(on_features[name], grad, msg=name)
    with pytest.raises(ValueError, match='attention_maps_grad=False detaches the cross-attention maps, but '
                       'attention_maps is None'):
        DiffusionUNetBackbone(arch='sd-tiny', attention_maps_grad=False)


def test_the_scaled_latents_would_differ(tmp_path):
    """VPD skips the 0.18215 scale factor: mmdiff's default ('scaled') feeds other latents."""
    backbone = tiny_vpd_backbone(tmp_path)
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    scaled = copy.deepcopy(backbone.vae_encoder)
    scaled.latents = 'scaled'
    with torch.no_grad():
        torch.testing.assert_close(scaled(images), backbone.vae_encoder(images) * 0.18215)
    with pytest.raises(ValueError, match=r"latents='halved' .*\['scaled', 'unscaled'\]"):
        DiffusionUNetBackbone(arch='sd-tiny', vae='sd-tiny', vae_latents='halved', context=dict(type='zero'))


@pytest.mark.parametrize('linear_projection', [False, True], ids=['conv-projection', 'linear-projection'])
def test_transformer_with_maps_is_the_transformers_own_forward(linear_projection):
    """The transformer run through its parts gives diffusers' output (SD 1.x and SD 2.x projections)."""
    arch = dict(TINY_SD15, use_linear_projection=linear_projection, transformer_layers_per_block=2)
    arch.pop('type')
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**arch).eval()
    unet.set_attn_processor(AttnProcessor())
    transformer = unet.down_blocks[1].attentions[0]
    check_map_support(transformer, 'down_blocks.1.attentions.0')
    hidden, context = torch.randn(2, 32, 4, 6), torch.randn(2, 5, 32)
    with torch.no_grad():
        output, maps = transformer_with_maps(transformer, hidden, context)
        expected = transformer(hidden, encoder_hidden_states=context, return_dict=False)[0]
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-6)
    assert [tuple(m.shape) for m in maps] == [(2, 5, 4, 6)] * 2
    torch.testing.assert_close(maps[0].sum(1), torch.ones(2, 4, 6))


def test_vpd_config_declares_vpds_channels_and_strides():
    cfg = Config.fromfile(str(VPD_CONFIG))
    channels = declared_out_channels(cfg.model.backbone)  # the class-embedding file need not exist: num_tokens
    assert channels == [320, 790, 1430, 1280] == cfg.model.neck.in_channels
    meta = vpd_backbone_cfg()
    meta.pop('type')
    meta.update(model_dir=None, context=dict(meta['context'], type='learnable', path=None))  # no file: 150 zeros
    with torch.device('meta'):
        backbone = DiffusionUNetBackbone(**meta)
    assert backbone.out_strides == (8, 16, 32, 64)
    # ldm output_blocks 11, 7, 4, 1 of SD 1.5, the maps of its encoder and decoder cross-attentions at 16 and 32
    assert [level.block for level in backbone.feature_info] == [
        'up_blocks.3.attentions.2', 'up_blocks.2.attentions.1', 'up_blocks.1.attentions.1', 'up_blocks.0.resnets.1']
    assert backbone.feature_info[1].attention_maps == tuple(
        f'{block}.transformer_blocks.0.attn2.map' for block in (
            'down_blocks.1.attentions.0', 'down_blocks.1.attentions.1', 'up_blocks.2.attentions.0',
            'up_blocks.2.attentions.1', 'up_blocks.2.attentions.2'))
    assert [tap.name for tap in backbone.output_taps] == [level.block for level in backbone.feature_info]
    assert backbone.vae_encoder.latents == 'unscaled' and backbone.timesteps == (1, )
    assert backbone.noise_mode == 'none' and not backbone.frozen
    adapter = backbone.context.adapter
    assert (adapter[0].in_features, adapter[0].out_features, adapter[2].out_features) == (768, 768, 768)
    assert isinstance(adapter[1], torch.nn.GELU) and backbone.context.gamma.shape == (768, )
    head = cfg.model.decode_head
    assert (head.type, head.channels, head.num_classes, head.dropout_ratio) == ('FPNHead', 256, 150, 0.1)
    assert cfg.model.get('auxiliary_head') is None
    assert cfg.model.test_cfg == dict(mode='slide', crop_size=(512, 512), stride=(341, 341))
    assert cfg.train_dataloader.batch_size == 2 and cfg.train_cfg.max_iters == 80000


def test_attention_maps_are_refused_where_they_cannot_be_made():
    with pytest.raises(ValueError, match='has none'):
        DiffusionUNetBackbone(arch='adm-tiny', attention_maps=(16, ))
    with pytest.raises(ValueError, match=r'distinct output strides out of \[8, 16\]'):
        DiffusionUNetBackbone(arch='sd-tiny', vae='sd-tiny', context=dict(type='zero', num_tokens=4),
                              out_strides=(8, 16), attention_maps=(32, ))
    with pytest.raises(ValueError, match=r'no cross-attention at stride 64 .* strides \[8, 16, 32\]'):
        DiffusionUNetBackbone(arch='sd-tiny', vae='sd-tiny', context=dict(type='zero', num_tokens=4),
                              out_strides=(8, 64), attention_maps=(64, ))
    with pytest.raises(ValueError, match='does not exist and the context gives no num_tokens'):
        declared_out_channels(dict(vpd_backbone_cfg(), context=dict(type='file', path='missing.pth')))


def ldm_name(diffusers_name: str) -> str:
    """The ldm (VPD) name of a diffusers SD U-Net parameter, for the parts the optimiser rule tells apart."""
    for diffusers_part, ldm_part in (('resnets.0.norm1', 'in_layers.0'), ('resnets.0.norm2', 'out_layers.0'),
                                     ('resnets.0.conv1', 'in_layers.2'), ('attentions.0.norm', '1.norm'),
                                     ('attentions.0.transformer_blocks.0', '1.transformer_blocks.0'),
                                     ('attentions.0.proj_in', '1.proj_in'), ('time_embedding.linear_1', 'time_embed.0'),
                                     ('conv_in', 'input_blocks.0.0')):
        if diffusers_part in diffusers_name:
            return 'unet.unet.diffusion_model.' + diffusers_name.split('unet.', 1)[1].replace(diffusers_part, ldm_part)
    raise KeyError(diffusers_name)


def mmcv1_param_group(name: str, base_lr: float, base_wd: float) -> tuple:
    """mmcv 1.x DefaultOptimizerConstructor with VPD's custom_keys: longest key first, ties alphabetical."""
    custom_keys = {'unet': dict(lr_mult=0.1), 'encoder_vq': dict(lr_mult=0.0), 'text_encoder': dict(lr_mult=0.0),
                   'norm': dict(decay_mult=0.)}
    for key in sorted(sorted(custom_keys), key=len, reverse=True):
        if key in name:
            return base_lr * custom_keys[key].get('lr_mult', 1.), base_wd * custom_keys[key].get('decay_mult', 1.)
    return base_lr, base_wd


def test_optimizer_gives_each_unet_weight_vpds_learning_rate_and_decay(tmp_path):
    from mmengine.optim import build_optim_wrapper

    cfg = Config.fromfile(str(VPD_CONFIG))
    model = torch.nn.Module()
    model.backbone = tiny_vpd_backbone(tmp_path)
    model.decode_head = torch.nn.Conv2d(4, 4, 1)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    group_of = {id(p): group for group in wrapper.optimizer.param_groups for p in group['params']}
    checked = 0
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:  # the VAE, and U-Net layers behind the last tap: never in a group
            assert id(parameter) not in group_of
            continue
        group = group_of[id(parameter)]
        if name.startswith('backbone.unet.'):
            try:
                reference = ldm_name(name)
            except KeyError:
                continue
            assert (group['lr'], group['weight_decay']) == pytest.approx(mmcv1_param_group(reference, 8e-5, 1e-3)), name
            checked += 1
        elif name.startswith(('backbone.context.', 'decode_head.')):  # VPD's text_adapter, gamma and heads
            assert (group['lr'], group['weight_decay']) == pytest.approx((8e-5, 1e-3)), name
    assert checked > 20
    norms = {name: group_of[id(p)]['lr'] for name, p in model.named_parameters()
             if name.endswith('norm1.weight') and p.requires_grad}
    assert norms['backbone.unet.down_blocks.0.resnets.0.norm1.weight'] == pytest.approx(8e-6)  # ldm in_layers.0
    assert norms['backbone.unet.down_blocks.0.attentions.0.transformer_blocks.0.norm1.weight'] == pytest.approx(8e-5)


def test_schedule_is_mmcvs_poly_with_linear_warmup():
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS

    cfg = Config.fromfile(str(VPD_CONFIG))
    wrapper = build_optim_wrapper(torch.nn.Linear(2, 2), cfg.optim_wrapper)
    schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper)) for s in cfg.param_scheduler]
    worst = 0.0
    for iteration in range(80000):  # every iteration VPD trains
        regular = 8e-5 * (1 - iteration / 80000)  # mmcv PolyLrUpdaterHook, power 1, min_lr 0
        if iteration < 1500:  # mmcv's linear warm-up multiplies the regular lr
            regular *= 1 - (1 - iteration / 1500) * (1 - 1e-6)
        worst = max(worst, abs(wrapper.optimizer.param_groups[0]['lr'] - regular) / regular)
        for scheduler in schedulers:
            scheduler.step()
    assert worst < 1e-9


def test_the_vpd_config_trains_the_unet_and_the_adapter_under_mmseg(tmp_path):
    """One loss and one slide-window prediction of the config's segmentor with the tiny U-Net: the U-Net is
    fine-tuned, the class embeddings stay fixed."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.structures import PixelData
    from mmengine.utils import import_modules_from_strings
    from mmseg.structures import SegDataSample

    cfg = Config.fromfile(str(VPD_CONFIG))
    cfg.model.backbone = tiny_vpd_cfg(tmp_path)
    cfg.model.neck.in_channels = [16, 32 + NUM_CLASSES, 64 + NUM_CLASSES, 64]
    cfg.model.test_cfg = dict(mode='slide', crop_size=(128, 128), stride=(96, 96))
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    model.init_weights()
    sample = SegDataSample(metainfo=dict(img_shape=(128, 128), ori_shape=(128, 128)))
    sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, 128, 128)))
    inputs = torch.rand(2, 3, 128, 128) * 2 - 1
    losses = model.loss(inputs, [sample, copy.deepcopy(sample)])
    total, log_vars = model.parse_losses(losses)
    total.backward()
    assert 'decode.loss_ce' in log_vars and torch.isfinite(total)
    unet = model.backbone.unet
    assert unet.down_blocks[0].resnets[0].conv1.weight.grad is not None  # fine-tuned
    assert unet.up_blocks[3].attentions[2].proj_out.weight.grad is not None
    assert model.backbone.context.adapter[0].weight.grad is not None and model.backbone.context.gamma.grad is not None
    assert not model.backbone.context.tokens.requires_grad  # the CLIP class embeddings are fixed
    assert all(not p.requires_grad for p in model.backbone.vae_encoder.parameters())
    model.eval()
    with torch.no_grad():
        predicted = model.predict(torch.rand(1, 3, 160, 200) * 2 - 1,
                                  [SegDataSample(metainfo=dict(img_shape=(160, 200), ori_shape=(160, 200)))])
    assert predicted[0].pred_sem_seg.data.shape == (1, 160, 200)
