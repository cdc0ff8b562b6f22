"""Nothing a user made is lost: no tool writes onto what it reads, an existing output is replaced only with
--overwrite (a link as a link), one run holds a work dir at a time, and the README's resume forms work."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mmdiff.apis.resume import resume_checkpoint
from mmdiff.utils.output_paths import WorkDirLock, check_output
from tests.test_utils.detection_demo import demo_options
from tests.test_utils.tool_runs import ROOT, run_in_process

pytestmark = pytest.mark.slow  # end-to-end runs of the tools

PRETRAIN = ROOT / 'configs/diffusion_pretraining/ddpm_adm-digits_2k_digits-16px.py'
# the pre-training config at toy size: batches of 4, a checkpoint every iteration, no sample grids
QUICK = ['train_dataloader.batch_size=4', 'default_hooks.checkpoint.interval=1',
         'custom_hooks.1.interval=1000', 'param_scheduler.0.end=1', 'param_scheduler.1.begin=1',
         'default_hooks.logger.interval=1']
SHAPES_PROBE = ROOT / 'configs/linear_probe/linear-probe_adm-tiny-b24-t150_demo-shapes.py'
DETECTION_DEMO = ROOT / 'configs/mask_rcnn/mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py'


def pretrain_options(max_iters: int) -> list:
    return ['--cfg-options', *QUICK, f'train_cfg.max_iters={max_iters}', f'param_scheduler.1.end={max_iters}']


def test_an_output_on_an_input_is_refused_in_every_form(tmp_path):
    data = tmp_path / 'data'
    (data / 'images').mkdir(parents=True)
    config = tmp_path / 'configs' / 'mine.py'
    config.parent.mkdir()
    config.write_text('')
    for output, relation in [(data / 'images', 'is'), (data / 'images' / 'out', 'lies inside'),
                             (config.parent, 'holds'), (tmp_path, 'holds')]:
        with pytest.raises(ValueError, match=rf"--out '{output}' {relation} '.*', which this run reads"):
            check_output(str(output), [str(data / 'images'), str(config)])
    link = tmp_path / 'link'
    link.symlink_to(data / 'images')
    with pytest.raises(ValueError, match=r"lies inside|is"):
        check_output(str(link / 'x.png'), [str(data / 'images')])
    check_output(str(tmp_path / 'elsewhere'), [str(data / 'images'), str(config), None])


def test_test_show_dir_on_the_image_folder_is_refused_and_the_images_stay(detection_shapes, tmp_path):
    images = Path(detection_shapes) / 'images' / 'val'
    before = {path.name: path.read_bytes() for path in images.iterdir()}
    checkpoint = tmp_path / 'any.pth'
    torch.save({'state_dict': {}}, checkpoint)
    result = run_in_process(ROOT / 'tools/test.py', [DETECTION_DEMO, checkpoint, '--show-dir', images, '--work-dir',
                                                     tmp_path / 'work', '--cfg-options',
                                                     *demo_options(detection_shapes)])
    assert result.returncode != 0 and f"--show-dir '{images}' is" in result.stderr, result.stderr[-2000:]
    assert {path.name: path.read_bytes() for path in images.iterdir()} == before


def test_train_work_dir_holding_the_config_is_refused(tmp_path):
    config = tmp_path / 'my_probe.py'
    config.write_text(f"_base_ = ['{PRETRAIN}']\n")
    result = run_in_process(ROOT / 'tools/train.py', [config, '--work-dir', tmp_path])
    assert result.returncode != 0 and f"--work-dir '{tmp_path}' holds '{config}'" in result.stderr, \
        result.stderr[-2000:]
    assert config.read_text() == f"_base_ = ['{PRETRAIN}']\n"


def test_visualize_features_refuses_its_input_folder_and_an_earlier_picture(classification_shapes, tmp_path):
    images = sorted((Path(classification_shapes) / 'val').rglob('*.png'))[:1]
    on_input = run_in_process(ROOT / 'tools/feature_tools/visualize_features.py',
                              [SHAPES_PROBE, *images, '--out', images[0].parent])
    assert on_input.returncode != 0 and 'which this run reads' in on_input.stderr, on_input.stderr[-2000:]
    (tmp_path / f'{images[0].stem}.png').write_bytes(b'an earlier picture')
    again = run_in_process(ROOT / 'tools/feature_tools/visualize_features.py',
                           [SHAPES_PROBE, *images, '--out', tmp_path])
    assert again.returncode != 0 and 'already exists' in again.stderr and '--overwrite' in again.stderr
    assert (tmp_path / f'{images[0].stem}.png').read_bytes() == b'an earlier picture'


def test_extraction_refuses_a_cache_inside_the_dataset(classification_shapes):
    inside = Path(classification_shapes) / 'train' / 'feature_cache'
    result = run_in_process(ROOT / 'tools/feature_tools/extract_features.py', [
        SHAPES_PROBE, '--split', 'train', '--out', inside, '--cfg-options',
        *(f'{loader}.dataset.data_root={classification_shapes}' for loader in ('train_dataloader', 'val_dataloader',
                                                                             'test_dataloader'))])
    assert result.returncode != 0 and "lies inside" in result.stderr and not inside.exists(), result.stderr[-2000:]


def test_make_demo_data_refuses_an_existing_dataset_and_empty_sizes(tmp_path):
    dataset = tmp_path / 'mine'
    (dataset / 'annotations').mkdir(parents=True)
    (dataset / 'annotations' / 'instances_train.json').write_text('{"my": "annotations"}')
    tool = ROOT / 'tools/misc/make_demo_data.py'
    result = run_in_process(tool, [dataset, '--num-train', 2, '--num-val', 2, '--size', 32])
    assert result.returncode != 0 and 'already exists' in result.stderr and '--overwrite' in result.stderr
    assert (dataset / 'annotations' / 'instances_train.json').read_text() == '{"my": "annotations"}'
    for option in ('--num-train', '--size'):
        empty = run_in_process(tool, [tmp_path / 'new', option, 0])
        assert empty.returncode != 0 and 'expected an integer >= 1, got 0' in empty.stderr
        assert not (tmp_path / 'new').exists()


def test_sample_diffusion_replaces_only_with_overwrite_and_a_link_as_a_link(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    cfg = Config.fromfile(str(PRETRAIN))
    init_default_scope(cfg.default_scope)
    checkpoint = tmp_path / 'pretrained.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, checkpoint)
    tool = ROOT / 'tools/misc/sample_diffusion.py'
    none = run_in_process(tool, [PRETRAIN, checkpoint, '--out', tmp_path / 'a.png', '--num-images', 0])
    assert none.returncode != 0 and 'expected an integer >= 1, got 0' in none.stderr
    precious = tmp_path / 'precious.png'
    precious.write_bytes(b'my picture')
    link = tmp_path / 'samples.png'
    link.symlink_to(precious)
    args = [PRETRAIN, checkpoint, '--out', link, '--num-images', 1, '--steps', 1]
    refused = run_in_process(tool, args)
    assert refused.returncode != 0 and 'a link to' in refused.stderr and '--overwrite' in refused.stderr
    on_checkpoint = run_in_process(tool, [PRETRAIN, checkpoint, '--out', checkpoint, '--overwrite'])
    assert on_checkpoint.returncode != 0 and 'which this run reads' in on_checkpoint.stderr
    replaced = run_in_process(tool, [*args, '--overwrite'])
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert not link.is_symlink() and link.read_bytes()[:4] == b'\x89PNG'
    assert precious.read_bytes() == b'my picture'


def test_export_student_refuses_a_folder_output(tmp_path):
    result = run_in_process(ROOT / 'tools/model_converters/export_student.py',
                            [tmp_path / 'distill.pth', '--out', f'{tmp_path}/'])
    assert result.returncode != 0 and f"'{tmp_path}/' is a folder; give the path of the file" in result.stderr


def test_a_finished_sweep_is_replaced_only_with_overwrite(tmp_path):
    (tmp_path / 'sweep.json').write_text('{"an": "earlier sweep"}')
    result = run_in_process(ROOT / 'tools/feature_tools/sweep_timesteps_blocks.py', [
        SHAPES_PROBE, '--timesteps', 10, '--blocks', 24, '--work-dir', tmp_path])
    assert result.returncode != 0 and 'sweep.json' in result.stderr and '--overwrite' in result.stderr
    assert (tmp_path / 'sweep.json').read_text() == '{"an": "earlier sweep"}'


def test_one_run_holds_a_work_dir_and_a_killed_runs_lock_is_named(tmp_path):
    work = tmp_path / 'work'
    first = subprocess.Popen([sys.executable, ROOT / 'tools/train.py', PRETRAIN, '--work-dir', work,
                              *pretrain_options(10_000)], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not (work / WorkDirLock.FILE_NAME).exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        second = run_in_process(ROOT / 'tools/train.py', [PRETRAIN, '--work-dir', work, '--overwrite',
                                                          *pretrain_options(2)])
        assert second.returncode != 0
        assert f"is in use by process {first.pid}" in second.stderr, second.stderr[-2000:]
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    stale = run_in_process(ROOT / 'tools/train.py', [PRETRAIN, '--work-dir', work, '--overwrite',
                                                     *pretrain_options(2)])
    assert stale.returncode != 0 and 'no longer running' in stale.stderr
    assert f"remove '{work / WorkDirLock.FILE_NAME}'" in stale.stderr


def test_the_readme_resume_forms(tmp_path):
    work = tmp_path / 'work'
    train = ROOT / 'tools/train.py'
    assert run_in_process(train, [PRETRAIN, '--work-dir', work, *pretrain_options(2)]).returncode == 0
    assert not (work / WorkDirLock.FILE_NAME).exists()  # released when the run ended
    # a named checkpoint of the run, in its own work dir
    named = run_in_process(train, [PRETRAIN, '--work-dir', work, '--resume', work / 'iter_1.pth',
                                   *pretrain_options(3)])
    assert named.returncode == 0 and 'resumed' in named.stdout + named.stderr, named.stderr[-2000:]
    # a run killed while saving leaves a truncated last checkpoint: the newest intact one is named
    last = work / 'iter_3.pth'
    last.write_bytes(last.read_bytes()[:1000])
    truncated = run_in_process(train, [PRETRAIN, '--work-dir', work, '--resume', *pretrain_options(4)])
    assert truncated.returncode != 0
    assert 'is truncated' in truncated.stderr and f"--resume {work / 'iter_2.pth'}" in truncated.stderr
    (work / 'last_checkpoint').write_text('')
    with pytest.raises(ValueError, match=r"last_checkpoint' is empty.*newest intact checkpoint .*iter_2.pth"):
        resume_checkpoint(str(work), None)
    with pytest.raises(IsADirectoryError, match='is a folder'):
        resume_checkpoint(str(work), str(work))
    with pytest.raises(FileNotFoundError, match='nothing to resume'):
        resume_checkpoint(str(tmp_path / 'fresh'), None)


def test_a_neck_that_does_not_take_the_backbone_channels_is_named_with_both_lists(detection_shapes, tmp_path):
    result = run_in_process(ROOT / 'tools/train.py', [DETECTION_DEMO, '--work-dir', tmp_path, '--cfg-options',
                                                      *demo_options(detection_shapes),
                                                      'model.neck.in_channels=[32,32,64,32]'])
    assert result.returncode != 0
    assert ('model.neck.in_channels is [32, 32, 64, 32], but the backbone gives [32, 32, 64, 64]; set '
            'model.neck.in_channels to [32, 32, 64, 64]') in result.stderr, result.stderr[-2000:]
    assert not list(tmp_path.glob('*.pth'))


def test_masks_with_labels_outside_the_classes_are_named_with_the_file_and_values(segmentation_shapes, tmp_path):
    """A 16-bit mask numbered for another class list would train and then score aAcc nan, mIoU 0, exit 0."""
    import cv2
    import numpy as np

    from tests.test_configs.test_upernet import DEMO_CONFIG, demo_options
    root = Path(shutil.copytree(segmentation_shapes, tmp_path / 'seg'))
    mask_path = sorted((root / 'annotations' / 'training').glob('*.png'))[0]
    mask = cv2.imread(str(mask_path), cv2.IMREAD_UNCHANGED).astype(np.uint16)
    mask[0, :3] = (300, 301, 4)  # 4 is a class (1..4 with reduce_zero_label); 300 and 301 are not
    cv2.imwrite(str(mask_path), mask)
    result = run_in_process(ROOT / 'tools/train.py', [DEMO_CONFIG, '--work-dir', tmp_path / 'work', '--cfg-options',
                                                      *demo_options(root)])
    assert result.returncode != 0
    assert (f"train_dataloader: the mask '{mask_path}' (uint16) holds labels [300, 301] outside the 4 classes "
            f"(valid: 0-4, 255, reduce_zero_label=True)") in result.stderr, result.stderr[-2000:]


def test_the_cache_key_follows_the_weights_content_also_in_a_model_dir(tmp_path):
    """A model_dir whose weights change, even by a same-size edit with the modification time restored, gives
    another key: an extraction into the old cache is then refused and the cached dataset is stale."""
    from mmdiff.feature_cache.cache_format import weights_sha256
    folder = tmp_path / 'pipeline' / 'unet'
    folder.mkdir(parents=True)
    weights = folder / 'diffusion_pytorch_model.safetensors'
    weights.write_bytes(b'\x00' * 64)
    (folder / 'config.json').write_text('{}')
    backbone = dict(type='mmdiff.DiffusionUNetBackbone', model_dir=str(tmp_path / 'pipeline'))
    before = weights_sha256(backbone)
    stat = weights.stat()
    weights.write_bytes(b'\x00' * 63 + b'\x01')
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert len(before) == 64 and weights_sha256(backbone) != before
    assert weights_sha256(dict(type='mmdiff.DiffusionUNetBackbone', arch='adm-tiny')) is None  # random weights


def test_a_config_or_checkpoint_given_as_a_folder_is_named(tmp_path):
    config = run_in_process(ROOT / 'tools/train.py', [tmp_path, '--work-dir', tmp_path / 'work'])
    assert config.returncode != 0 and f"config '{tmp_path}' is a folder; give the config file" in config.stderr
    checkpoint = run_in_process(ROOT / 'tools/test.py', [PRETRAIN, tmp_path])
    assert checkpoint.returncode != 0 and f"checkpoint '{tmp_path}' is a folder" in checkpoint.stderr


@pytest.mark.parametrize('tool', ['feature_tools/compare_sweeps.py', 'analysis_tools/summarize_runs.py'])
def test_summaries_replace_an_earlier_one_only_with_overwrite(tmp_path, tool):
    earlier = tmp_path / 'summary.md'
    earlier.write_text('my notes')
    metric = ['--metric', 'accuracy/top1'] if 'summarize' in tool else []
    result = run_in_process(ROOT / 'tools' / tool, [tmp_path / 'run', *metric, '--out', earlier])
    assert result.returncode != 0 and 'already exists' in result.stderr and '--overwrite' in result.stderr
    assert earlier.read_text() == 'my notes'
