"""UperNet semantic segmentation with the diffusion backbone: configs, tools and the demo, end to end."""
import math
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmdiff.datasets.synthetic_shapes import make_shapes_segmentation_dataset
from mmdiff.models.backbones import declared_out_channels
from tests.test_utils.tool_runs import ROOT, run_in_process

TRAIN, TEST = ROOT / 'tools/train.py', ROOT / 'tools/test.py'
MAIN_CONFIG = ROOT / 'configs' / 'upernet_diffusion_ade20k.py'
DEMO_CONFIG = ROOT / 'configs' / 'upernet' / 'upernet_adm-tiny-t10_demo-shapes-128x128.py'
MMSEG_TRAIN = Path(__import__('mmseg').__file__).parent / '.mim' / 'tools' / 'train.py'
LATENT_CONFIG = ROOT / 'configs' / 'upernet' / 'upernet_sd15-t1_4xb4-160k_ade20k-512x512.py'
SEGMENTATION_CONFIGS = [MAIN_CONFIG] + sorted((ROOT / 'configs' / 'upernet').glob('*.py'))


@pytest.mark.parametrize('config', SEGMENTATION_CONFIGS, ids=lambda path: path.name)
def test_head_channels_match_the_declared_backbone_channels(config):
    cfg = Config.fromfile(str(config))
    channels = declared_out_channels(cfg.model.backbone)
    assert cfg.model.decode_head.in_channels == channels
    assert cfg.model.auxiliary_head.in_channels == channels[cfg.model.auxiliary_head.in_index]
    assert cfg.model.data_preprocessor.mean == [127.5] * 3 and cfg.model.data_preprocessor.std == [127.5] * 3


# the full-size configs with their U-Net swapped for its tiny twin (random weights, nothing loaded)
TINY_TWINS = {
    MAIN_CONFIG: dict(arch='adm-tiny', init_cfg=None),
    LATENT_CONFIG: dict(arch='sd-tiny', vae='sd-tiny', model_dir=None,
                        context=dict(type='learnable', num_tokens=150, adapter=True)),
}


@pytest.mark.parametrize('config', TINY_TWINS, ids=lambda path: path.name)
def test_full_configs_with_the_tiny_unet_run_a_loss_and_a_predict_step(config):
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.structures import PixelData
    from mmengine.utils import import_modules_from_strings
    from mmseg.structures import SegDataSample

    cfg = Config.fromfile(str(config))
    assert cfg.model.backbone.frozen
    assert cfg.model.decode_head.num_classes == 150 and cfg.model.data_preprocessor.size == (512, 512)
    channels = declared_out_channels(dict(cfg.model.backbone, **TINY_TWINS[config]))
    for key, value in TINY_TWINS[config].items():
        cfg.model.backbone[key] = value
    cfg.merge_from_dict({
        'model.decode_head.in_channels': channels,
        'model.auxiliary_head.in_channels': channels[2]
    })
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))  # what the runner does without distributed training
    model.init_weights()
    samples = []
    for height, width in ((300, 400), (512, 350)):
        sample = SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width)))
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 150, (1, height, width)))
        samples.append(sample)
    packed = dict(inputs=[torch.randint(0, 256, (3, s.img_shape[0], s.img_shape[1]), dtype=torch.uint8)
                          for s in samples], data_samples=samples)
    data = model.data_preprocessor(packed, True)
    assert data['inputs'].shape == (2, 3, 512, 512)
    losses = model.loss(data['inputs'], data['data_samples'])
    total, log_vars = model.parse_losses(losses)
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(log_vars) and torch.isfinite(total)
    total.backward()
    assert all(p.grad is None for p in model.backbone.unet.parameters())  # frozen by default
    if model.backbone.context is not None:  # VPD's learnable prompts train through the frozen U-Net
        assert model.backbone.context.tokens.grad is not None
    model.eval()
    for image, sample in zip(packed['inputs'], samples):  # mmseg tests one image per batch
        with torch.no_grad():
            data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), False)
            prediction, = model.predict(data['inputs'], data['data_samples'])
        assert prediction.pred_sem_seg.data.shape == (1, *sample.ori_shape)


MISSING_WEIGHTS = {
    MAIN_CONFIG: "backbone checkpoint 'checkpoints/adm-256u_imagenet-uncond.pth' (init_cfg) does not exist",
    LATENT_CONFIG: "model_dir 'checkpoints/stable-diffusion-v1-5' does not exist",
}


@pytest.mark.parametrize('config', MISSING_WEIGHTS, ids=lambda path: path.name)
def test_full_configs_refuse_missing_weights(config, tmp_path):
    result = run_in_process(TRAIN, [config, '--work-dir', tmp_path / 'work'])
    assert result.returncode != 0
    assert MISSING_WEIGHTS[config] in result.stderr


def demo_options(root: Path, iters: int = 2) -> list:
    options = [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
               f'default_hooks.checkpoint.interval={iters}', 'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
               f'param_scheduler.1.end={iters}', 'model.data_preprocessor.size=[64,64]']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={root}/', f'{loader}.batch_size=2', f'{loader}.num_workers=0',
                    f'{loader}.persistent_workers=False']
    return options


def seg_metrics(output: str) -> dict:
    return {key: float(value) for key, value in re.findall(r'\b(aAcc|mIoU|mAcc): (-?[\d.]+|nan)', output)}


@pytest.mark.slow
def test_demo_trains_then_tests_in_whole_and_slide_mode(segmentation_shapes, tmp_path):
    work = tmp_path / 'work'
    trained = run_in_process(TRAIN, [DEMO_CONFIG, '--work-dir', work, '--cfg-options',
                                     *demo_options(segmentation_shapes)])
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = work / 'iter_2.pth'
    assert checkpoint.is_file()
    for mode in (['model.test_cfg.mode=whole'],
                 ['model.test_cfg.mode=slide', 'model.test_cfg.crop_size=[40,40]', 'model.test_cfg.stride=[24,24]']):
        tested = run_in_process(TEST, [DEMO_CONFIG, checkpoint, '--work-dir', work, '--cfg-options',
                                       *demo_options(segmentation_shapes), *mode])
        assert tested.returncode == 0, tested.stderr[-3000:]
        found = seg_metrics(tested.stdout + tested.stderr)
        assert {'aAcc', 'mIoU'} <= set(found), mode
        assert all(math.isfinite(found[key]) for key in ('aAcc', 'mIoU')), (mode, found)


@pytest.mark.slow
def test_mmseg_own_train_tool_trains_the_demo_config(segmentation_shapes, tmp_path):
    result = run_in_process(MMSEG_TRAIN, [DEMO_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                                          *demo_options(segmentation_shapes)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()
    assert 'mIoU' in seg_metrics(result.stdout + result.stderr)


def test_segmentation_data_uses_the_ade20k_layout(tmp_path):
    import cv2
    import numpy as np

    make_shapes_segmentation_dataset(str(tmp_path), num_train=2, num_val=1, image_size=48, seed=2)
    for split, count in (('training', 2), ('validation', 1)):
        images = sorted((tmp_path / 'images' / split).glob('*.jpg'))
        labels = sorted((tmp_path / 'annotations' / split).glob('*.png'))
        assert [p.stem for p in images] == [p.stem for p in labels] == [f'{i:06d}' for i in range(count)]
    label = cv2.imread(str(tmp_path / 'annotations' / 'training' / '000000.png'), cv2.IMREAD_UNCHANGED)
    assert label.shape == (48, 48) and label.dtype == np.uint8
    assert set(np.unique(label)) <= {0, 1, 2, 3, 4} and (label > 0).any()
    with pytest.raises(ValueError, match='the validation split needs at least one image, got 0'):
        make_shapes_segmentation_dataset(str(tmp_path / 'empty'), num_val=0)
