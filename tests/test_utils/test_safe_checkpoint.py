"""No checkpoint runs code, and nothing is downloaded, on mmdiff's own loading paths (its backbones, its tools, and a
process that opts in with MMDIFF_SAFE_LOADING=1); importing mmdiff leaves every other loading path as it is."""
import os
import pickle
import re
import subprocess
import sys
import textwrap

import pytest
import torch

from mmdiff.models import DiffusionUNetBackbone
from mmdiff.utils.safe_checkpoint import UnsafeCheckpointError, enable_safe_loading, load_checkpoint_file


class RunsACommand:
    """Unpickling this runs ``touch MARKER``: what a hostile checkpoint does."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


@pytest.fixture
def hostile(tmp_path):
    marker = tmp_path / 'code-ran'
    path = tmp_path / 'hostile.pth'
    torch.save(dict(state_dict={'conv_in.weight': torch.zeros(1)}, meta=RunsACommand(str(marker))), path)
    return path, marker


def test_the_safe_loader_refuses_a_pickle_that_runs_code(hostile):
    path, marker = hostile
    with pytest.raises(UnsafeCheckpointError, match=rf"refusing to load '{path}'.*system"):
        load_checkpoint_file(str(path))
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the pickle does run code when trusted: the check above can fail
    assert marker.exists()


def test_mmengine_loading_paths_go_through_the_safe_loader_once_enabled(hostile):
    """With the safe loader enabled (as mmdiff's tools enable it), ``init_cfg``, ``load_from`` and ``--resume`` all
    reach mmengine's ``_load_checkpoint``, and it refuses the crafted pickle."""
    from mmengine.runner.checkpoint import _load_checkpoint, load_checkpoint

    enable_safe_loading()  # what every mmdiff tool does; this test process already runs them
    path, marker = hostile
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(str(path), map_location='cpu')
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(torch.nn.Linear(1, 1), str(path), map_location='cpu')
    backbone = DiffusionUNetBackbone(arch='adm-tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(UnsafeCheckpointError):
        backbone.init_weights()
    assert not marker.exists()


REMOTE = ['https://example.com/unet.pth', 'torchvision://resnet50', 'open-mmlab://resnet50_v1c', 'x:s3://bucket/a.pth',
          'petrel://bucket/a.pth', 's3://bucket/a.pth', 'pavi://a.pth', 'mmcls://resnet50', 'modelzoo://resnet50']


@pytest.mark.parametrize('url', REMOTE)
def test_remote_checkpoints_are_refused_before_any_connection(url, monkeypatch):
    """Every scheme mmengine registers (its petrel / ceph patterns too) is refused by mmdiff's backbones, and by
    mmengine's loader once the safe loader is enabled, naming the switch."""
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError(f'a connection was attempted for {url}')

    monkeypatch.setattr(socket.socket, 'connect', no_network)
    from mmengine.runner.checkpoint import _load_checkpoint

    enable_safe_loading()
    with pytest.raises(ValueError, match=r"is remote, and this process loads checkpoints with mmdiff's safe loader "
                       r'\(an mmdiff tool, or MMDIFF_SAFE_LOADING=1\)'):
        _load_checkpoint(url, map_location='cpu')
    with pytest.raises(ValueError, match='is remote: mmdiff never downloads'):
        DiffusionUNetBackbone(arch='adm-tiny', init_cfg=dict(type='Pretrained', checkpoint=url))


# a fresh interpreter: fakes mmengine's download, imports mmdiff, then loads a torchvision:// ResNet and a pickle that
# runs code through mmengine, printing what happened (after mmengine's own log lines)
PROCESS = textwrap.dedent('''
    import sys
    import mmengine.runner.checkpoint as checkpoint
    fetched = []
    checkpoint.load_url = lambda url, **kwargs: fetched.append(url) or {'state_dict': {}}
    import mmdiff  # noqa: F401
    try:
        checkpoint._load_checkpoint('torchvision://resnet50', map_location='cpu')
        print('RESULT fetched', len(fetched))
    except ValueError as error:
        print('RESULT refused', error)
    try:
        checkpoint._load_checkpoint(sys.argv[1], map_location='cpu')
        print('RESULT loaded')
    except Exception as error:
        print('RESULT refused', type(error).__name__)
''')


@pytest.mark.parametrize('switch', [None, '1'])
def test_importing_mmdiff_leaves_mmengine_loading_as_it_is_unless_opted_in(switch, hostile):
    """Without the switch, a process that imports mmdiff downloads through mmengine (the fake is called) and
    unpickles as mmengine does; with MMDIFF_SAFE_LOADING=1 both are refused, the download naming the switch."""
    path, marker = hostile
    env = {key: value for key, value in os.environ.items() if key != 'MMDIFF_SAFE_LOADING'}
    if switch:
        env['MMDIFF_SAFE_LOADING'] = switch
    result = subprocess.run([sys.executable, '-c', PROCESS, str(path)], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line[len('RESULT '):] for line in result.stdout.splitlines() if line.startswith('RESULT ')]
    if switch:
        assert 'MMDIFF_SAFE_LOADING=1' in lines[0] and lines[0].startswith('refused')
        assert lines[1] == 'refused UnsafeCheckpointError' and not marker.exists()
    else:
        assert lines[:2] == ['fetched 1', 'loaded'] and marker.exists()


def test_checkpoints_mmdiff_and_mmengine_write_load(tmp_path):
    """A runner checkpoint's message hub (history buffers with their statistic methods) and numpy random state."""
    import numpy as np
    from mmengine.logging import MessageHub

    hub = MessageHub.get_instance('safe-checkpoint-test')
    hub.update_scalar('train/loss', np.float64(0.5))
    state = dict(state_dict={'w': torch.ones(2)}, message_hub=hub.state_dict(),
                 random_state=dict(numpy=np.random.get_state()), meta=dict(epoch=1, seed=np.int64(3)))
    path = tmp_path / 'run.pth'
    torch.save(state, path)
    loaded = load_checkpoint_file(str(path))
    assert loaded['message_hub']['log_scalars']['train/loss'].mean() == 0.5
    np.testing.assert_array_equal(loaded['random_state']['numpy'][1], state['random_state']['numpy'][1])


@pytest.mark.parametrize('content', [b'', b'PK\x03\x04 truncated', b'not a checkpoint'], ids=['empty', 'truncated',
                                                                                             'text'])
def test_unreadable_files_are_named(tmp_path, content):
    path = tmp_path / 'broken.pth'
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"'{path}' is not a readable torch checkpoint"):
        load_checkpoint_file(str(path))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_checkpoint_file(str(tmp_path / 'missing.pth'))


def test_a_checkpoint_that_is_not_a_dict_is_named(tmp_path):
    path = tmp_path / 'a_list.pth'
    torch.save([torch.zeros(1)], path)
    backbone = DiffusionUNetBackbone(arch='adm-tiny', init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(ValueError, match=rf"'{path}' holds a list, not a state dict or an mmengine checkpoint"):
        backbone.init_weights()


@pytest.mark.parametrize('head_type', ['LinearProbeHead', 'DifFormerHead'])
def test_a_heads_pretrained_init_uses_mmdiffs_loader_whatever_the_process_chose(hostile, tmp_path, head_type):
    """Without the process-wide switch, mmengine's loader would unpickle the file; the head still refuses it, and a
    clean checkpoint of the head (under a classifier's ``head.`` prefix) loads every weight."""
    from mmdiff.models import heads
    arguments = dict(num_classes=3, in_channels=8) if head_type == 'LinearProbeHead' else dict(
        num_classes=3, in_channels=(8, ), num_timesteps=1, embed_dims=8, num_heads=2)
    source = getattr(heads, head_type)(**arguments)
    clean = tmp_path / 'classifier.pth'
    torch.save(dict(state_dict={f'head.{key}': value for key, value in source.state_dict().items()}), clean)
    head = getattr(heads, head_type)(**arguments,
                                     init_cfg=dict(type='Pretrained', checkpoint=str(clean), prefix='head.'))
    head.init_weights()
    assert all(torch.equal(value, source.state_dict()[key]) for key, value in head.state_dict().items())
    path, marker = hostile
    refusing = getattr(heads, head_type)(**arguments, init_cfg=dict(type='Pretrained', checkpoint=str(path)))
    with pytest.raises(UnsafeCheckpointError, match=rf"refusing to load '{path}'"):
        refusing.init_weights()
    assert not marker.exists()


def test_a_plain_pickle_that_runs_code_is_refused_naming_its_global_without_torchs_advice(tmp_path):
    """torch's safe loader reports a plain pickle (not torch.save's format) only as unreadable, with the advice to
    retry with weights_only=False: mmdiff names the global instead and passes no such advice on."""
    marker = tmp_path / 'code-ran'
    path = tmp_path / 'plain.pkl'
    path.write_bytes(pickle.dumps({'state_dict': {}, 'meta': RunsACommand(str(marker))}))
    with pytest.raises(UnsafeCheckpointError) as refusal:
        load_checkpoint_file(str(path))
    assert re.search(r'names the global (posix|os)\.system, .* could run code', str(refusal.value))
    assert 'weights_only' not in str(refusal.value) and not marker.exists()


def test_a_legacy_checkpoint_loads_also_memory_mapped_and_a_folder_is_named(tmp_path):
    legacy = tmp_path / 'legacy.pth'
    torch.save({'state_dict': {'w': torch.ones(2)}}, legacy, _use_new_zipfile_serialization=False)
    for mmap in (False, True):  # torch maps only its zip format: a legacy file is read whole
        assert torch.equal(load_checkpoint_file(str(legacy), mmap=mmap)['state_dict']['w'], torch.ones(2))
    with pytest.raises(IsADirectoryError, match=rf"checkpoint '{tmp_path}' is a folder"):
        load_checkpoint_file(str(tmp_path))
