"""The README's downstream configs, copied out verbatim and run from a folder outside the repository.

Each ``<!-- downstream-config: PACKAGE -->`` block is written to a file, read by mmengine (its ``mmdet::`` /
``mmseg::`` / ``mmpretrain::`` bases resolved), and its model built under that package's registry by a script run
from that folder (in this process), as the package's own tools build it, its weights initialised (the snippets'
``checkpoints/adm-256u.pth`` is a random ADM-256 backbone saved by the test), then run forward once on random
images: a wrong neck or head width, a leftover base argument, a checkpoint that does not fit or a wrong
preprocessor fails here.
"""
import re
from pathlib import Path

import pytest
import torch

from mmdiff.models.backbones import DiffusionUNetBackbone
from tests.test_utils.tool_runs import ROOT, run_in_process

pytestmark = pytest.mark.slow  # builds the full-size ADM-256 U-Net three times

SNIPPET = re.compile(r'<!-- downstream-config: (\w+) -->\n```python\n(.*?)```', re.DOTALL)

BUILD_AND_RUN = '''
import sys, warnings
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmengine.utils import import_modules_from_strings

cfg = Config.fromfile(sys.argv[1])
import_modules_from_strings(**cfg.custom_imports)
init_default_scope(cfg.default_scope)
from mmdiff.utils.model_check import check_model_arguments, check_pixel_normalisation
check_model_arguments(cfg)
with warnings.catch_warnings():
    warnings.simplefilter('error')  # a preprocessor that misses [-1, 1] fails the snippet
    check_pixel_normalisation(cfg)
if cfg.get('data_preprocessor') is not None:  # what mmengine's Runner does with a top-level one
    cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
with MODELS.switch_scope_and_registry(cfg.default_scope) as registry:
    model = registry.build(cfg.model).eval()
model.init_weights()  # loads the backbone's init_cfg checkpoint (strictly: mmdiff refuses one that does not fit)
print('backbone', type(model.backbone).__name__, list(model.backbone.out_channels))
images = [torch.randint(0, 256, (3, 64, 96), dtype=torch.uint8) for _ in range(2)]
with torch.no_grad():
    data = model.data_preprocessor(dict(inputs=images), False)
    print('pixels', round(float(data['inputs'].min()), 2), round(float(data['inputs'].max()), 2))
    if hasattr(model, 'rpn_head'):  # a detector's tensor mode needs image metas: run backbone, neck and RPN head
        outputs = model.rpn_head(model.extract_feat(data['inputs']))
    else:
        outputs = model(data['inputs'], mode='tensor')
outputs = outputs if isinstance(outputs, (tuple, list)) else [outputs]
print('outputs', len(outputs))
'''


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory) -> Path:
    """``checkpoints/adm-256u.pth`` as the snippets name it: a DiffusionUNetBackbone('adm-256u') state dict."""
    folder = tmp_path_factory.mktemp('weights') / 'checkpoints'
    folder.mkdir()
    torch.manual_seed(0)
    torch.save(DiffusionUNetBackbone(arch='adm-256u').state_dict(), folder / 'adm-256u.pth')
    return folder


def readme_snippets() -> dict:
    return {package: code for package, code in SNIPPET.findall((ROOT / 'README.md').read_text())}


def test_the_readme_has_one_downstream_config_per_codebase():
    assert sorted(readme_snippets()) == ['mmdet', 'mmpretrain', 'mmseg']


@pytest.mark.parametrize('package, channels', [('mmdet', [512, 512, 1024, 1024]), ('mmseg', [512, 512, 1024, 1024]),
                                               ('mmpretrain', [1024])])
def test_a_readme_config_builds_and_runs_verbatim_outside_the_repository(checkpoints, tmp_path, package, channels):
    (tmp_path / 'checkpoints').symlink_to(checkpoints)
    config = tmp_path / f'my_{package}_config.py'
    config.write_text(readme_snippets()[package])
    script = tmp_path / 'build_and_run.py'
    script.write_text(BUILD_AND_RUN)
    result = run_in_process(script, [config], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert f'backbone DiffusionUNetBackbone {channels}' in lines
    assert 'pixels -1.0 1.0' in lines
    assert any(line.startswith('outputs ') and int(line.split()[1]) >= 1 for line in lines)
