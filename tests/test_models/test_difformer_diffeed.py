"""DifFormer and DifFeed: shapes, one batched U-Net call, exact zero-init feedback, what trains."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS, init_default_scope

from mmdiff.models.backbones import DifFeedBackbone, DiffusionUNetBackbone
from mmdiff.models.heads import DifFormerHead

ROOT = Path(__file__).resolve().parents[2]
DIFFORMER_DEMO = ROOT / 'configs/classification_heads/difformer_adm-tiny-b19-24-30-t90-150-300_demo-shapes.py'
DIFFEED_DEMO = ROOT / 'configs/classification_heads/diffeed-attention-head_adm-tiny-b24-t150_demo-shapes.py'


def build_classifier(config: Path):
    cfg = Config.fromfile(str(config))
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def count_unet_passes(backbone: DiffusionUNetBackbone) -> list:
    calls = []
    backbone.unet.conv_in.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    return calls


@pytest.mark.parametrize('cross_timestep', ['concat', 'attention'])
def test_difformer_head_shapes_and_checks(cross_timestep):
    head = DifFormerHead(num_classes=5, in_channels=(8, 16), num_timesteps=3, embed_dims=16, num_heads=2,
                         pool_size=2, cross_timestep=cross_timestep)
    head.init_weights()
    feats = (torch.rand(4, 3, 8, 8, 8), torch.rand(4, 3, 16, 2, 2))
    assert head(feats).shape == (4, 5)
    width = 16 * 3 if cross_timestep == 'concat' else 16
    assert head.pre_logits(feats).shape == (4, width) and head.token_embedding.shape == (1, 2 * 2 * 2, 16)
    with pytest.raises(ValueError, match=r'backbone output 1 has \(T, C\) = \(2, 16\), expected \(3, 16\)'):
        head((feats[0], torch.rand(4, 2, 16, 2, 2)))
    with pytest.raises(ValueError, match=r"takes the \(N, T, C, h, w\) outputs of timestep_fusion='stack'"):
        head((feats[0], torch.rand(4, 16, 2, 2)))
    with pytest.raises(ValueError, match='in_channels lists 2 outputs, but the backbone gave 1'):
        head(feats[:1])
    with pytest.raises(ValueError, match=r"cross_timestep='sum' is not supported; choose one of \['concat', "):
        DifFormerHead(num_classes=5, in_channels=(8, ), num_timesteps=1, cross_timestep='sum')
    with pytest.raises(ValueError, match=r"DifFormerHead output 0: norm='batch' is not supported; choose one of "
                                         r"\['map', 'token'\]"):
        DifFormerHead(num_classes=5, in_channels=(8, ), num_timesteps=1, norm='batch')


def test_difformer_attends_over_exactly_the_configured_cells_from_one_unet_call():
    model = build_classifier(DIFFORMER_DEMO)
    backbone = model.backbone
    assert [level.block for level in backbone.feature_info] == [
        'up_blocks.3.resnets.1', 'up_blocks.1.attentions.1', 'mid_block']  # blocks 30, 24, 19 by stride
    passes = count_unet_passes(backbone)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    feats = tuple(feat.requires_grad_() for feat in backbone(images))
    assert passes == [3 * 2]  # one U-Net call on the (3 timesteps x 2 images) batch
    assert [tuple(feat.shape[:3]) for feat in feats] == [(2, 3, 32), (2, 3, 64), (2, 3, 64)]
    # every configured (block, t) map reaches the logits
    model.head(feats).sum().backward()
    for feat in feats:
        assert all(feat.grad[:, t].abs().sum() > 0 for t in range(3))


def test_diffeed_with_zero_adapters_reproduces_the_plain_features_exactly():
    kwargs = dict(arch='adm-tiny', timesteps=(10, 150), out_strides=(4, 8, 16, 32))
    torch.manual_seed(0)
    # every pyramid tap fed back to its mirror through the zero-started adapters
    feedback = DifFeedBackbone(adapter='gated-conv3x3-bn-relu', **kwargs)
    plain = DiffusionUNetBackbone(**kwargs)
    plain.load_state_dict({k: v for k, v in feedback.state_dict().items() if not k.startswith('adapters.')})
    assert [(d.stride, e.stride) for d, e in feedback.feedback_pairs] == [(4, 4), (8, 8), (16, 16), (32, 32)]
    passes = count_unet_passes(feedback)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    for ours, reference in zip(feedback(images), plain(images)):
        assert torch.equal(ours, reference)
    assert passes == [4, 4]  # the feedback pass and the second pass, each on the whole batch
    # once an adapter's gate opens, the second pass differs
    with torch.no_grad():
        feedback.adapters[-1].gate.fill_(1.0)
    assert not torch.equal(feedback(images)[0], plain(images)[0])


def test_diffeed_feeds_back_a_layer_deeper_than_its_outputs_into_a_tapped_block():
    """The feedback pass runs on past the last output (to block 24); the second pass ends at the output, block 14,
    which is also where the feedback is added: the output includes it."""
    kwargs = dict(arch='adm-tiny', out_strides=None, out_blocks=(14, ))
    torch.manual_seed(0)
    feedback = DifFeedBackbone(feedback=(24, ), adapter='gated-conv3x3-bn-relu', **kwargs)
    plain = DiffusionUNetBackbone(**kwargs)
    plain.load_state_dict({k: v for k, v in feedback.state_dict().items() if not k.startswith('adapters.')})
    assert [(d.diffssl_index, e.diffssl_index) for d, e in feedback.feedback_pairs] == [(24, 14)]
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(feedback(images)[0], plain(images)[0])
    with torch.no_grad():
        feedback.adapters[0].gate.fill_(1.0)
    assert not torch.equal(feedback(images)[0], plain(images)[0])


def test_diffeed_training_step_updates_only_adapters_and_head():
    from mmpretrain.structures import DataSample
    model = build_classifier(DIFFEED_DEMO)
    assert [(d.diffssl_index, e.diffssl_index) for d, e in model.backbone.feedback_pairs] == [
        (21, 17), (24, 14), (27, 11), (30, 8), (33, 5), (36, 2)]
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {name.split('.')[0] for name, p in model.named_parameters() if p.requires_grad} == {'backbone', 'head'}
    assert all(name.startswith('adapters.') for name, p in model.backbone.named_parameters() if p.requires_grad)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    data = dict(inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in range(2)],
                data_samples=[DataSample().set_gt_label(label) for label in (0, 3)])
    model.train_step(data, OptimWrapper(torch.optim.SGD(trainable, lr=0.1)))
    changed = {name for name, p in model.named_parameters() if not torch.equal(before[name], p)}
    # every adapter gets a gradient through the frozen U-Net's second pass
    assert {f'backbone.adapters.{i}.conv.weight' for i in range(6)} <= changed
    assert any(name.startswith('head.') for name in changed)
    assert all(name.startswith(('head.', 'backbone.adapters.')) for name in changed)


def test_diffeed_feedback_errors_name_the_blocks():
    with pytest.raises(ValueError, match=r"'up_blocks.1.upsamplers.0' \(decoder resample\) has no mirror encoder"):
        DifFeedBackbone(arch='adm-tiny', out_strides=None, out_blocks=(24, ), feedback=(25, ))
    with pytest.raises(ValueError, match=r"'up_blocks.1.attentions.1' \(stride 16\) -> 'down_blocks.2.resnets.0' "
                       r'\(stride 4\): the resolutions differ'):
        DifFeedBackbone(arch='adm-tiny', out_strides=None, out_blocks=(24, ), feedback=[(24, 8)])
    with pytest.raises(ValueError, match=r"feedback source 'down_blocks.2.resnets.0' is in the encoder"):
        DifFeedBackbone(arch='adm-tiny', out_strides=None, out_blocks=(24, ), feedback=[(8, 8)])
    with pytest.raises(ValueError, match='no output is a decoder layer; give feedback explicitly'):
        DifFeedBackbone(arch='adm-tiny', out_strides=None, out_blocks=(19, ))
