"""Refusing every network connection and name lookup, in this process or in a fresh interpreter."""
import contextlib
import socket
from typing import Iterator

# the functions every connection and name lookup goes through
GUARDED = ((socket.socket, 'connect'), (socket.socket, 'connect_ex'), (socket, 'create_connection'),
           (socket, 'getaddrinfo'))
# Run as ``python -c NETWORK_GUARD script args`` from the repository: the guard is in place before the script
# imports anything (this module imports nothing but the standard library).
NETWORK_GUARD = '''
import runpy, sys
from tests.test_utils.network_guard import network_refused
sys.argv = sys.argv[1:]
with network_refused():
    runpy.run_path(sys.argv[0], run_name='__main__')
'''


def refuse(*args, **kwargs):
    """Raise, naming the address that a connection or name lookup asked for."""
    raise RuntimeError(f'network access attempted: {args[1:] or args}')


@contextlib.contextmanager
def network_refused() -> Iterator[None]:
    """Within the block, every connection and name lookup of this process (:data:`GUARDED`) raises
    ``RuntimeError``; the functions are put back afterwards."""
    originals = [(owner, name, getattr(owner, name)) for owner, name in GUARDED]
    for owner, name, _ in originals:
        setattr(owner, name, refuse)
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
