"""The README stays a five-minute read whose code runs, and every page of docs/ is reachable from its index."""
import re
import subprocess
from pathlib import Path

from tests.test_utils.tool_runs import ROOT, run_in_process

README = ROOT / 'README.md'
LINK = re.compile(r'\]\(([^)#\s]+)(?:#[^)]*)?\)')
CODE_BLOCK = re.compile(r'```(\w*)\n(.*?)```', re.DOTALL)


def relative_links(page: Path) -> list:
    return [link for link in LINK.findall(page.read_text()) if '://' not in link]


def test_the_readme_is_short_and_links_the_docs_index():
    assert len(README.read_text().splitlines()) <= 200
    assert 'docs/index.md' in relative_links(README)


def test_every_relative_link_resolves():
    pages = [README, *sorted((ROOT / 'docs').glob('*.md'))]
    broken = [f'{page.relative_to(ROOT)} -> {link}' for page in pages for link in relative_links(page)
              if not (page.parent / link).exists()]
    assert broken == []


def test_every_docs_page_is_linked_from_the_index():
    index = ROOT / 'docs' / 'index.md'
    linked = {(index.parent / link).resolve() for link in relative_links(index)}
    assert {page.resolve() for page in (ROOT / 'docs').glob('*.md')} - {index.resolve()} <= linked


def test_the_readme_keeps_only_code_that_a_test_runs():
    """The code blocks: the two make commands, the Python snippet (run below) and one config per codebase (run by
    test_readme_snippets.py)."""
    blocks = CODE_BLOCK.findall(README.read_text())
    assert [language for language, _ in blocks] == ['bash', 'python', 'python', 'python', 'python']
    text = README.read_text()
    assert text.count('<!-- readme-python -->') == 1 and text.count('<!-- downstream-config: ') == 3


def test_the_readme_make_commands_are_targets_of_the_makefile():
    commands = [line.split('#')[0].split() for line in CODE_BLOCK.findall(README.read_text())[0][1].splitlines()]
    assert commands == [['make', 'demo'], ['make', 'test']]
    for _, target in commands:  # make resolves the target and prints its recipe without running it
        dry_run = subprocess.run(['make', '-n', target], cwd=ROOT, capture_output=True, text=True)
        assert dry_run.returncode == 0 and dry_run.stdout.strip(), dry_run.stderr


def test_the_readme_python_snippet_runs_verbatim(tmp_path):
    snippet = re.search(r'<!-- readme-python -->\n```python\n(.*?)```', README.read_text(), re.DOTALL).group(1)
    script = tmp_path / 'snippet.py'
    script.write_text(snippet)
    result = run_in_process(script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    channels, shapes = result.stdout.splitlines()[-2:]
    assert channels == '(32, 32, 64, 64)'
    # 128 x 96 images at strides 4, 8, 16, 32
    assert shapes == '[(2, 32, 32, 24), (2, 32, 16, 12), (2, 64, 8, 6), (2, 64, 4, 3)]'
