"""mmdiff's configs travel with the package: ``get_config_path`` finds them; a wheel installed into a fresh venv
carries them as ``mmdiff/.mim/configs`` with their ``_base_`` chains (mmdet's included) intact, and an editable
install reads the checkout's ``configs/``."""
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import mmdiff
from mmdiff import config_paths

ROOT = Path(__file__).resolve().parents[2]
REPO_CONFIGS = ROOT / 'configs'
DEMO_CONFIG = 'mask_rcnn/mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py'


def repo_config_paths() -> list:
    return sorted(path.relative_to(REPO_CONFIGS).as_posix() for path in REPO_CONFIGS.rglob('*.py'))


def same_file(found: str, relative_path: str) -> bool:
    return Path(found).is_absolute() and Path(found).read_bytes() == (REPO_CONFIGS / relative_path).read_bytes()


def test_a_config_is_found_by_name_with_or_without_py_and_by_relative_path():
    by_stem = mmdiff.get_config_path('mask-rcnn_adm-tiny-t10_fpn_demo-shapes')
    assert by_stem == mmdiff.get_config_path('mask-rcnn_adm-tiny-t10_fpn_demo-shapes.py')
    assert by_stem == mmdiff.get_config_path(DEMO_CONFIG)
    assert by_stem == mmdiff.get_config_path(DEMO_CONFIG.removesuffix('.py'))
    assert same_file(by_stem, DEMO_CONFIG)
    assert same_file(mmdiff.get_config_path('mask_rcnn_diffusion_coco'), 'mask_rcnn_diffusion_coco.py')


def test_the_editable_install_reads_the_repository_configs():
    assert not config_paths.INSTALLED_CONFIGS_DIR.exists()  # the editable install copies nothing into mmdiff/
    assert mmdiff.get_config_path('mask_rcnn_diffusion_coco') == str(REPO_CONFIGS / 'mask_rcnn_diffusion_coco.py')


def test_every_config_is_listed_and_resolves_by_path_and_the_runnable_ones_by_name():
    listed = mmdiff.list_configs()
    assert listed == repo_config_paths()
    assert 'mask_rcnn_diffusion_coco.py' in listed and '_base_/models/mask-rcnn_diffusion-unet_fpn.py' in listed
    for relative_path in listed:
        assert same_file(mmdiff.get_config_path(relative_path), relative_path), relative_path
        file_name = Path(relative_path).name
        if '_base_' in Path(relative_path).parts:
            with pytest.raises(FileNotFoundError, match=f'by its relative path: {relative_path}'):
                mmdiff.get_config_path(file_name)
        else:
            assert same_file(mmdiff.get_config_path(file_name), relative_path), relative_path


def test_an_unknown_name_is_refused_with_the_close_matches_and_the_count():
    count = len(mmdiff.list_configs())
    with pytest.raises(FileNotFoundError, match=rf"no config 'mask_rcnn_difusion_coco' \(closest: "
                                                rf"mask_rcnn_diffusion_coco.py.*; {count} configs are under"):
        mmdiff.get_config_path('mask_rcnn_difusion_coco')
    with pytest.raises(FileNotFoundError, match=rf"no config 'mask_rcnn/mask-rcnn_adm-tiny_fpn' \(closest: "
                                                rf"{re.escape(DEMO_CONFIG)}"):
        mmdiff.get_config_path('mask_rcnn/mask-rcnn_adm-tiny_fpn')
    with pytest.raises(FileNotFoundError, match=r"'zzzz' \(none is close\)"):
        mmdiff.get_config_path('zzzz')
    with pytest.raises(FileNotFoundError, match="no config '../setup.py'"):  # nothing outside the configs
        mmdiff.get_config_path('../setup.py')


def test_a_name_used_in_two_folders_is_ambiguous_and_the_installed_configs_come_first(tmp_path, monkeypatch):
    for folder in ('detection', 'segmentation'):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 'shared-name.py').write_text(f'folder = {folder!r}\n')
    monkeypatch.setattr(config_paths, 'INSTALLED_CONFIGS_DIR', tmp_path)
    with pytest.raises(ValueError, match=r"'shared-name' names 2 mmdiff configs: detection/shared-name.py, "
                                         r"segmentation/shared-name.py; pass the relative path"):
        mmdiff.get_config_path('shared-name')
    assert mmdiff.get_config_path('segmentation/shared-name') == str(tmp_path / 'segmentation' / 'shared-name.py')


def test_no_configs_folder_at_all_is_reported_with_both_places(tmp_path, monkeypatch):
    monkeypatch.setattr(config_paths, 'INSTALLED_CONFIGS_DIR', tmp_path / 'installed')
    monkeypatch.setattr(config_paths, 'SOURCE_CONFIGS_DIR', tmp_path / 'source')
    with pytest.raises(FileNotFoundError, match=r'neither .*installed \(an installed wheel\) nor .*source'):
        mmdiff.get_config_path('mask_rcnn_diffusion_coco')


# Run by the fresh venv's python from a folder outside the repository: find the installed config, load it with its
# whole _base_ chain, and load a downstream config that inherits it by absolute path (the documented way).
INSTALLED_CHECK = '''
import json, sys
import mmdiff
from mmengine.config import Config

path = mmdiff.get_config_path('mask_rcnn_diffusion_coco')
cfg = Config.fromfile(path)
downstream = sys.argv[1]
with open(downstream, 'w') as f:
    f.write(f"_base_ = [{mmdiff.get_config_path('mask-rcnn_adm-tiny-t10_fpn_demo-shapes')!r}]\\n"
            "model = dict(backbone=dict(timesteps=(50, )))\\n")
inherited = Config.fromfile(downstream)
print(json.dumps(dict(
    mmdiff_file=mmdiff.__file__, config=path, backbone=cfg.model.backbone.type, model=cfg.model.type,
    dataset=cfg.train_dataloader.dataset.type, optimizer=cfg.optim_wrapper.optimizer.type,
    inherited_backbone=inherited.model.backbone.type, inherited_arch=inherited.model.backbone.arch,
    inherited_timesteps=list(inherited.model.backbone.timesteps))))
'''


def copy_checkout(destination: Path) -> None:
    """Copy what a clone of the repository would hold, uncommitted files included, so the build writes nothing
    (``build/``, ``*.egg-info``) into the repository."""
    listed = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard', '-z'], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split('\0')
    for relative_path in filter(None, listed):
        source = ROOT / relative_path
        if source.is_file():  # a tracked file deleted in the working tree is listed but absent
            (destination / relative_path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / relative_path)


def run_checked(command: list, cwd: Path) -> str:
    result = subprocess.run(list(map(str, command)), cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f'{command} failed:\n{result.stdout}\n{result.stderr}'
    return result.stdout


def install_into_fresh_venv(wheel: Path, tmp_path: Path) -> tuple:
    """Install ``wheel`` alone into a new venv that borrows this venv's packages as its dependencies.

    Returns:
        tuple: The fresh venv's python and its site-packages folder.
    """
    venv = tmp_path / 'venv'
    run_checked([sys.executable, '-m', 'venv', '--without-pip', venv], cwd=tmp_path)
    python = venv / 'bin' / 'python'
    run_checked([sys.executable, '-m', 'pip', '--python', python, 'install', '--no-deps', '--no-index',
                 '--no-cache-dir', wheel], cwd=tmp_path)
    site_packages = Path(run_checked([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                                     cwd=tmp_path).strip())
    # written after the install, so pip never sees the repository's mmdiff; a path line in a .pth does not run that
    # folder's own .pth files, so the repository's editable mmdiff stays out of the fresh venv
    (site_packages / 'mmdiff_test_dependencies.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    return python, site_packages


def run_outside_repository(python: Path, script: str, tmp_path: Path, *args) -> dict:
    """Run ``script`` with ``python`` in a fresh folder, without this process's environment; return the JSON its
    last output line holds."""
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir(exist_ok=True)
    result = subprocess.run([str(python), '-c', script, *map(str, args)], cwd=elsewhere, capture_output=True,
                            text=True, timeout=300, env={'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path)})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def build_in_checkout_copy(hook: str, tmp_path: Path) -> Path:
    """Copy the checkout to ``tmp_path/source`` and run setuptools' PEP 517 ``hook`` there; return the folder it
    wrote to (``tmp_path/dist``)."""
    source, dist = tmp_path / 'source', tmp_path / 'dist'
    copy_checkout(source)
    run_checked([sys.executable, '-c', f'from setuptools import build_meta; build_meta.{hook}({str(dist)!r})'],
                cwd=source)
    return dist


@pytest.mark.slow
def test_a_wheel_installed_in_a_fresh_venv_ships_the_configs_and_their_bases_resolve(tmp_path):
    dist = build_in_checkout_copy('build_sdist', tmp_path)
    sdist = next(dist.glob('mmdiff-*.tar.gz'))
    with tarfile.open(sdist) as archive:
        sdist_configs = {name.partition('/configs/')[2] for name in archive.getnames() if '/configs/' in name}
    assert set(repo_config_paths()) <= sdist_configs

    # the wheel is built from the sdist, as pip does for a user installing from it
    run_checked([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index',
                 '--no-cache-dir', '-w', dist, sdist], cwd=tmp_path)
    wheel = next(dist.glob('mmdiff-*.whl'))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    wheel_configs = {name.removeprefix('mmdiff/.mim/configs/') for name in names
                     if name.startswith('mmdiff/.mim/configs/') and name.endswith('.py')}
    assert wheel_configs == set(repo_config_paths())
    # the model-zoo metadata, where mim reads it: .mim/model-index.yml and the metafiles it imports
    assert 'mmdiff/.mim/model-index.yml' in names
    metafiles = {f'mmdiff/.mim/{path.relative_to(ROOT).as_posix()}' for path in REPO_CONFIGS.glob('*/metafile.yml')}
    assert metafiles and metafiles <= set(names)

    python, site_packages = install_into_fresh_venv(wheel, tmp_path)
    found = run_outside_repository(python, INSTALLED_CHECK, tmp_path, tmp_path / 'downstream.py')
    assert Path(found['mmdiff_file']).is_relative_to(site_packages)
    assert Path(found['config']) == site_packages / 'mmdiff' / '.mim' / 'configs' / 'mask_rcnn_diffusion_coco.py'
    assert found['backbone'] == 'mmdiff.DiffusionUNetBackbone'  # from mmdiff's _base_/models
    assert found['model'] == 'MaskRCNN'  # from mmdet::_base_/models through mmdiff's _base_
    assert found['dataset'] == 'CocoDataset' and found['optimizer'] == 'SGD'  # mmdet::_base_ datasets, schedules
    assert (found['inherited_backbone'], found['inherited_arch']) == ('mmdiff.DiffusionUNetBackbone', 'adm-tiny')
    assert found['inherited_timesteps'] == [50]


@pytest.mark.slow
def test_an_editable_install_built_by_setup_py_reads_the_checkout_configs(tmp_path):
    dist = build_in_checkout_copy('build_editable', tmp_path)
    source = tmp_path / 'source'
    python, _ = install_into_fresh_venv(next(dist.glob('mmdiff-*.whl')), tmp_path)
    found = run_outside_repository(
        python, "import json, mmdiff; print(json.dumps(dict(mmdiff_file=mmdiff.__file__, "
                "config=mmdiff.get_config_path('mask_rcnn_diffusion_coco'))))", tmp_path)
    assert Path(found['mmdiff_file']) == source / 'mmdiff' / '__init__.py'
    assert Path(found['config']) == source / 'configs' / 'mask_rcnn_diffusion_coco.py'
    assert not (source / 'mmdiff' / '.mim').exists()  # nothing is copied into the source tree
