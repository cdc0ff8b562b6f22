"""Nothing a user made is replaced unless asked, and a run never silently trains from the wrong weights."""
import os

import pytest
import torch

from mmdiff.utils.checkpoint_weights import check_checkpoint_fits
from mmdiff.utils.output_paths import check_output_free, check_work_dir
from tests.test_utils.tool_runs import ROOT, run_in_process

CONFIG = 'configs/repfusion/resnet18-cifar_digits-16px_scratch.py'


def test_outputs_are_refused_unless_overwrite(tmp_path):
    mine = tmp_path / 'mine.pth'
    mine.write_bytes(b'x' * 7)
    with pytest.raises(FileExistsError, match=r"mine.pth' already exists \(a file of 7 bytes\).*--overwrite"):
        check_output_free(str(mine), overwrite=False)
    folder = tmp_path / 'folder'
    folder.mkdir()
    check_output_free(str(folder), overwrite=False)  # an empty folder holds nothing to lose
    (folder / 'labels.npy').write_bytes(b'')
    with pytest.raises(FileExistsError, match=r"a folder holding \['labels.npy'\]"):
        check_output_free(str(folder), overwrite=False)
    check_output_free(str(folder), overwrite=True)
    check_output_free(str(tmp_path / 'new.pth'), overwrite=False)


def test_a_work_dir_with_an_earlier_run_needs_resume_or_overwrite(tmp_path):
    check_work_dir(str(tmp_path / 'fresh'), resume=False, overwrite=False)
    (tmp_path / 'epoch_3.pth').write_bytes(b'')
    with pytest.raises(FileExistsError, match=r"holds an earlier run \(\['epoch_3.pth'\]\).*--resume.*--overwrite"):
        check_work_dir(str(tmp_path), resume=False, overwrite=False)
    check_work_dir(str(tmp_path), resume=False, overwrite=True)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    check_work_dir(str(tmp_path), resume=True, overwrite=False)


def test_checkpoints_are_checked_against_the_model_before_loading(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 4))
    other = tmp_path / 'other.pth'
    torch.save(dict(state_dict=torch.nn.Conv2d(1, 1, 1).state_dict()), other)
    with pytest.raises(ValueError, match=r'holds none of the 4 weights of the model .* load_from would train random'):
        check_checkpoint_fits(model.state_dict(), str(other), 'the model', exact=False)
    new_head = tmp_path / 'new_head.pth'  # fine-tuning: the body fits, the head is new
    torch.save(dict(state_dict={k: v for k, v in model.state_dict().items() if k.startswith('0.')}), new_head)
    check_checkpoint_fits(model.state_dict(), str(new_head), 'the model', exact=False)
    with pytest.raises(ValueError, match=r'does not fit the model: 2 missing keys'):
        check_checkpoint_fits(model.state_dict(), str(new_head), 'the model', exact=True)


def test_train_refuses_to_replace_an_earlier_run(tmp_path):
    earlier = tmp_path / 'epoch_12.pth'
    earlier.write_bytes(b'weights of an earlier run')
    result = run_in_process(ROOT / 'tools/train.py', [CONFIG, '--work-dir', tmp_path])
    assert result.returncode != 0 and 'holds an earlier run' in result.stderr, result.stderr[-2000:]
    assert earlier.read_bytes() == b'weights of an earlier run'
    resumed = run_in_process(ROOT / 'tools/train.py', [CONFIG, '--work-dir', tmp_path / 'empty', '--resume'])
    assert resumed.returncode != 0 and 'nothing to resume' in resumed.stderr, resumed.stderr[-2000:]


def test_extraction_refuses_a_folder_that_is_not_its_cache(tmp_path):
    from mmdiff.feature_cache.writer import batch_by_batch, extract_to_cache

    def ones(indices):
        return [torch.ones(len(indices), 2, 1, 1)], torch.zeros(len(indices), dtype=torch.long)

    (tmp_path / 'labels.npy').write_bytes(b'the user\'s labels')
    with pytest.raises(FileExistsError, match=r"a folder holding \['labels.npy'\].*--overwrite"):
        extract_to_cache(batch_by_batch(ones), 3, str(tmp_path), dict(name='test'), show_progress=False)
    assert (tmp_path / 'labels.npy').read_bytes() == b'the user\'s labels'
    cache = extract_to_cache(batch_by_batch(ones), 3, str(tmp_path), dict(name='test'), show_progress=False,
                             overwrite=True)
    assert len(cache) == 3
    # a cache of the same features resumes without --overwrite
    assert len(extract_to_cache(batch_by_batch(ones), 3, str(tmp_path), dict(name='test'), show_progress=False)) == 3


def test_a_cache_whose_source_changed_is_stale(tmp_path):
    from mmdiff.feature_cache.writer import batch_by_batch, extract_to_cache
    from mmdiff.feature_cache.cache_format import FeatureCache

    images = []
    for i in range(3):
        images.append(tmp_path / f'{i}.jpg')
        images[-1].write_bytes(b'pixels' * (i + 1))

    def ones(indices):
        return [torch.ones(len(indices), 2, 1, 1)], torch.zeros(len(indices), dtype=torch.long)

    cache_dir = tmp_path / 'cache'
    extract_to_cache(batch_by_batch(ones), 3, str(cache_dir), dict(name='test'), show_progress=False,
                     sources=[str(path) for path in images])
    assert len(FeatureCache(str(cache_dir))) == 3
    images[1].write_bytes(b'edited in place')
    with pytest.raises(ValueError, match=rf"is stale: it was made from '{images[1]}' \(12 bytes.*has changed since"):
        FeatureCache(str(cache_dir))
    with pytest.raises(ValueError, match='is stale'):  # resuming would mix old and new features
        extract_to_cache(batch_by_batch(ones), 3, str(cache_dir), dict(name='test'), show_progress=False)
    images[1].unlink()
    with pytest.raises(ValueError, match=rf"'{images[1]}' .* which no longer exists"):
        FeatureCache(str(cache_dir))


def test_hashed_sources_catch_a_same_size_edit_with_the_modification_time_restored(tmp_path):
    from mmdiff.feature_cache.cache_format import FeatureCache
    from mmdiff.feature_cache.writer import batch_by_batch, extract_to_cache

    image = tmp_path / '0.jpg'
    image.write_bytes(b'pixels')

    def ones(indices):
        return [torch.ones(len(indices), 2, 1, 1)], torch.zeros(len(indices), dtype=torch.long)

    for hashed in (False, True):
        cache_dir = tmp_path / f'cache_{hashed}'
        extract_to_cache(batch_by_batch(ones), 1, str(cache_dir), dict(name='test'), show_progress=False,
                         sources=[str(image)], hash_sources=hashed)
    stat = image.stat()
    image.write_bytes(b'pixelz')
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert len(FeatureCache(str(tmp_path / 'cache_False'))) == 1  # sizes and times alone cannot tell
    with pytest.raises(ValueError, match=rf"is stale: '{image}' has the size and modification time .* other content"):
        FeatureCache(str(tmp_path / 'cache_True'))


def test_a_truncated_cache_array_is_named(tmp_path):
    from mmdiff.feature_cache.writer import batch_by_batch, extract_to_cache
    from mmdiff.feature_cache.cache_format import FeatureCache

    def ones(indices):
        return [torch.ones(len(indices), 4, 2, 2)], torch.zeros(len(indices), dtype=torch.long)

    extract_to_cache(batch_by_batch(ones), 5, str(tmp_path), dict(name='test'), show_progress=False)
    level = tmp_path / 'level0.npy'
    level.write_bytes(level.read_bytes()[:-40])
    with pytest.raises(ValueError, match=rf"'{level}' of the feature cache is missing, truncated or damaged"):
        FeatureCache(str(tmp_path))
