"""Refusing every network connection and name lookup, in this process or in a fresh interpreter."""
import contextlib
import socket
from typing import Iterator

import pytest

# Run as ``python -c NETWORK_GUARD script args``: the guard is in place before the script imports anything.
NETWORK_GUARD = '''
import runpy, socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError(f'network access attempted: {args[1:] or args}')
socket.socket.connect = socket.socket.connect_ex = refuse
socket.create_connection = socket.getaddrinfo = refuse
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def refuse(*args, **kwargs):
    """Raise, naming the address that a connection or name lookup asked for."""
    raise RuntimeError(f'network access attempted: {args[1:] or args}')


@contextlib.contextmanager
def network_refused() -> Iterator[None]:
    """Within the block, every connection and name lookup of this process raises ``RuntimeError`` (the same
    functions :data:`NETWORK_GUARD` replaces); they are put back afterwards."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(socket.socket, 'connect', refuse)
        monkeypatch.setattr(socket.socket, 'connect_ex', refuse)
        monkeypatch.setattr(socket, 'create_connection', refuse)
        monkeypatch.setattr(socket, 'getaddrinfo', refuse)
        yield
