"""A client: :func:`connect`, which can insist on the server's user."""

from __future__ import annotations

import ctypes
import socket as _socket

from . import _lib
from ._args import _path_arg, _type_arg
from ._errors import WrongServerError, _error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

    from ._args import StrPath


#: ``connect(..., server=SELF_OR_ROOT)``: only a server running as you or as root.
SELF_OR_ROOT = "self_or_root"


def _server_arg(server: "Union[None, str, int]") -> int:
    if server is None:
        return _lib.SERVER_ANY
    if server == SELF_OR_ROOT:
        return _lib.SERVER_SELF_OR_ROOT
    if isinstance(server, bool) or not isinstance(server, int) or not 0 <= server < 2**32 - 1:
        raise ValueError(f"server must be None, usock.SELF_OR_ROOT or a uid, not {server!r}")
    return server


def connect(path: StrPath, *, type: int = _socket.SOCK_STREAM,
            nonblocking: bool = False,
            server: "Union[None, str, int]" = None) -> _socket.socket:
    """A socket of ``type`` connected to the socket at ``path``.

    ``server``: ``None`` (any), :data:`SELF_OR_ROOT`, or a uid: connect only if the server
    (by its credentials at ``listen()``) is that user, so a client never talks to a socket
    someone else put at the path; anyone else raises :class:`WrongServerError` (a
    :class:`PermissionError` naming both uids) and the connection is closed. A server running
    as :data:`OVERFLOW_UID` fails every check, even one naming it. Not for datagram sockets,
    which have no peer credentials.

    Failures keep the kernel's errno, as the built-in classes do: nothing there is a
    :class:`FileNotFoundError`, nobody listening a :class:`ConnectionRefusedError` (the message
    says when the file is not a socket), permission a :class:`PermissionError`, a full backlog
    (``nonblocking=True``, Linux) a :class:`BlockingIOError`; each is also a :class:`usock.Error`.
    A path longer than ``sun_path`` is reached through a descriptor of its directory on Linux
    (with ``/proc``) and FreeBSD; elsewhere, or when the socket's name alone does not fit, it is
    :class:`PathTooLongError`."""
    raw = _path_arg(path)
    ty = _type_arg(type)
    flags = _lib.CONNECT_NONBLOCK if nonblocking else 0
    expected = _server_arg(server)
    fd = ctypes.c_int(-1)
    status = _lib.lib.usock_connect(raw, ty, flags, expected, ctypes.byref(fd))
    if status != _lib.OK:
        # The only check usock_connect makes is the server's user.
        raise _error(status, WrongServerError if status == _lib.ERR_UNSAFE else None)
    return _socket.socket(fileno=fd.value)
