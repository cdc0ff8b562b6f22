"""The COCO pipeline on COCO's own files: COCO128 (../shared/data/coco128.tar, the first 128 train2017 images with
their original annotations: crowd RLE masks, images without annotations, a grey-scale JPEG, sizes from 333 to
640 px), split by image id (tools/misc/coco_holdout_split.py), through configs/mask_rcnn_diffusion_coco.py."""
import json
import os
import re
import tarfile
from pathlib import Path

import pytest
from mmengine.config import Config

from tests.test_utils.tiny_variants import tiny_variant_text
from tests.test_utils.tool_runs import ROOT, run_in_process

pytestmark = pytest.mark.slow  # tool runs on real images

SHARED_DATA = Path(os.environ.get('MMDIFF_SHARED_DATA', ROOT.parent / 'shared' / 'data'))
COCO128 = SHARED_DATA / 'coco128.tar'
CONFIG = ROOT / 'configs/mask_rcnn_diffusion_coco.py'
MMDET_TOOLS = Path(__import__('mmdet').__file__).parent / '.mim' / 'tools'


@pytest.fixture(scope='module')
def coco128_root(tmp_path_factory) -> Path:
    """COCO128 extracted to a temporary folder and split by the tool (every 4th image id held out)."""
    if not COCO128.is_file():
        pytest.skip(f'{COCO128} is absent: set MMDIFF_SHARED_DATA to the folder holding coco128.tar')
    folder = tmp_path_factory.mktemp('coco128')
    with tarfile.open(COCO128) as archive:
        archive.extractall(folder / 'source', filter='data')
    split = run_in_process(ROOT / 'tools/misc/coco_holdout_split.py', [folder / 'source', folder / 'root'])
    assert split.returncode == 0, split.stderr[-2000:]
    assert 'train2017: 96 images' in split.stdout and 'val2017: 32 images' in split.stdout
    return folder / 'root'


def test_the_split_is_fixed_by_image_id_and_keeps_every_annotation(coco128_root):
    train, val = (json.loads((coco128_root / 'annotations' / f'instances_{split}.json').read_text())
                  for split in ('train2017', 'val2017'))
    ids = sorted(image['id'] for image in train['images'] + val['images'])
    assert len(ids) == 128 and sorted(image['id'] for image in val['images']) == ids[::4]
    assert len(train['annotations']) + len(val['annotations']) == 939
    assert len(train['categories']) == len(val['categories']) == 80
    assert {ann['image_id'] for ann in val['annotations']} <= {image['id'] for image in val['images']}


def test_every_coco128_image_goes_through_the_configs_pipelines(coco128_root):
    """Crowd RLE masks, images without annotations, the grey-scale JPEG and every size reach the model's input
    as 3-channel images with their instances."""
    from mmengine.registry import init_default_scope
    from mmdet.registry import DATASETS
    os.environ['MMDIFF_COCO_ROOT'] = f'{coco128_root}/'
    try:
        cfg = Config.fromfile(str(CONFIG))
    finally:
        del os.environ['MMDIFF_COCO_ROOT']
    init_default_scope('mmdet')
    train = json.loads((coco128_root / 'annotations' / 'instances_train2017.json').read_text())
    annotated = {ann['image_id'] for ann in train['annotations']}
    assert len(annotated) == len(train['images']) - 1  # one of COCO128's two images without annotations
    for name, expected in (('train_dataloader', len(annotated)), ('val_dataloader', 32)):  # training skips it
        dataset = DATASETS.build(cfg[name].dataset)
        assert len(dataset) == expected
        for index in range(len(dataset)):
            sample = dataset[index]
            inputs = sample['inputs']
            short, long = sorted(inputs.shape[1:])  # mmdet's 1x scale: the longer side 1333 or the shorter 800
            assert inputs.shape[0] == 3 and short <= 800 and long <= 1333 and (short == 800 or long == 1333), \
                (index, inputs.shape)
            if name == 'train_dataloader':
                instances = sample['data_samples'].gt_instances
                assert len(instances.masks) == len(instances.bboxes) >= 1


@pytest.mark.parametrize('tools', ['mmdiff', 'mmdet'])
def test_the_coco_config_trains_and_evaluates_on_coco128(coco128_root, tmp_path, tools):
    """The config's tiny twin, two iterations, evaluated by mmdet's CocoMetric (bbox and segm) on held-out images,
    under mmdiff's tools and under mmdet's own."""
    cfg = Config.fromfile(str(CONFIG))
    tiny = tmp_path / f'tiny_{CONFIG.name}'
    tiny.write_text(tiny_variant_text(CONFIG, cfg, {}))
    folder = ROOT / 'tools' if tools == 'mmdiff' else MMDET_TOOLS
    env = {'MMDIFF_COCO_ROOT': f'{coco128_root}/'}
    # at a third of mmdet's 1x scale, so that the CPU runs stay short (every image passes the full-scale pipelines
    # in the test above)
    smaller = ['--cfg-options', 'train_dataloader.dataset.pipeline.2.scale=(448,256)',
               'test_dataloader.dataset.pipeline.1.scale=(448,256)']
    trained = run_in_process(folder / 'train.py', [tiny, '--work-dir', tmp_path / 'work', *smaller], env=env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = (tmp_path / 'work' / 'last_checkpoint').read_text().strip()
    tested = run_in_process(folder / 'test.py', [tiny, checkpoint, '--work-dir', tmp_path / 'test', *smaller],
                            env=env)
    assert tested.returncode == 0, tested.stderr[-3000:]
    log = tested.stdout + tested.stderr
    # two iterations may detect nothing: mmdet then says so instead of printing the COCO metrics
    assert re.search(r'coco/bbox_mAP: .*coco/segm_mAP: ', log) or 'The testing results of the whole dataset is empty' \
        in log, log[-3000:]


def test_the_readme_coco128_command_is_the_split_and_config_tested_here():
    """The README's COCO128 commands name the split tool and the config that the tests above run."""
    readme = (ROOT / 'README.md').read_text()
    split = re.search(r'`python (tools/misc/coco_holdout_split\.py) (\S+) (\S+)`', readme)
    train = re.search(r'`MMDIFF_COCO_ROOT=(\S+) python tools/train\.py (\S+)`', readme)
    assert split and train, 'the README lost its COCO128 commands'
    assert train.group(1) == f'{split.group(3)}/' and ROOT / train.group(2) == CONFIG
