"""A socket listening in its own private directory: :class:`Listener` and :func:`listen`."""

from __future__ import annotations

import socket as _socket

from ._args import DEFAULT_NAME, _backlog_arg, _decode, _name_arg, _type_arg
from ._dirs import PrivateDir
from ._handle import _SoleOwner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Union

    from ._args import StrPath


class Listener(_SoleOwner):
    """A socket bound and listening in its own private directory; made by :func:`listen`.

    ``socket`` is a plain :class:`socket.socket` (``accept()``, ``asyncio.start_unix_server(
    sock=...)``, ``socketserver``); ``path`` its path; ``dir`` the :class:`PrivateDir`.
    :meth:`close` (or leaving a ``with`` block) closes the socket and removes the socket file
    and the directory.
    """

    def __init__(self, dir: PrivateDir, sock: _socket.socket, path: str):
        self.dir = dir
        self.socket = sock
        self.path = path

    def fileno(self) -> int:
        return self.socket.fileno()

    def close(self) -> None:
        """Closes the socket, then cleans up the directory. A second call does nothing."""
        self.socket.close()
        self.dir.cleanup()

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<usock.Listener {self.path!r}>"


def listen(
    name: Optional[Union[str, bytes]] = None,
    *,
    parent: Optional[StrPath] = None,
    type: int = _socket.SOCK_STREAM,
    backlog: Optional[int] = None,
) -> Listener:
    """A socket bound at ``<private dir>/<name>`` (``None``: ``"sock"``) and listening, in a
    fresh private directory in ``parent`` (``None``: the automatic location)."""
    raw_name = _name_arg(name)
    ty = _type_arg(type)
    bl = _backlog_arg(backlog)
    d = PrivateDir(parent)
    try:
        sock = d._bind(raw_name, ty, bl)
    except BaseException:
        d.cleanup()
        raise
    # The library checked that this path fits; no need to ask it again.
    path = d._path + "/" + (_decode(raw_name) if raw_name is not None else DEFAULT_NAME)
    return Listener(d, sock, path)

