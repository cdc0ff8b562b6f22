"""tools/analysis_tools/gpu_benchmark.sh end to end on the CPU with the tiny U-Net: wheels from a folder, the backbone
with the task packages blocked, every report field (it measures time; this test never asserts one)."""
import importlib.metadata
import importlib.util
import json
import math
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # an end-to-end run of a tool: `make test` runs it, `make test-quick` does not

ROOT = Path(__file__).resolve().parents[2]
# the task packages the backbone must not need, blocked in every Python the script starts
BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmcv', 'mmdet', 'mmseg', 'mmpretrain'):
            raise ImportError(f'{name} is blocked for this test')
sys.meta_path.insert(0, Block())
"""


def wheel_selection():
    spec = importlib.util.spec_from_file_location('gpu_benchmark_wheels',
                                                  ROOT / 'tools/analysis_tools/gpu_benchmark_wheels.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_wheel(folder: Path, name: str, version: str) -> Path:
    """A minimal valid pure-Python wheel of a package ``name`` whose module records that it was imported."""
    path = folder / f'{name}-{version}-py3-none-any.whl'
    dist_info = f'{name}-{version}.dist-info'
    files = {f'{name}/__init__.py': 'IMPORTED_FROM_THE_WHEEL = True\n',
             f'{dist_info}/METADATA': f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n',
             f'{dist_info}/WHEEL': 'Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n'}
    files[f'{dist_info}/RECORD'] = ''.join(f'{file},,\n' for file in files) + f'{dist_info}/RECORD,,\n'
    with zipfile.ZipFile(path, 'w') as archive:
        for file, text in files.items():
            archive.writestr(file, text)
    return path


def run_script(wheel_dir, *args, tmp_path: Path) -> subprocess.CompletedProcess:
    (tmp_path / 'blocker').mkdir(exist_ok=True)
    (tmp_path / 'blocker' / 'sitecustomize.py').write_text(BLOCKER)
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(tmp_path / 'blocker'), TMPDIR=str(tmp_path))
    return subprocess.run(['bash', 'tools/analysis_tools/gpu_benchmark.sh', str(wheel_dir), *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def test_wheel_selection_keeps_the_nodes_own_distributions(tmp_path):
    selection = wheel_selection()
    for name, version in (('diffusers', '0.42.1'), ('mmengine', '0.11.0rc3'), ('numpy', '2.4.6'),
                          ('huggingface_hub', '2.4.0'), ('Typing.Extensions', '4.16.0')):
        write_wheel(tmp_path, name, version)
    installed = {'diffusers': '0.30.0', 'mmengine': '0.11.0rc3', 'numpy': '1.26.4', 'typing-extensions': '4.1.0'}
    chosen = [path.name for path in selection.wheels_to_install(tmp_path, installed)]
    # missing: huggingface_hub; pinned at another version: diffusers; numpy and typing-extensions stay the node's
    assert chosen == ['diffusers-0.42.1-py3-none-any.whl', 'huggingface_hub-2.4.0-py3-none-any.whl']
    assert selection.wheels_to_install(tmp_path, dict(installed, diffusers='0.42.1')) == [
        tmp_path / 'huggingface_hub-2.4.0-py3-none-any.whl']
    # a folder without the pinned packages names them and the command that fills it
    (tmp_path / 'diffusers-0.42.1-py3-none-any.whl').unlink()
    with pytest.raises(SystemExit, match=r"holds no wheel of \['diffusers'\]; fill it on a machine with a package "
                       r'registry .*\n    pip download --dest WHEEL_DIR --only-binary=:all:'):
        selection.wheels_to_install(tmp_path, installed)


def test_gpu_benchmark_script_runs_end_to_end_on_cpu(tmp_path):
    wheels = tmp_path / 'wheels'
    wheels.mkdir()
    # diffusers and mmengine at the versions this Python has (kept), numpy at another (kept: not pinned), and one
    # distribution it lacks (installed). A wrongly chosen wheel would shadow the real package and break the run.
    write_wheel(wheels, 'diffusers', importlib.metadata.version('diffusers'))
    write_wheel(wheels, 'mmengine', importlib.metadata.version('mmengine'))
    write_wheel(wheels, 'numpy', '0.0.1')
    write_wheel(wheels, 'mmdiff_wheel_probe', '1.0')
    # --no-compile: each compiled setting compiles the tiny U-Net for about 1.5 minutes on a 2-core CPU
    result = run_script(wheels, '--arch', 'adm-tiny', '--batch-size', '2', '--size', '32', '--repeats', '1',
                        '--warmup', '0', '--device', 'cpu', '--no-compile', tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '[gpu_benchmark] installed 1 wheels into a temporary folder: mmdiff_wheel_probe-1.0' in result.stdout
    assert f'diffusers {importlib.metadata.version("diffusers")}, mmengine' in result.stdout
    assert not list(tmp_path.glob('mmdiff-gpu-benchmark.*'))  # the temporary folder is gone

    report = json.loads((ROOT / 'work_dirs' / 'benchmarks' / 'backbone_adm-tiny_cpu.json').read_text())
    rows = {row['setting']: row for row in report['rows']}
    assert not any(row['options'].get('torch_compile') for row in report['rows'])
    assert rows['bf16 weights, channels_last']['weights_gib'] == pytest.approx(
        rows['bf16 backbone, channels_last']['weights_gib'] / 2)
    # the profiler table: the profiled setting's top operators, their shares of the profiled time
    profile = report['profile']
    assert profile['setting'] == 'bf16 weights, channels_last' and profile['sort_by'] == 'self_cpu_time_total'
    assert 0 < len(profile['rows']) <= 15 and 0 < sum(row['fraction'] for row in profile['rows']) <= 1 + 1e-9
    assert all(math.isclose(row['self_ms'], row['fraction'] * profile['total_ms'], rel_tol=1e-6)
               for row in profile['rows'])
    assert 'aten::' in profile['table']
    # the summary is computed from the rows and printed last
    fastest = max((row for row in report['rows'] if row['kind'] == 'backbone'
                   and row['relative_error_vs_fp32'] is not None), key=lambda row: row['images_per_s'])
    speed, error, three = report['summary']
    assert speed['value'] == fastest['images_per_s'] and error['value'] == fastest['relative_error_vs_fp32']
    assert speed['met'] == (speed['value'] >= 600)
    assert three['value'] == pytest.approx(rows['bf16 weights, channels_last, 3 timesteps']['samples_per_s']
                                           / rows['bf16 weights, channels_last']['images_per_s'])
    printed = result.stdout.strip().splitlines()
    assert printed[-5:-2] == [line for line in printed if line.startswith(('| FPN', '| relative error', '| 3 time'))]
    assert printed[-1] == 'wrote work_dirs/benchmarks/backbone_adm-tiny_cpu.json'


def test_gpu_benchmark_script_names_a_bad_wheel_folder(tmp_path):
    result = run_script(tmp_path / 'missing', tmp_path=tmp_path)
    assert result.returncode == 1
    assert "WHEEL_DIR '" in result.stderr and "missing' is not a folder; give a folder of wheels or '-'" in \
        result.stderr
    (tmp_path / 'empty').mkdir()
    result = run_script(tmp_path / 'empty', tmp_path=tmp_path)
    assert result.returncode == 1
    assert "holds no wheel of ['diffusers', 'mmengine']" in result.stderr
