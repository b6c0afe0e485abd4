"""Well-known paths: :class:`BoundPath` and :func:`listen_at`, a server at a fixed path that
replaces a stale socket and hands over from a live one."""

from __future__ import annotations

import ctypes
import os
import socket as _socket

from . import _lib
from ._args import _backlog_arg, _path_arg, _type_arg
from ._errors import _error
from ._handle import _finish, _new_handle, _SoleOwner, _Socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from ._args import StrPath


class BoundPath(_SoleOwner):
    """A socket listening at a well-known path; made by :func:`listen_at`.

    ``socket`` is a plain :class:`socket.socket`, ``path`` the path. :meth:`close` (or leaving
    a ``with`` block) closes the socket and removes the path if it is still this server's
    socket (a server that replaced it keeps it). Garbage collection and interpreter exit do
    the same for an object left open; a socket from here keeps it alive while it is open. In a
    child made by ``os.fork()`` nothing is removed."""

    def __init__(self, path: StrPath, *, type: int = _socket.SOCK_STREAM,
                 backlog: Optional[int] = None, replace: bool = False):
        raw = _path_arg(path)
        ty = _type_arg(type)
        bl = _backlog_arg(backlog)
        flags = _lib.REPLACE if replace else 0
        handle = _new_handle(self, _lib.lib.usock_unbind_path)
        self.path = os.fsdecode(raw)
        sock = _Socket(_socket.AF_UNIX, ty)
        sock._usock_dir = self
        try:
            with handle.lock:
                status = _lib.lib.usock_bind_path(raw, sock.fileno(), bl, flags,
                                                  ctypes.byref(handle.cell))
                if status != _lib.OK:
                    raise _error(status)
        except BaseException:
            sock.close()
            raise
        self.socket: _socket.socket = sock

    @property
    def closed(self) -> bool:
        return not self._handle.cell.value

    def fileno(self) -> int:
        return self.socket.fileno()

    def unbind(self) -> None:
        """Removes the path if it is still this server's socket, leaving the socket open (to
        drain connections already queued after a replacement took over). A second call does
        nothing."""
        _finish(self._handle)

    def close(self) -> None:
        """Closes the socket and unbinds the path."""
        self.socket.close()
        self.unbind()

    def __enter__(self) -> "BoundPath":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<usock.BoundPath {self.path!r} ({'closed' if self.closed else 'live'})>"


def listen_at(path: StrPath, *, type: int = _socket.SOCK_STREAM,
              backlog: Optional[int] = None, replace: bool = False) -> BoundPath:
    """A socket listening at the well-known ``path`` (``$XDG_RUNTIME_DIR/app.sock``, say); use
    it as a context manager.

    The path's directory must pass usock's checks and be writable only by you (not ``/tmp``: a
    fixed name there can be taken first by another user). A stale socket left by a crashed
    server is replaced; a live one raises :class:`NameInUseError` unless ``replace=True``, which
    binds the new socket beside the path and renames it over, so that clients never find the
    path without a server: the old server should then stop accepting once its queue is empty,
    and call :meth:`BoundPath.unbind` (which leaves the new socket in place).

    To tell a live server from a stale socket, usock connects to it: a live server at ``path``
    sees one connection that closes at once, without a byte (the probe). Servers must survive a
    peer that hangs up: that connection's ``recv()`` returns ``b""`` and a ``send()`` raises
    :class:`BrokenPipeError` or :class:`ConnectionResetError`; catch them per connection, as
    :mod:`socketserver` does."""
    return BoundPath(path, type=type, backlog=backlog, replace=replace)
