"""Build hook: the wheel carries the repository's ``configs/`` as ``mmdiff/.mim/configs`` and its ``model-index.yml``
as ``mmdiff/.mim/model-index.yml`` (whose ``configs/*/metafile.yml`` imports resolve inside ``.mim``).

All metadata lives in ``pyproject.toml``; this file only adds the configs, the way mmdet, mmseg and mmpretrain ship
theirs, so a project that installs mmdiff can inherit them (``mmdiff.get_config_path``). The configs are copied into
the build folder, never into the source tree, and nothing is copied for an editable install (``pip install -e .``),
where ``mmdiff.get_config_path`` reads the repository's ``configs/`` directly.
"""
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONFIGS_DIR = Path(__file__).resolve().parent / 'configs'
MODEL_INDEX = CONFIGS_DIR.parent / 'model-index.yml'


class BuildPyWithConfigs(build_py):
    """``build_py`` that also copies ``configs/`` and ``model-index.yml`` into ``<build_lib>/mmdiff/.mim/``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        if not CONFIGS_DIR.is_dir():
            raise FileNotFoundError(f'{CONFIGS_DIR} is missing: the wheel would ship without its configs (an sdist '
                                    f'holds them when MANIFEST.in grafts configs/)')
        target = Path(self.build_lib) / 'mmdiff' / '.mim' / 'configs'
        shutil.rmtree(target, ignore_errors=True)  # a config removed since the last build must not linger
        shutil.copytree(CONFIGS_DIR, target, ignore=shutil.ignore_patterns('__pycache__', '*.py[co]'))
        shutil.copy2(MODEL_INDEX, target.parent / MODEL_INDEX.name)


setup(cmdclass={'build_py': BuildPyWithConfigs})
