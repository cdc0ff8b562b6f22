"""tools/make_prompt_embedding.py is the one place that may need transformers; without it, it says so."""
import importlib.util
import sys

import pytest

from tests.test_utils.tool_runs import ROOT, run_in_process


@pytest.mark.skipif(importlib.util.find_spec('transformers') is not None,
                    reason='transformers is installed here (the project environment keeps it out)')
def test_without_transformers_the_script_says_what_it_needs(tmp_path):
    result = run_in_process(ROOT / 'tools/make_prompt_embedding.py', [tmp_path, tmp_path / 'x.pth'])
    assert result.returncode != 0
    assert 'this script needs transformers' in result.stderr
    assert not (tmp_path / 'x.pth').exists()


def test_class_names_come_from_datasets_files_and_lists(tmp_path):
    sys.path.insert(0, str(ROOT / 'tools'))
    try:
        from make_prompt_embedding import class_names
    finally:
        sys.path.pop(0)
    assert len(class_names('ade20k')) == 150 and class_names('ade20k')[0] == 'wall'
    (tmp_path / 'names.txt').write_text('cat\n\ndog\n')
    assert class_names(str(tmp_path / 'names.txt')) == ['cat', 'dog']
    assert class_names('cat, dog') == ['cat', 'dog']
