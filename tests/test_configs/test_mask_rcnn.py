"""Mask R-CNN with the diffusion backbone: the shipped configs, the training tools and the demo, end to end."""
import json
import math
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mmdiff.datasets.synthetic_shapes import SHAPE_CLASSES, make_shapes_dataset
from mmdiff.models.backbones import declared_out_channels
from tests.test_utils.detection_demo import DEMO_CONFIG, demo_options
from tests.test_utils.tool_runs import ROOT, run_in_process

TRAIN, TEST = ROOT / 'tools/train.py', ROOT / 'tools/test.py'
MAIN_CONFIG = ROOT / 'configs' / 'mask_rcnn_diffusion_coco.py'
MMDET_TRAIN = Path(__import__('mmdet').__file__).parent / '.mim' / 'tools' / 'train.py'
DETECTION_CONFIGS = sorted((ROOT / 'configs').glob('mask_rcnn*.py')) + sorted(
    (ROOT / 'configs' / 'mask_rcnn').glob('*.py'))


def backbone_channels(backbone: dict) -> list:
    """A diffusion backbone's declared channels (no weights built); any other backbone's, from one forward pass."""
    if backbone.type in ('mmdiff.DiffusionUNetBackbone', 'mmdiff.DifFeedBackbone',
                         'mmdiff.DiffusionTransformerBackbone'):
        return declared_out_channels(backbone)
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    model = MODELS.build(dict(backbone, init_cfg=None))
    model.eval()  # mmdet's ResNet.train() returns None, so no chaining
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, 64, 64))
    return [output.shape[1] for output in outputs]


@pytest.mark.parametrize('config', DETECTION_CONFIGS, ids=lambda path: path.name)
def test_neck_channels_match_the_declared_backbone_channels(config):
    cfg = Config.fromfile(str(config))
    assert cfg.model.neck.in_channels == backbone_channels(cfg.model.backbone)
    assert cfg.model.data_preprocessor.mean == [127.5] * 3 and cfg.model.data_preprocessor.std == [127.5] * 3


@pytest.mark.parametrize('backbone_type', ['mmdiff.DiffusionUNetBackbone', 'mmdiff.DifFeedBackbone'])
def test_main_config_with_the_tiny_unet_runs_a_loss_and_a_predict_step(backbone_type):
    from mmdet.testing import demo_mm_inputs
    from mmengine.registry import MODELS, init_default_scope
    from mmengine.utils import import_modules_from_strings

    cfg = Config.fromfile(str(MAIN_CONFIG))
    assert cfg.model.backbone.arch == 'adm-256u' and cfg.model.backbone.frozen
    tiny = dict(cfg.model.backbone, type=backbone_type, arch='adm-tiny', init_cfg=None)
    cfg.merge_from_dict({
        'model.backbone.type': backbone_type,  # DifFeed: the pyramid of the feedback pass
        'model.backbone.arch': 'adm-tiny',
        'model.backbone.init_cfg': None,
        'model.neck.in_channels': declared_out_channels(tiny)
    })
    import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.default_scope)
    model = MODELS.build(cfg.model)
    model.init_weights()
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128), (3, 80, 100)], num_items=[3, 2],
                            num_classes=80, with_mask=True)
    data = model.data_preprocessor(packed, True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss_mask'} <= set(losses)
    total, log_vars = model.parse_losses(losses)
    assert torch.isfinite(total) and all(math.isfinite(value) for value in log_vars.values())
    total.backward()
    assert all(p.grad is None for p in model.backbone.unet.parameters())  # frozen by default
    if backbone_type == 'mmdiff.DifFeedBackbone':  # every pyramid level is fed back; each adapter learns
        assert len(model.backbone.adapters) == 4
        assert all(adapter.conv.weight.grad.abs().sum() > 0 for adapter in model.backbone.adapters)
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(packed, False)
        predictions = model.predict(data['inputs'], data['data_samples'])
    assert len(predictions) == 2
    assert predictions[0].pred_instances.bboxes.shape[1] == 4
    assert predictions[0].pred_instances.masks.shape[1:] == (96, 128)


def test_main_config_refuses_a_missing_checkpoint(tmp_path):
    result = run_in_process(TRAIN, [MAIN_CONFIG, '--work-dir', tmp_path / 'work'])
    assert result.returncode != 0
    assert ("backbone checkpoint 'checkpoints/adm-256u_imagenet-uncond.pth' (init_cfg) does not exist"
            in result.stderr)


def test_train_refuses_missing_data_with_the_expected_layout(tmp_path):
    result = run_in_process(TRAIN, [MAIN_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                                    'model.backbone.init_cfg=None'])
    assert result.returncode != 0
    assert ("train_dataloader: data_root 'data/coco/' does not exist (set MMDIFF_COCO_ROOT to the folder that "
            "holds the dataset); expected layout:\n"
            '  data/coco/annotations/instances_train2017.json\n  data/coco/train2017/  (img)') in result.stderr


def test_one_environment_variable_moves_every_dataloader_and_evaluator(tmp_path, monkeypatch):
    """MMDIFF_COCO_ROOT, read by mmengine when it parses the config: any tool sees the moved paths."""
    coco = f'{tmp_path}/coco/'
    monkeypatch.setenv('MMDIFF_COCO_ROOT', coco)
    cfg = Config.fromfile(str(MAIN_CONFIG))
    assert [cfg[f'{split}_dataloader'].dataset.data_root for split in ('train', 'val', 'test')] == [coco] * 3
    assert cfg.val_evaluator.ann_file == cfg.test_evaluator.ann_file == f'{coco}annotations/instances_val2017.json'
    missing = run_in_process(TRAIN, [MAIN_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                                     'model.backbone.init_cfg=None'])
    assert (f"train_dataloader: data_root '{coco}' does not exist (set MMDIFF_COCO_ROOT to the folder that holds "
            "the dataset)") in missing.stderr


def metrics(log: str, prefix: str = 'coco') -> dict:
    found = re.findall(rf'{prefix}/(\w+): (-?[\d.]+)', log)
    return {key: float(value) for key, value in found}


@pytest.mark.slow
def test_demo_trains_then_tests_with_coco_metrics(demo_run, detection_shapes, tmp_path):
    status, _ = (demo_run / 'train.log').read_text().split('\n', 1)
    assert status == '0', (demo_run / 'train.log').read_text()[-3000:]
    work = demo_run / 'work'
    checkpoint = work / 'iter_2.pth'
    assert checkpoint.is_file()
    assert (work / 'last_checkpoint').read_text().strip().endswith('iter_2.pth')
    tested = run_in_process(TEST, [DEMO_CONFIG, checkpoint, '--work-dir', tmp_path / 'work', '--show-dir',
                                   tmp_path / 'overlays', '--cfg-options', *demo_options(detection_shapes)])
    assert tested.returncode == 0, tested.stderr[-3000:]
    assert '2/2, ' in tested.stdout  # EvalProgressBarHook's bar over 2 batches of 2 val images
    found = metrics(tested.stdout + tested.stderr)
    for key in ('bbox_mAP', 'bbox_mAP_50', 'segm_mAP', 'segm_mAP_50'):
        assert key in found and math.isfinite(found[key]), key
    assert len(list((tmp_path / 'overlays').glob('*.png'))) == 4


@pytest.mark.slow
def test_mmdet_own_train_tool_trains_the_demo_config(detection_shapes, tmp_path):
    result = run_in_process(MMDET_TRAIN, [DEMO_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                                          *demo_options(detection_shapes)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()
    assert 'coco/bbox_mAP_50' in result.stdout + result.stderr


def test_train_refuses_classes_that_are_not_in_the_annotations(detection_shapes, tmp_path):
    result = run_in_process(TRAIN, [DEMO_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                                    *demo_options(detection_shapes), "metainfo.classes=['circle','hexagon']",
                                    "train_dataloader.dataset.metainfo.classes=['circle','hexagon']"])
    assert result.returncode != 0
    assert (f"train_dataloader: classes ['hexagon'] of the config are not categories of "
            f"'{detection_shapes}/annotations/instances_train.json', which has {list(SHAPE_CLASSES)}") in result.stderr


def test_train_refuses_a_wrong_annotation_file(detection_shapes, tmp_path):
    result = run_in_process(TRAIN, [DEMO_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                                    *demo_options(detection_shapes),
                                    'train_dataloader.dataset.ann_file=annotations/train.json'])
    assert result.returncode != 0
    missing = f'{detection_shapes}/annotations/train.json'
    assert f"train_dataloader: annotation file '{missing}' does not exist" in result.stderr


def test_shapes_dataset_is_deterministic_and_consistent(tmp_path):
    first = make_shapes_dataset(str(tmp_path / 'a'), num_train=3, num_val=2, image_size=48, seed=5)
    second = make_shapes_dataset(str(tmp_path / 'b'), num_train=3, num_val=2, image_size=48, seed=5)
    assert first['train'].read_text() == second['train'].read_text()
    assert (tmp_path / 'a/images/val/000001.png').read_bytes() == (tmp_path / 'b/images/val/000001.png').read_bytes()
    coco = json.loads(first['train'].read_text())
    assert [c['name'] for c in coco['categories']] == list(SHAPE_CLASSES)
    for annotation in coco['annotations']:
        x, y, w, h = annotation['bbox']
        assert 0 <= x and 0 <= y and x + w <= 48 and y + h <= 48 and annotation['area'] <= w * h
        assert annotation['segmentation'] and all(len(polygon) >= 6 for polygon in annotation['segmentation'])
    with pytest.raises(ValueError, match='num_val must be >= 1, got 0'):
        make_shapes_dataset(str(tmp_path / 'c'), num_val=0)
