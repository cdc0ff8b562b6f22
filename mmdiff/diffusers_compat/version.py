"""The diffusers releases mmdiff's compatibility layer is tested on, and the check that refuses the others."""
from typing import Optional

import diffusers
from packaging.specifiers import SpecifierSet
from packaging.version import Version

# the diffusers releases mmdiff is tested on; pyproject.toml declares the same range
TESTED_DIFFUSERS = '>=0.42.1,<0.43'


def version_message(installed: str) -> str:
    """What to do about a diffusers release outside :data:`TESTED_DIFFUSERS`."""
    return (f'diffusers {installed} is installed, but mmdiff reaches diffusers internals tested on '
            f'diffusers{TESTED_DIFFUSERS} only (pyproject.toml); install a release in that range, e.g. pip install '
            f'"diffusers{TESTED_DIFFUSERS}"')


def check_diffusers_version(installed: Optional[str] = None) -> None:
    """Refuse a diffusers release outside :data:`TESTED_DIFFUSERS`, naming both.

    Args:
        installed (str, optional): The version to check. Defaults to None (the installed ``diffusers.__version__``).
    """
    installed = diffusers.__version__ if installed is None else installed
    if Version(installed) not in SpecifierSet(TESTED_DIFFUSERS):
        raise RuntimeError(version_message(installed))
