"""Arguments checked and converted before the library sees them: paths and names to bytes
(a ``TypeError`` or ``ValueError`` for what C could not take), socket types, backlogs,
descriptors."""

from __future__ import annotations

import os
import socket as _socket
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing at run time costs more than usock itself
    from typing import Optional, Union

    StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

#: The socket name the library uses when it is given none (``NULL``). libusock exports no
#: constant for it: this is the one copy, and a test checks it against what the library binds.
DEFAULT_NAME = "sock"

_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


def _decode(raw: bytes) -> str:
    """``os.fsdecode`` for bytes, without its type dispatch."""
    return raw.decode(_FS_ENCODING, _FS_ERRORS)


def _parent_arg(parent: Optional[StrPath]) -> Optional[bytes]:
    if parent is None:
        return None
    if not isinstance(parent, (str, bytes, os.PathLike)):
        raise TypeError(f"parent must be a path or None, not {type(parent).__name__}")
    raw = os.fsencode(parent)
    if not raw:
        raise ValueError("parent must not be empty")
    if b"\0" in raw:
        raise ValueError("parent must not contain a NUL byte")
    return raw


def _name_arg(name: Optional[Union[str, bytes]]) -> Optional[bytes]:
    if name is None:
        return None
    if not isinstance(name, (str, bytes)):
        raise TypeError(f"name must be str, bytes or None, not {type(name).__name__}")
    raw = os.fsencode(name)
    if not raw:
        raise ValueError("socket name must not be empty")
    if b"/" in raw:
        raise ValueError(f"socket name {name!r} must be one path component, without '/'")
    if b"\0" in raw:
        raise ValueError("socket name must not contain a NUL byte")
    if raw in (b".", b".."):
        raise ValueError(f"socket name {name!r} names a directory")
    return raw


_TYPES = (_socket.SOCK_STREAM, _socket.SOCK_SEQPACKET, _socket.SOCK_DGRAM)


def _type_arg(type: int) -> int:
    if isinstance(type, bool) or not isinstance(type, int):
        raise TypeError(f"type must be a socket.SOCK_* value, not {type!r}")
    if type not in _TYPES:
        raise ValueError(
            f"type must be socket.SOCK_STREAM, SOCK_SEQPACKET or SOCK_DGRAM, not {type!r}"
        )
    return int(type)


def _backlog_arg(backlog: Optional[int]) -> int:
    if backlog is None:
        return 0
    if isinstance(backlog, bool) or not isinstance(backlog, int):
        raise TypeError(f"backlog must be an int or None, not {type(backlog).__name__}")
    if backlog < 0:
        raise ValueError(f"backlog must not be negative, got {backlog}")
    return min(backlog, 2**31 - 1)


def _path_arg(path: StrPath, what: str = "path") -> bytes:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a path, not {type(path).__name__}")
    raw = os.fsencode(path)
    if not raw:
        raise ValueError(f"{what} must not be empty")
    if b"\0" in raw:
        raise ValueError(f"{what} must not contain a NUL byte")
    return raw


def _fd_arg(sock: "Union[_socket.socket, int]") -> int:
    fd = sock if isinstance(sock, int) and not isinstance(sock, bool) else sock.fileno()
    if fd < 0:
        raise ValueError("the socket is closed")
    return fd
