"""The installed stack works, not just imports: compiled mmcv ops, registries across scopes, the install logic."""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from mmengine.registry import DefaultScope

from mmdiff.registry import MODELS, register_module

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / 'tools' / 'misc' / 'install.sh'


def test_roi_align_on_cpu():
    from mmcv.ops import RoIAlign

    # f(y, x) = x + 4 y is linear, so bilinear sampling at any point returns x + 4 y exactly
    feature = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    rois = torch.tensor([[0., 1., 1., 3., 3.]])  # (batch index, x1, y1, x2, y2)
    # aligned=True shifts the box by half a pixel to [0.5, 2.5]^2; 2x2 bins with one sample each at
    # their centres (1, 1), (1, 2), (2, 1), (2, 2) in (y, x)
    pooled = RoIAlign(output_size=2, spatial_scale=1.0, sampling_ratio=1, aligned=True)(feature, rois)
    assert pooled.shape == (1, 1, 2, 2)
    assert torch.equal(pooled, torch.tensor([[[[5., 6.], [9., 10.]]]]))


def test_nms_on_cpu():
    from mmcv.ops import nms

    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    # IoU(box 0, box 1) = 81 / 119 = 0.68 > 0.5, so box 1 goes; box 2 overlaps nothing
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    assert torch.equal(dets, torch.tensor([[0., 0., 10., 10., 0.9], [20., 20., 30., 30., 0.7]]))


@pytest.fixture
def registered_probe():
    """A tiny module registered the way mmdiff registers its models; unregistered afterwards."""

    class RegistryProbe(torch.nn.Module):

        def __init__(self, width: int = 1) -> None:
            super().__init__()
            self.width = width

    register_module(MODELS)(RegistryProbe)
    yield RegistryProbe
    MODELS._module_dict.pop('RegistryProbe')


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_registered_module_builds_from_every_scope_by_its_mmdiff_name(registered_probe, scope):
    """'mmdiff.X' builds from each codebase's registry in its scope; the plain name is not in mmengine's root."""
    import importlib

    from mmengine.registry import MODELS as ROOT_MODELS

    codebase_models = importlib.import_module(f'{scope}.registry').MODELS
    with DefaultScope.overwrite_default_scope(scope):
        scoped = codebase_models.build(dict(type='mmdiff.RegistryProbe', width=4))
        with pytest.raises(KeyError, match='RegistryProbe is not in the'):
            codebase_models.build(dict(type='RegistryProbe'))
    assert isinstance(scoped, registered_probe) and scoped.width == 4
    assert 'RegistryProbe' not in ROOT_MODELS.module_dict


def test_mmengine_root_registries_hold_no_mmdiff_class():
    """Every mmdiff class is in mmdiff's registries only (importing every module, heads and datasets too)."""
    import importlib
    import pkgutil

    import mmdiff
    from mmengine import registry as root
    from mmdiff import registry

    for module in pkgutil.walk_packages(mmdiff.__path__, 'mmdiff.'):
        importlib.import_module(module.name)
    ours = {name for r in (registry.MODELS, registry.DATASETS, registry.HOOKS, registry.TRANSFORMS)
            for name in r.module_dict}
    assert {'DiffusionUNetBackbone', 'LinearProbeHead', 'AttentionHead', 'MLPHead', 'NonFiniteLossHook'} <= ours
    for root_registry in (root.MODELS, root.DATASETS, root.HOOKS, root.TRANSFORMS):
        assert ours.isdisjoint(root_registry.module_dict)


def test_another_plugin_may_register_the_same_names(tmp_path):
    """A plugin that registers AttentionHead, MLPHead and CNNHead in mmengine's root, imported before mmdiff: both
    import, and each builds its own class."""
    result = run_python(textwrap.dedent('''
        import torch
        from mmengine.registry import MODELS, DefaultScope
        for name in ('AttentionHead', 'MLPHead', 'CNNHead', 'DiffusionUNetBackbone'):
            MODELS.register_module(name=name, module=type(name, (torch.nn.Module, ), {}))
        import mmdiff
        import mmdiff.models.heads
        from mmpretrain.registry import MODELS as PRETRAIN
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            print(type(PRETRAIN.build(dict(type='MLPHead'))).__module__,
                  type(PRETRAIN.build(dict(type='mmdiff.MLPHead', num_classes=2, in_channels=4))).__module__)
    '''))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ['__main__', 'mmdiff.models.heads.mlp_head']  # the plugin's, mmdiff's


def test_one_import_registers_what_every_config_needs():
    """A fresh process that imports mmdiff alone (every shipped config's only custom_imports) builds mmdiff's heads,
    datasets and transforms from mmpretrain's scope: the registries import their modules on first use."""
    result = run_python(textwrap.dedent('''
        import sys
        import mmdiff
        from mmengine.registry import DefaultScope
        from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS
        assert 'mmdiff.models.heads' not in sys.modules  # importing mmdiff does not import them
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            head = MODELS.build(dict(type='mmdiff.LinearProbeHead', num_classes=3, in_channels=4))
            digits = DATASETS.build(dict(type='mmdiff.DigitsDataset', split='test', image_size=8))
            crop = TRANSFORMS.build(dict(type='mmdiff.ADMResizeCrop', image_size=8))
        print(type(head).__name__, type(digits).__name__, type(crop).__name__)
    '''))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-3:] == ['LinearProbeHead', 'DigitsDataset', 'ADMResizeCrop']
    imports = {str(path.relative_to(ROOT)): re.search(r"custom_imports = dict\(imports=(\[[^\]]*\])", path.read_text())
               for path in sorted((ROOT / 'configs').rglob('*.py')) if 'custom_imports =' in path.read_text()}
    assert len(imports) >= 8 and {path: match and match.group(1) for path, match in imports.items()} == {
        path: "['mmdiff']" for path in imports}


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_importing_mmdiff_leaves_the_task_packages_alone():
    result = run_python('import sys, mmdiff, mmdiff.registry, mmdiff.models\n'
                        "print(sorted(m for m in ('mmdet', 'mmseg', 'mmpretrain') if m in sys.modules))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '[]'


def which_mmcv(tmp_path: Path, wheelhouse: Path | None) -> str:
    env = dict(os.environ, MMDIFF_CACHE=str(tmp_path / 'cache'), PYTHON=sys.executable)
    env.pop('MMDIFF_WHEELHOUSE', None)
    if wheelhouse is not None:
        env['MMDIFF_WHEELHOUSE'] = str(wheelhouse)
    result = subprocess.run(['bash', str(INSTALL), '--which-mmcv'], capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_install_picks_the_mmcv_wheel_source(tmp_path):
    tag = f'cp{sys.version_info.major}{sys.version_info.minor}'
    wheel_name = f'mmcv-2.1.0-{tag}-{tag}-linux_x86_64.whl'
    wheelhouse = tmp_path / 'wheelhouse'
    cache = tmp_path / 'cache' / 'wheels' / 'torch-2.14.1'
    wheelhouse.mkdir()
    cache.mkdir(parents=True)

    # nothing anywhere: build from the sdist
    assert which_mmcv(tmp_path, None) == 'build'
    assert which_mmcv(tmp_path, wheelhouse) == 'build'
    # a wheel of another mmcv version or Python is not a match
    (wheelhouse / 'mmcv-2.2.0-cp311-cp311-linux_x86_64.whl').touch()
    (wheelhouse / 'mmcv-2.1.0-cp310-cp310-linux_x86_64.whl').touch()
    assert which_mmcv(tmp_path, wheelhouse) == 'build'
    # a wheel built earlier into the user cache is reused
    (cache / wheel_name).touch()
    assert which_mmcv(tmp_path, wheelhouse) == f'cache {cache / wheel_name}'
    # a matching wheel in the wheelhouse comes first
    (wheelhouse / wheel_name).touch()
    assert which_mmcv(tmp_path, wheelhouse) == f'wheelhouse {wheelhouse / wheel_name}'
    # without MMDIFF_WHEELHOUSE the wheelhouse is not looked at
    assert which_mmcv(tmp_path, None) == f'cache {cache / wheel_name}'


def test_install_rejects_unknown_arguments():
    result = subprocess.run(['bash', str(INSTALL), '--bogus'], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "unknown argument '--bogus'" in result.stderr
    assert '--which-mmcv' in result.stderr
