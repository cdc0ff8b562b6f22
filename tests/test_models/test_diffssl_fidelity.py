"""The diffssl papers' settings as published: heads, DifFeed's feedback pass, recipe and noise, each against the
re-statement of the reference code in tests/test_utils/diffssl_reference.py."""
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from PIL import Image

from mmdiff.datasets.transforms import ADMResizeCrop
from mmdiff.models.backbones import DifFeedBackbone, DiffusionUNetBackbone
from mmdiff.models.backbones.unet.adm_architecture import infer_adm_architecture
from mmdiff.models.backbones.unet.adm_key_map import convert_adm_to_diffusers
from tests.test_utils.adm_reference import AdmUNet
from tests.test_utils.diffssl_reference import (ReferenceAttentionFusion, ReferenceLinearHead, c_b_r_adapter,
                                                feedback_forward, q_sample)

ROOT = Path(__file__).resolve().parents[2]
HEADS = ROOT / 'configs/classification_heads'
LINEAR = ROOT / 'configs/linear_probe/linear-probe_adm-256u-b24-t150_4xb32-28e_in1k.py'
ATTENTION = HEADS / 'attention-head_adm-256u-b24-t150_4xb32-28e_in1k.py'
DIFFORMER = HEADS / 'difformer_adm-256u-b19-24-30-t90-150-300_4xb32-28e_in1k.py'
DIFFEED = HEADS / 'diffeed-attention-head_adm-256u-b24-t150_4xb4-28e_in1k.py'
CUB_LINEAR = ROOT / 'configs/linear_probe/linear-probe_adm-256u-b24-t150_4xb32-28e_cub.py'  # a transfer config
FEEDBACK_BLOCKS = (21, 24, 27, 30, 33, 36)
# ADM-256 (ssl_diff/const.py): channels and map sizes of the blocks the published heads read
CHANNELS = {19: 1024, 24: 1024, 30: 512}
SIZES = {19: 8, 24: 16, 30: 64}


def build_head(config: Path):
    cfg = Config.fromfile(str(config))
    init_default_scope('mmpretrain')
    import mmdiff.models.heads  # noqa: F401  (registers the heads)
    torch.manual_seed(0)
    head = MODELS.build(cfg.model.head)
    head.init_weights()
    return cfg, head


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def copy_into_reference(head, reference: ReferenceAttentionFusion, blocks) -> None:
    """mmdiff's head weights into the reference's modules (``blocks``: diffssl block of each tokenizer)."""
    tokenizers = [head.tokenizer] if hasattr(head, 'tokenizer') else list(head.tokenizers)
    cls_token = head.cls_token if hasattr(head, 'cls_token') else head.block_cls_token
    layers = head.blocks if hasattr(head, 'blocks') else head.block_fusion
    with torch.no_grad():
        torch.manual_seed(1)  # a non-zero CLS token and non-trivial norm affines, so that a dropped one shows
        for name, p in head.named_parameters():
            if 'norm' in name or 'cls_token' in name:
                p.add_(0.1 * torch.randn_like(p))
        for tokenizer, b in zip(tokenizers, blocks):
            reference.pre_layer[str(b)][1].load_state_dict(tokenizer.norm.state_dict())
            reference.pre_layer[str(b)][2].load_state_dict(tokenizer.projection.state_dict())
        reference.cls_token.copy_(cls_token)
        for ours, theirs in zip(layers, reference.attention):
            theirs.norm1.load_state_dict(ours.norm1.state_dict())
            theirs.attn.load_state_dict(ours.attn.state_dict(), strict=False)
            theirs.norm2.load_state_dict(ours.norm2.state_dict())
            theirs.fc1.load_state_dict(ours.mlp[0].state_dict())
            theirs.fc2.load_state_dict(ours.mlp[3].state_dict())
        reference.head.load_state_dict(head.fc.state_dict())


def test_published_attention_head_computes_the_reference_and_has_its_size():
    cfg, head = build_head(ATTENTION)
    reference = ReferenceAttentionFusion([24], CHANNELS, SIZES, num_timesteps=1, num_classes=1000)
    assert count(head) == count(reference) == 27_786_216
    assert not any('bias' in name for name, _ in head.named_parameters() if '.attn.qkv' in name)
    copy_into_reference(head, reference, [24])
    feature = torch.randn(2, 1024, 16, 16)
    torch.testing.assert_close(head((feature, )), reference([[feature]]), atol=1e-5, rtol=0)


def test_published_difformer_computes_the_reference_and_has_its_size():
    cfg, head = build_head(DIFFORMER)
    blocks_by_stride = (30, 24, 19)  # the backbone's output order
    reference = ReferenceAttentionFusion([19, 24, 30], CHANNELS, SIZES, num_timesteps=3, num_classes=1000)
    assert count(head) == count(reference) == 31_802_344
    assert head.token_embedding is None and head.timestep_embedding is None
    copy_into_reference(head, reference, blocks_by_stride)
    torch.manual_seed(2)
    stacked = {b: torch.randn(2, 3, CHANNELS[b], SIZES[b], SIZES[b]) for b in CHANNELS}  # (N, T, C, h, w)
    ours = head(tuple(stacked[b] for b in blocks_by_stride))
    theirs = reference([[stacked[b][:, t] for b in (19, 24, 30)] for t in range(3)])
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_published_linear_probe_computes_the_reference():
    cfg, head = build_head(LINEAR)
    reference = ReferenceLinearHead(1024, 1000)
    reference.fc.load_state_dict(head.fc.state_dict())
    feature = torch.randn(2, 1024, 16, 16)
    torch.testing.assert_close(head((feature, )), reference(feature), atol=1e-6, rtol=0)
    assert count(head) == count(reference) == 4096 * 1000 + 1000


def six_level_adm() -> AdmUNet:
    """ADM-256's layout (six levels, two res blocks, attention at downsample rates 8/16/32) at 32 channels."""
    torch.manual_seed(0)
    return AdmUNet(in_channels=3, model_channels=32, out_channels=6, num_res_blocks=2, attention_ds=(8, 16, 32),
                   channel_mult=(1, 1, 2, 2, 4, 4), num_head_channels=32).eval()


def test_diffeed_six_pairs_compute_the_reference_feedback_pass():
    adm, size, t = six_level_adm(), 64, 150
    config = infer_adm_architecture(adm.state_dict()).unet_config(size, num_head_channels=32)
    backbone = DifFeedBackbone(arch=dict(config), timesteps=(t, ), out_strides=None, out_blocks=(24, ),
                               feedback=FEEDBACK_BLOCKS, adapter='conv1x1-bn-relu')
    backbone.unet.load_state_dict(convert_adm_to_diffusers(adm.state_dict(), config, False), strict=True)
    assert [(d.diffssl_index, e.diffssl_index) for d, e in backbone.feedback_pairs] == [
        (b, 38 - b) for b in FEEDBACK_BLOCKS]
    adapters = torch.nn.ModuleList(
        c_b_r_adapter(d.channels, e.channels) for d, e in backbone.feedback_pairs).eval()
    torch.manual_seed(3)
    with torch.no_grad():  # trained-looking adapters: random weights, BN statistics and affine
        for ours, theirs in zip(backbone.adapters, adapters):
            ours.conv.weight.normal_(0, 0.2)
            for tensor in (ours.norm.weight, ours.norm.running_var):
                tensor.uniform_(0.5, 1.5)
            for tensor in (ours.norm.bias, ours.norm.running_mean):
                tensor.normal_(0, 0.1)
            theirs[0].load_state_dict(ours.conv.state_dict())
            theirs[1].load_state_dict(ours.norm.state_dict())
    backbone.eval()
    images = torch.rand(2, 3, size, size) * 2 - 1
    noise = backbone.fixed_noise.sample(1, 3, size, size, device='cpu', dtype=torch.float32)[0]
    steps = torch.full((2, ), t)
    with torch.no_grad():
        ours = backbone(images)[0]
        theirs = feedback_forward(adm, adapters, q_sample(images, steps, noise.expand_as(images)), steps,
                                  FEEDBACK_BLOCKS, wanted=[24])[0]
        plain = DiffusionUNetBackbone(arch=dict(config), timesteps=(t, ), out_strides=None, out_blocks=(24, ))
        plain.unet.load_state_dict(backbone.unet.state_dict())
        without_feedback = plain(images)[0]
    assert (theirs - without_feedback).abs().max() > 1e-2  # the feedback changes block 24
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_published_diffeed_trains_the_reference_parameters():
    cfg, head = build_head(DIFFEED)
    kwargs = {k: v for k, v in cfg.model.backbone.items() if k not in ('type', 'init_cfg')}
    with torch.device('meta'):
        backbone = DifFeedBackbone(**kwargs)
    reference_adapters = [c_b_r_adapter(d.channels, e.channels) for d, e in backbone.feedback_pairs]
    # the ADM-256 widths of ssl_diff/const.py: 1024 at blocks 14-25, 512 at 8-13 and 26-31, 256 elsewhere
    assert [(d.channels, e.channels) for d, e in backbone.feedback_pairs] == [(1024, 1024)] * 2 + [
        (512, 512)] * 2 + [(256, 256)] * 2
    adapters = sum(count(adapter) for adapter in backbone.adapters)
    assert adapters == sum(count(adapter) for adapter in reference_adapters) == 2_759_680
    assert count(head) + adapters == 30_545_896


@pytest.mark.parametrize('config, lr, batch', [(LINEAR, 1e-2, 32), (ATTENTION, 5e-2, 32), (DIFFORMER, 5e-2, 32),
                                               (DIFFEED, 1e-2, 4)], ids=lambda value: getattr(value, 'stem', None))
def test_paper_configs_carry_the_published_recipe(config, lr, batch):
    cfg = Config.fromfile(str(config))
    assert cfg.optim_wrapper.optimizer == dict(type='SGD', lr=lr, momentum=0.0, weight_decay=0.0)
    assert cfg.param_scheduler == [dict(type='StepLR', by_epoch=True, step_size=7, gamma=0.1)]
    assert (cfg.train_cfg.max_epochs, cfg.train_cfg.val_interval) == (28, 7)
    assert cfg.train_dataloader.batch_size == cfg.val_dataloader.batch_size == batch
    assert cfg.auto_scale_lr.base_batch_size == 4 * batch
    backbone = cfg.model.backbone
    assert (backbone.arch, backbone.noise_mode, backbone.dtype, backbone.frozen) == ('adm-256u', 'random',
                                                                                     'float16', True)
    assert cfg.model.head.init_cfg is None  # PyTorch's default initialisation, as the reference
    # diffssl trains in eval mode after its first evaluation; only DifFeed's adapters (BatchNorm) notice it
    assert (dict(type='mmdiff.EvalModeAfterFirstValHook') in cfg.custom_hooks) == (config == DIFFEED)
    train, test = cfg.train_dataloader.dataset.pipeline, cfg.val_dataloader.dataset.pipeline
    assert [step['type'] for step in train] == ['LoadImageFromFile', 'mmdiff.ADMResizeCrop', 'RandomFlip', 'PackInputs']
    assert train[1] == dict(type='mmdiff.ADMResizeCrop', image_size=256, random_crop=True)
    assert [step['type'] for step in test] == ['LoadImageFromFile', 'mmdiff.ADMResizeCrop', 'PackInputs']
    assert test[1] == dict(type='mmdiff.ADMResizeCrop', image_size=256)


@pytest.mark.parametrize('config', [LINEAR, ATTENTION, DIFFORMER, DIFFEED, CUB_LINEAR],
                         ids=lambda path: path.stem)
def test_images_are_read_as_guided_diffusions_loader_reads_them(config, tmp_path):
    """guided-diffusion's ImageDataset (diffssl's data path) reads ``Image.open(path).convert('RGB')``: an EXIF
    orientation tag is ignored. A 40x24 JPEG tagged 'rotate 90 degrees' stays 40x24, pixel for pixel."""
    from mmcv.transforms import TRANSFORMS
    rng = np.random.default_rng(0)
    photo = tmp_path / 'tagged.jpg'
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; viewers rotate the image by 90 degrees
    Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(photo, exif=exif, quality=95)
    reference = np.array(Image.open(photo).convert('RGB'))[..., ::-1]  # mmcv's channel order: BGR
    cfg = Config.fromfile(str(config))
    for loader in ('train_dataloader', 'val_dataloader'):
        load = TRANSFORMS.build(cfg[loader].dataset.pipeline[0])
        np.testing.assert_array_equal(load(dict(img_path=str(photo)))['img'], reference)


def independent_draws(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two recovered noise tensors are independent draws: their correlation is near 0 (each holds 6,144
    values here, so two independent ones correlate within +-0.05 with overwhelming probability)."""
    return abs(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()) < 0.1


def test_published_noise_is_fresh_per_forward_and_per_timestep_in_training_and_evaluation():
    backbone = DiffusionUNetBackbone(arch='adm-tiny', timesteps=(100, 300), noise_mode='random', out_strides=None,
                                     out_blocks=(24, ))
    inputs = []
    backbone.unet.conv_in.register_forward_hook(lambda module, args, output: inputs.append(args[0]))
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    for mode in (True, False):
        backbone.train(mode)
        backbone(images)
        backbone(images)
    alphas = backbone.noise_scheduler.alphas_cumprod[torch.tensor([100, 100, 300, 300])].view(-1, 1, 1, 1)
    noises = [(x_t - alphas.sqrt() * images.repeat(2, 1, 1, 1)) / (1 - alphas).sqrt() for x_t in inputs]
    # the noise recovered from x_t carries rounding (1 / sqrt(1 - alpha) amplifies it), so a draw shared across
    # timesteps or forwards shows as a correlation near 1, not as equal tensors; independent draws correlate ~0
    shared = noises[0].clone()
    shared[2:] = shared[:2] + 1e-3 * torch.randn_like(shared[:2])  # the same draw for both timesteps, recovered
    assert not independent_draws(shared[:2], shared[2:])
    for noise in noises:  # standard Gaussian, a different draw for each timestep
        assert abs(noise.std().item() - 1) < 0.1 and independent_draws(noise[:2], noise[2:])
    assert all(independent_draws(a, b) for i, a in enumerate(noises) for b in noises[i + 1:])


def guided_diffusion_center_crop(image: Image.Image, size: int) -> np.ndarray:
    """guided-diffusion's ``center_crop_arr``."""
    while min(*image.size) >= 2 * size:
        image = image.resize(tuple(x // 2 for x in image.size), resample=Image.BOX)
    scale = size / min(*image.size)
    array = np.array(image.resize(tuple(round(x * scale) for x in image.size), resample=Image.BICUBIC))
    top, left = (array.shape[0] - size) // 2, (array.shape[1] - size) // 2
    return array[top:top + size, left:left + size]


def test_adm_resize_crop_is_guided_diffusions():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (700, 530, 3), dtype=np.uint8)
    center = ADMResizeCrop(image_size=64)(dict(img=image.copy()))
    np.testing.assert_array_equal(center['img'], guided_diffusion_center_crop(Image.fromarray(image), 64))
    assert center['img_shape'] == (64, 64)
    # training: the short side is drawn from [64, 80] (crop fractions 0.8-1.0); every draw is a 64 px crop
    random.seed(0)
    crops = [ADMResizeCrop(image_size=64, random_crop=True)(dict(img=image.copy()))['img'] for _ in range(8)]
    assert all(crop.shape == (64, 64, 3) for crop in crops)
    assert len({crop.tobytes() for crop in crops}) > 1
    with pytest.raises(ValueError, match=r'need 0 < min_crop_frac <= max_crop_frac <= 1, got min_crop_frac=0.9, '
                       r'max_crop_frac=0.8'):
        ADMResizeCrop(min_crop_frac=0.9, max_crop_frac=0.8)


@pytest.mark.parametrize('config, size', [(HEADS / 'attention-head-lite_adm-256u-b24-t150_8xb32-30e_in1k.py', 7_346_152),
                                          (HEADS / 'difformer-lite_adm-256u-b19-24-30-t90-150-300_8xb32-30e_in1k.py',
                                           9_170_408)], ids=['attention-head-lite', 'difformer-lite'])
def test_lite_variants_keep_mmdiffs_lighter_heads_and_defaults(config, size):
    cfg, head = build_head(config)
    assert count(head) == size
    assert (cfg.model.backbone.noise_mode, cfg.model.backbone.dtype) == ('fixed', 'float32')
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
