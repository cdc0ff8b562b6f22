"""The one check of an argument against its valid choices."""
from typing import Sequence


def check_choice(name: str, value, choices: Sequence) -> None:
    """Raise a ValueError naming ``value`` and the valid ``choices`` when ``value`` is not one of them.

    Example:
        >>> check_choice('fusion', 'sum', ('concat', 'mean'))
        Traceback (most recent call last):
        ...
        ValueError: fusion='sum' is not supported; choose one of ['concat', 'mean']
    """
    if value not in choices:
        raise ValueError(f'{name}={value!r} is not supported; choose one of {list(choices)}')
