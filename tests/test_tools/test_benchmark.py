"""tools/analysis_tools/benchmark.py runs end to end on CPU and reports every field (it measures time; this test never
does)."""
import json
import math

import pytest

from tests.test_utils.tool_runs import ROOT, ToolRun, run_in_process

pytestmark = pytest.mark.slow  # end-to-end runs of the tools: `make test` runs them, `make test-quick` does not



def run(*args) -> ToolRun:
    return run_in_process(ROOT / 'tools/analysis_tools/benchmark.py', args)


def test_backbone_benchmark_reports_every_setting():
    result = run('backbone', '--arch', 'adm-tiny', '--batch-size', '2', '--size', '32', '--repeats', '1',
                 '--warmup', '0', '--device', 'cpu')
    assert result.returncode == 0, result.stderr
    report = json.loads((ROOT / 'work_dirs' / 'benchmarks' / 'backbone_adm-tiny_cpu.json').read_text())
    settings = [row['setting'] for row in report['rows']]
    assert settings == ['fp32 full forward', 'bf16 full forward', 'fp32 backbone (truncated)', 'bf16 backbone',
                        'bf16 backbone, channels_last', 'bf16 weights, channels_last',
                        'bf16 weights, channels_last, 3 timesteps',
                        'bf16 weights, channels_last, taps end at up_blocks[2]']
    rows = {row['setting']: row for row in report['rows']}
    for row in report['rows']:  # the derived rates are the batch over the measured time, the row is printed
        assert math.isclose(row['images_per_s'] * row['seconds_per_batch'], 2, rel_tol=1e-9)
        assert math.isclose(row['gflop_per_image'] * 2e9, row['flops_per_batch'], rel_tol=1e-9)
        assert row['setting'] in result.stdout
    # the truncated pass does less work than the full forward; three timesteps three times the work of one
    assert rows['fp32 backbone (truncated)']['flops_per_batch'] < rows['fp32 full forward']['flops_per_batch']
    three = rows['bf16 weights, channels_last, 3 timesteps']
    assert math.isclose(three['flops_per_batch'], 3 * rows['bf16 weights, channels_last']['flops_per_batch'],
                        rel_tol=0.01)
    # bf16 weights do the same work as bf16 autocast in half the weight memory; no profile unless asked
    assert rows['bf16 weights, channels_last']['flops_per_batch'] == rows['bf16 backbone, channels_last'][
        'flops_per_batch']
    assert rows['bf16 weights, channels_last']['weights_gib'] == rows['bf16 backbone']['weights_gib'] / 2
    assert report['profile'] is None and 'profile of' not in result.stdout
    assert rows['fp32 backbone (truncated)']['relative_error_vs_fp32'] == 0.0
    checks = report['input_checks']
    assert math.isclose(checks['fraction_of_fp32_backbone_batch'] * rows['fp32 backbone (truncated)'][
        'seconds_per_batch'], checks['later_batch_s'], rel_tol=1e-9)
    assert 0 < checks['later_batch_s'] and 0 < checks['first_batch_s']
    assert 'input checks per batch: first' in result.stdout


def test_backbone_benchmark_takes_a_transformer_preset_with_its_companions():
    """A FLUX preset runs with its VAE, context and guidance; only the backbone rows apply, no ADM summary."""
    result = run('backbone', '--arch', 'flux-tiny', '--batch-size', '1', '--size', '32', '--repeats', '1',
                 '--warmup', '0', '--device', 'cpu')
    assert result.returncode == 0, result.stderr
    report = json.loads((ROOT / 'work_dirs' / 'benchmarks' / 'backbone_flux-tiny_cpu.json').read_text())
    assert [row['setting'] for row in report['rows']] == [
        'fp32 backbone (truncated)', 'bf16 backbone', 'bf16 backbone, channels_last', 'bf16 weights, channels_last',
        'bf16 weights, channels_last, 3 timesteps']
    assert report['summary'] == [] and 'summary (the target' not in result.stdout
    assert report['rows'][0]['relative_error_vs_fp32'] == 0.0 and report['rows'][3]['weights_gib'] > 0


def test_step_benchmark_runs_a_segmentation_config():
    result = run('step', 'configs/upernet_diffusion_ade20k.py', '--backbone-arch', 'adm-tiny', '--batch-size', '2',
                 '--size', '64', '--repeats', '1', '--warmup', '0', '--device', 'cpu')
    assert result.returncode == 0, result.stderr
    report = json.loads((ROOT / 'work_dirs' / 'benchmarks' / 'step_upernet_diffusion_ade20k.json').read_text())
    assert [row['step'] for row in report['rows']] == ['train step', 'test step']
    for row in report['rows']:
        assert math.isclose(row['images_per_s'] * row['seconds'], 2, rel_tol=1e-9)
        assert row['step'] in result.stdout
