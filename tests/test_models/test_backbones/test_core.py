"""The shared core: diffusers internals reached through one module with a version gate, flow-matching noising, and
the family seam."""
import ast
import re
from pathlib import Path

import diffusers
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from mmdiff import diffusers_compat
from mmdiff.models.backbones import DiffusionBackbone, DiffusionUNetBackbone, declared_out_channels
from mmdiff.models.backbones.core.noising import add_noise

ROOT = Path(__file__).resolve().parents[3]
COMPAT = ROOT / 'mmdiff' / 'diffusers_compat'


def internal_uses(path: Path) -> list:
    """Where ``path`` reads a listed diffusers internal of another object (its own ``self.norm1`` is its own), or
    imports from below diffusers' top level."""
    uses = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Attribute) and node.attr in diffusers_compat.INTERNAL_ATTRIBUTES
                and not (isinstance(node.value, ast.Name) and node.value.id == 'self')):
            uses.append(f'{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}')
        modules = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                   [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
        uses += [f'{path.relative_to(ROOT)}:{node.lineno} import {module}' for module in modules
                 if module.startswith('diffusers.')]
    return uses


def test_only_the_compatibility_module_touches_diffusers_internals():
    sources = [path for folder in ('mmdiff', 'tools') for path in sorted((ROOT / folder).rglob('*.py'))]
    inside_paths = [path for path in sources if COMPAT in path.parents]
    assert len(inside_paths) >= 4 and len(sources) > 50
    outside = [use for path in sources if path not in inside_paths for use in internal_uses(path)]
    assert outside == []
    # and the check sees them: the compatibility package itself reads every attribute it lists
    inside = ' '.join(use for path in inside_paths for use in internal_uses(path))
    assert [name for name in diffusers_compat.INTERNAL_ATTRIBUTES if f'.{name}' not in inside] == []


def test_pyproject_declares_the_tested_diffusers_range():
    pyproject = (ROOT / 'pyproject.toml').read_text()
    assert re.search(r'"diffusers(.*?)"', pyproject).group(1) == str(diffusers_compat.TESTED_DIFFUSERS) == \
        '>=0.42.1,<0.43'
    diffusers_compat.check_diffusers_version()  # the installed one is in it


@pytest.mark.parametrize('version', ['0.30.0', '0.43.0', '0.42.0'])
def test_a_diffusers_outside_the_tested_range_is_refused_naming_both(version, monkeypatch):
    monkeypatch.setattr(diffusers, '__version__', version)
    message = rf'diffusers {re.escape(version)} is installed, but .* tested on diffusers>=0.42.1,<0.43 only'
    with pytest.raises(RuntimeError, match=message):
        DiffusionUNetBackbone(arch='adm-tiny')
    with pytest.raises(RuntimeError, match=message):
        declared_out_channels(dict(type='mmdiff.DiffusionUNetBackbone', arch='adm-tiny'))


def test_flow_matching_noises_as_the_scheduler_does():
    """x_t = (1 - t / T) x + (t / T) noise: diffusers' scale_noise at the same training steps."""
    scheduler = FlowMatchEulerDiscreteScheduler()
    clean, noise = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    steps = torch.tensor([1000, 500, 120])
    expected = scheduler.scale_noise(clean, steps.float(), noise)
    torch.testing.assert_close(add_noise(scheduler, clean, noise, steps), expected)


def test_a_flow_matching_schedule_drives_the_backbone():
    backbone = DiffusionUNetBackbone(arch='adm-tiny', out_strides=(8, ), timesteps=(0, 999),
                                     noise_scheduler=dict(type='FlowMatchEulerDiscreteScheduler'))
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    sample, steps = backbone.noised(images)
    torch.testing.assert_close(sample[0], images[0])  # t = 0 is the clean image
    torch.testing.assert_close(sample[1], 0.001 * images[0] + 0.999 * backbone.fixed_noise.sample(
        1, 3, 32, 32, 'cpu', torch.float32)[0])
    assert steps.tolist() == [0, 999]


def test_the_core_needs_a_family():
    with pytest.raises(TypeError, match='DiffusionBackbone names no model family; build a registered subclass'):
        DiffusionBackbone(arch='adm-tiny')


def test_the_pretrainer_refuses_a_schedule_its_objective_cannot_use():
    from mmdiff.models import DiffusionPretrainer
    with pytest.raises(ValueError, match=r"the pre-training noise_scheduler type='FlowMatchEulerDiscreteScheduler' "
                                         r"is not supported; choose one of \['DDPMScheduler', 'DDIMScheduler'\]"):
        DiffusionPretrainer(arch='adm-digits', noise_scheduler=dict(type='FlowMatchEulerDiscreteScheduler'))
