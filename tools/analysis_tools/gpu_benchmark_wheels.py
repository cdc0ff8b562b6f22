"""Which wheels of a folder ``tools/analysis_tools/gpu_benchmark.sh`` installs: standard library only, run by the node's
Python.

    python tools/analysis_tools/gpu_benchmark_wheels.py WHEEL_DIR      prints one wheel path per line

A wheel is installed when this Python lacks its distribution, and for the packages the benchmark is pinned to
(:data:`PINNED`: diffusers, mmengine) also when it has another version. Distributions it already has (torch, numpy,
and whatever else the node's PyTorch came with) are kept, so the wheels never shadow the node's own builds.
"""
import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Dict, List, Tuple

PINNED = ('diffusers', 'mmengine')
# the versions of requirements/pins.txt; opencv because mmengine's runner imports cv2 without declaring it
DOWNLOAD = ('pip download --dest WHEEL_DIR --only-binary=:all: --python-version 3.X --platform manylinux_2_28_x86_64 '
            '--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 diffusers==0.42.1 mmengine==0.11.0rc3 '
            'opencv-python-headless==5.0.0.93')


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares it: lower case, runs of ``-_.`` as one ``-``."""
    return re.sub(r'[-_.]+', '-', name).lower()


def wheel_name_version(wheel: Path) -> Tuple[str, str]:
    """The (normalised distribution name, version) of a wheel file ``name-version-...-tag.whl``."""
    name, version = wheel.name.split('-')[:2]
    return normalize(name), version


def installed_versions() -> Dict[str, str]:
    """Normalised distribution name -> version of everything this Python can import from."""
    return {normalize(dist.metadata['Name']): dist.version for dist in importlib.metadata.distributions()
            if dist.metadata['Name']}


def wheels_to_install(folder: Path, installed: Dict[str, str]) -> List[Path]:
    """The wheels of ``folder`` to install next to ``installed`` distributions (see the module docstring).

    Args:
        folder (Path): A folder of ``.whl`` files, filled by :data:`DOWNLOAD`.
        installed (dict): Normalised name -> version of the distributions present.

    Returns:
        list[Path]: The wheels to install, by name.
    """
    wheels = {wheel_name_version(wheel): wheel for wheel in sorted(folder.glob('*.whl'))}
    names = {name for name, _ in wheels}
    absent = [name for name in PINNED if name not in names]
    if absent:
        raise SystemExit(f'{str(folder)!r} holds no wheel of {absent}; fill it on a machine with a package '
                         f'registry (X: the GPU node\'s Python minor version):\n    {DOWNLOAD}')
    return [wheel for (name, version), wheel in wheels.items()
            if name not in installed or (name in PINNED and installed[name] != version)]


if __name__ == '__main__':
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        raise SystemExit(f'usage: python {sys.argv[0]} WHEEL_DIR (a folder of wheels), got {sys.argv[1:]}')
    print('\n'.join(str(wheel) for wheel in wheels_to_install(Path(sys.argv[1]), installed_versions())))
