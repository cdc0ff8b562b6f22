"""The package's layers and the tools' layout (docs/layout.md): imports run downwards only, tools import no tool."""
import ast
from pathlib import Path
from typing import Iterator, Tuple

ROOT = Path(__file__).resolve().parents[1]
# each of mmdiff's packages (or top-level modules) with its floor: a module imports mmdiff modules of its own floor
# or lower, never higher
FLOORS = {
    'registry': 1, 'version': 1, 'config_paths': 1, 'diffusers_compat': 1,
    'utils': 2,
    'models': 3, 'datasets': 3, 'engine': 3, 'feature_cache': 3,
    'apis': 4, 'mmpretrain_modules': 4,
}
TOOL_FOLDERS = {'analysis_tools', 'feature_tools', 'model_converters', 'misc'}


def mmdiff_imports(path: Path, root: Path = ROOT) -> Iterator[Tuple[int, str]]:
    """``(line, mmdiff module)`` for each import of an mmdiff module in a file under ``root``, relative imports
    resolved."""
    package = path.relative_to(root).with_suffix('').parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ''
            if node.level:
                module = '.'.join(package[:len(package) - node.level + 1] + ((module, ) if module else ()))
            names = [f'{module}.{alias.name}' for alias in node.names] if module in ('mmdiff', ) else [module]
            yield from ((node.lineno, name) for name in names if name.split('.')[0] == 'mmdiff')
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names if alias.name.split('.')[0] == 'mmdiff')


def floor(module_parts: Tuple[str, ...]) -> int:
    """The floor of a module given as its dotted parts; ``mmdiff`` itself (its ``__init__``) is the top."""
    return 5 if len(module_parts) == 1 or module_parts[1] == '__init__' else FLOORS[module_parts[1]]


def test_every_package_has_a_floor():
    found = {path.stem if path.is_file() else path.name for path in (ROOT / 'mmdiff').iterdir()
             if (path.suffix == '.py' and path.stem != '__init__') or (path / '__init__.py').is_file()}
    assert found == set(FLOORS)


def test_no_import_runs_back_up():
    upward = []
    for path in sorted((ROOT / 'mmdiff').rglob('*.py')):
        own = floor(path.relative_to(ROOT).with_suffix('').parts)
        upward += [f'{path.relative_to(ROOT)}:{line} imports {module}' for line, module in mmdiff_imports(path)
                   if floor(tuple(module.split('.'))) > own]
    assert upward == []


def test_the_check_sees_an_upward_import(tmp_path):
    (tmp_path / 'mmdiff' / 'utils').mkdir(parents=True)
    source = tmp_path / 'mmdiff' / 'utils' / 'helper.py'
    source.write_text('from ..apis.runner_config import positive_int\nfrom mmdiff.models import backbones\n')
    imports = [module for _, module in mmdiff_imports(source, tmp_path)]
    assert imports == ['mmdiff.apis.runner_config', 'mmdiff.models']
    assert all(floor(tuple(module.split('.'))) > FLOORS['utils'] for module in imports)


def test_tools_follow_the_openmmlab_layout_and_import_no_tool():
    entry_points = sorted(path.name for path in (ROOT / 'tools').iterdir() if path.is_file())
    assert entry_points == ['dist_test.sh', 'dist_train.sh', 'slurm_train.sh', 'test.py', 'torchrun.sh', 'train.py']
    assert {path.name for path in (ROOT / 'tools').iterdir() if path.is_dir()} - {'__pycache__'} == TOOL_FOLDERS
    tool_names = {path.stem for path in (ROOT / 'tools').rglob('*.py')}
    offending = []
    for path in sorted((ROOT / 'tools').rglob('*.py')):
        text = path.read_text()
        tree = ast.parse(text)
        modules = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        modules += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
        offending += [f'{path.relative_to(ROOT)} imports {module}' for module in modules
                      if module.split('.')[0] in tool_names]
        if 'sys.path' in text:
            offending.append(f'{path.relative_to(ROOT)} changes sys.path')
    assert offending == []
