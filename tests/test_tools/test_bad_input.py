"""Bad input, end to end: each defect makes the tools fail fast with a message that names it, and leaves no
checkpoint or metric behind that could pass for a result. (A NaN-producing learning rate is covered by
test_reliability.py, a backbone checkpoint of another arch by the backbone tests.)

The tools run in this process; one refusal per tool (a missing config for ``tools/train.py``, a checkpoint of
another model for ``tools/test.py``) runs in a fresh interpreter, which shows the message reaching the terminal and
the exit status."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdiff.models.backbones import declared_out_channels
from tests.test_utils.detection_demo import DEMO_CONFIG, demo_options
from tests.test_utils.tool_runs import ROOT, run, run_in_process

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: `make test` runs them, `make test-quick` does not


TRAIN, TEST = ROOT / 'tools/train.py', ROOT / 'tools/test.py'


def shapes_copy(detection_shapes: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(detection_shapes, tmp_path / 'shapes'))


def corrupt_image(root: Path) -> str:
    image = sorted((root / 'images' / 'train').glob('*.png'))[0]
    image.write_bytes(b'not a png')
    return f'failed to load image: {image}'


def empty_image(root: Path) -> str:
    image = sorted((root / 'images' / 'train').glob('*.png'))[1]
    image.write_bytes(b'')
    return f"train_dataloader: '{image}' is empty (0 bytes)"


def empty_annotations(root: Path) -> str:
    (root / 'annotations' / 'instances_train.json').write_text('')
    return f"train_dataloader: annotation file '{root}/annotations/instances_train.json' is empty"


def imageless_annotations(root: Path) -> str:
    path = root / 'annotations' / 'instances_train.json'
    annotations = json.loads(path.read_text())
    path.write_text(json.dumps(dict(annotations, images=[], annotations=[])))
    return f"train_dataloader: annotation file '{path}' lists no images"


def assert_fails_cleanly(result, message: str, work_dir: Path) -> None:
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-3000:]
    leftovers = sorted(path.name for path in work_dir.rglob('*') if path.suffix == '.pth' or
                       path.name == 'last_checkpoint') if work_dir.exists() else []
    assert leftovers == []
    assert 'coco/bbox_mAP' not in result.stdout + result.stderr


def test_a_missing_config(tmp_path):
    result = run([TRAIN, 'configs/mask_rcnn/no_such_config.py', '--work-dir', tmp_path / 'work'])
    assert_fails_cleanly(result, "config file 'configs/mask_rcnn/no_such_config.py' does not exist",
                         tmp_path / 'work')
    assert not (tmp_path / 'work').exists()


@pytest.mark.parametrize('option, message', [
    ('model.backbone.timestep=(10,)',
     "model.backbone: DiffusionUNetBackbone takes no argument 'timestep'; did you mean 'timesteps'? Its arguments "
     "are: arch, attention,"),
    ('model.backbone.timesteps=(1000,)', "timestep 1000 is outside the scheduler's range [0, 1000)"),
], ids=['typo-backbone-key', 'timestep-out-of-range'])
def test_a_bad_backbone_setting(detection_shapes, tmp_path, option, message):
    work = tmp_path / 'work'
    result = run_in_process(TRAIN, [DEMO_CONFIG, '--work-dir', work, '--cfg-options',
                                    *demo_options(detection_shapes), option])
    assert_fails_cleanly(result, message, work)


@pytest.mark.parametrize('damage', [corrupt_image, empty_image, empty_annotations, imageless_annotations])
def test_damaged_data(detection_shapes, tmp_path, damage):
    root = shapes_copy(detection_shapes, tmp_path)
    message = damage(root)
    work = tmp_path / 'work'
    result = run_in_process(TRAIN, [DEMO_CONFIG, '--work-dir', work, '--cfg-options', *demo_options(root)])
    assert_fails_cleanly(result, message, work)


def test_a_checkpoint_of_another_architecture(detection_shapes, tmp_path):
    """mmengine would load it non-strictly and evaluate the untouched random weights."""
    cfg = Config.fromfile(str(DEMO_CONFIG))
    cfg.merge_from_dict({'model.backbone.arch': 'adm-digits', 'model.backbone.out_strides': (1, 2, 4, 8)})
    cfg.model.neck.in_channels = declared_out_channels(cfg.model.backbone)
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    other = MODELS.build(cfg.model)
    checkpoint = tmp_path / 'adm-digits_mask-rcnn.pth'
    torch.save(dict(state_dict=other.state_dict(), meta=dict()), checkpoint)
    work = tmp_path / 'work'
    result = run([TEST, DEMO_CONFIG, checkpoint, '--work-dir', work, '--cfg-options', *demo_options(detection_shapes)])
    assert_fails_cleanly(result, f"checkpoint '{checkpoint}' does not fit the model of {DEMO_CONFIG}: ", work)
    assert 'shape mismatches' in result.stderr and 'was it saved for another arch?' in result.stderr
