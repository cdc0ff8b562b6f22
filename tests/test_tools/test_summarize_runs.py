"""tools/analysis_tools/summarize_runs.py reads the last logged value of each metric from each run's newest
scalars.json."""
import json

from tests.test_utils.tool_runs import ROOT, run_in_process

TOOL = ROOT / 'tools/analysis_tools/summarize_runs.py'


def write_run(work_dir, timestamp, records):
    log = work_dir / timestamp / 'vis_data' / 'scalars.json'
    log.parent.mkdir(parents=True)
    log.write_text(''.join(json.dumps(record) + '\n' for record in records))


def test_the_table_holds_the_last_value_of_each_metric_from_the_newest_run(tmp_path):
    write_run(tmp_path / 'scratch', '20260101_000000', [{'accuracy/top1': 10.0, 'step': 1}])  # an older run
    write_run(tmp_path / 'scratch', '20260102_000000', [{'loss': 2.0, 'step': 5}, {'accuracy/top1': 90.5, 'step': 1},
                                                       {'loss': 1.0, 'step': 10}, {'accuracy/top1': 96.25, 'step': 2}])
    write_run(tmp_path / 'distill', '20260102_000000', [{'loss': 0.5, 'step': 1000}])
    out = tmp_path / 'summary.md'
    result = run_in_process(TOOL, [tmp_path / 'scratch', tmp_path / 'distill', '--metric', 'accuracy/top1',
                                   '--metric', 'loss', '--out', out])
    assert result.returncode == 0, result.stderr
    assert out.read_text() == result.stdout == ('| run | accuracy/top1 | loss |\n|---|---|---|\n'
                                                '| scratch | 96.25 (step 2) | 1 (step 10) |\n'
                                                '| distill | - | 0.5 (step 1000) |\n')


def test_a_dir_without_logs_is_named(tmp_path):
    result = run_in_process(TOOL, [tmp_path, '--metric', 'loss'])
    assert result.returncode != 0
    assert f"{str(tmp_path)!r} holds no <timestamp>/vis_data/scalars.json" in result.stderr
