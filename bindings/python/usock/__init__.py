"""usock: a safe private place for a Unix domain socket.

>>> import usock
>>> with usock.listen() as server:             # private 0700 dir at the automatic location
...     print(server.path)                     # e.g. /run/user/1000/usock-k3m9.../sock
...     conn, _ = server.socket.accept()       # server.socket is a plain socket.socket
>>> # leaving the block closes the socket and removes the socket file and the directory

>>> with usock.private_dir() as d:             # just the directory, for code that binds itself
...     path = d.socket_path("api.sock")       # e.g. asyncio.start_unix_server(path=path)

The directory gets an unpredictable name and mode 0700 in a parent whose ownership and mode
were checked; sockets bound by usock get mode 0600 whatever the umask; cleanup removes exactly
what was made (and sockets you bound at ``socket_path``), never anything swapped in.
"""

from __future__ import annotations

import ctypes
import os
import socket as _socket
import sys
import threading
import atexit
from typing import Optional, Union

from . import _lib

__all__ = [
    "listen",
    "private_dir",
    "PrivateDir",
    "Listener",
    "Error",
    "InvalidArgumentError",
    "PathTooLongError",
    "UnsafeDirectoryError",
    "NoDirectoryError",
    "NameInUseError",
    "ExhaustedError",
    "ChangedError",
    "PATH_MAX",
    "version",
]

PATH_MAX = _lib.PATH_MAX

_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


def _decode(raw: bytes) -> str:
    """``os.fsdecode`` for bytes, without its type dispatch."""
    return raw.decode(_FS_ENCODING, _FS_ERRORS)

StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def version() -> str:
    """The loaded libusock's version, "MAJOR.MINOR.PATCH"."""
    return _lib.lib.usock_version().decode()


# Errors -----------------------------------------------------------------------------------


class Error(OSError):
    """A failure reported by libusock.

    ``status`` is the library's status code (``USOCK_ERR_*``), ``errno`` the operating
    system's error number when a system call failed (else ``None``), and ``strerror`` the
    library's message, which names the path and the reason.
    """

    status: int = 0

    def __init__(self, status: int, errno: Optional[int], message: str):
        if errno:
            super().__init__(errno, message)
        else:
            super().__init__(message)
            self.strerror = message
        self.status = status


class InvalidArgumentError(Error):
    """The library refused an argument (``USOCK_ERR_INVALID``)."""


class PathTooLongError(Error):
    """The socket path would not fit in ``sockaddr_un.sun_path`` (``USOCK_ERR_TOO_LONG``)."""


class UnsafeDirectoryError(Error):
    """A directory failed a safety check: owner, mode, symlink, sticky bit
    (``USOCK_ERR_UNSAFE``)."""


class NoDirectoryError(Error):
    """Automatic choice found no usable parent directory (``USOCK_ERR_NO_DIR``); the message
    lists each candidate and why it was skipped."""


class NameInUseError(Error):
    """That socket name is already taken in the directory (``USOCK_ERR_IN_USE``)."""


class ExhaustedError(Error):
    """Fresh random directory names kept colliding (``USOCK_ERR_EXHAUSTED``)."""


class ChangedError(Error):
    """Cleanup found something usock did not make and left it in place
    (``USOCK_ERR_CHANGED``)."""


_ERRORS = {
    _lib.ERR_INVALID: InvalidArgumentError,
    _lib.ERR_TOO_LONG: PathTooLongError,
    _lib.ERR_UNSAFE: UnsafeDirectoryError,
    _lib.ERR_NO_DIR: NoDirectoryError,
    _lib.ERR_IN_USE: NameInUseError,
    _lib.ERR_EXHAUSTED: ExhaustedError,
    _lib.ERR_CHANGED: ChangedError,
}


def _error(status: int) -> Error:
    """The exception for a failed call, read from this thread's last error."""
    lib = _lib.lib
    message = os.fsdecode(lib.usock_last_error()) or lib.usock_strerror(status).decode()
    errno = lib.usock_last_errno() or None
    return _ERRORS.get(status, Error)(status, errno, message)


# Arguments --------------------------------------------------------------------------------


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


# The directory ----------------------------------------------------------------------------


# Handles not yet cleaned up, by the id of the PrivateDir that owns them. Whoever pops a handle
# from here (cleanup(), __del__ or the atexit hook) releases it: dict.pop is atomic under the
# GIL, so each handle is released exactly once.
_live: "dict[int, ctypes._Pointer[_lib._Dir]]" = {}


def _release(key: int) -> Optional[int]:
    """Cleans up and frees the handle registered under ``key``; ``None`` if already done."""
    handle = _live.pop(key, None)
    if handle is None:
        return None
    return _lib.lib.usock_cleanup(handle)


@atexit.register
def _release_all() -> None:
    """At interpreter exit, clean up every directory the program left (in a forked child the
    library removes nothing)."""
    for key in list(_live):
        _release(key)


class PrivateDir:
    """A private directory for Unix domain sockets, made when the object is created.

    ``parent`` is the directory to create it in, or ``None`` for the automatic location
    (``$XDG_RUNTIME_DIR``, ``$TMPDIR``, ``/tmp``, ``/var/tmp``: the first that is safe and
    leaves room for a socket path). The directory has an unpredictable name and mode 0700.

    Cleanup removes the sockets in it and the directory itself. It runs once: at
    :meth:`cleanup`, at the end of a ``with`` block, when the object is garbage-collected, or
    when the interpreter exits, whichever comes first. In a child process made by
    ``os.fork()`` it removes nothing (the parent still owns the directory).

    Raises :class:`UnsafeDirectoryError`, :class:`PathTooLongError`,
    :class:`NoDirectoryError` or :class:`Error`; nothing is left on disk then.
    """

    def __init__(self, parent: Optional[StrPath] = None):
        raw_parent = _parent_arg(parent)
        handle = _lib.DirPtr()
        status = _lib.lib.usock_create_dir(raw_parent, 0, ctypes.byref(handle))
        if status != _lib.OK:
            raise _error(status)
        self._handle = handle
        self._lock = threading.Lock()
        self._path = _decode(_lib.lib.usock_dir_path(handle))
        _live[id(self)] = handle

    @property
    def path(self) -> str:
        """The directory's absolute path, with no symbolic links in it."""
        return self._path

    @property
    def closed(self) -> bool:
        """True once the directory has been cleaned up."""
        return id(self) not in _live

    def _live_handle(self) -> "ctypes._Pointer[_lib._Dir]":
        if id(self) not in _live:
            raise ValueError(f"the private directory {self._path} was already cleaned up")
        return self._handle

    def socket_path(self, name: Optional[Union[str, bytes]] = None) -> str:
        """The path of socket ``name`` (``None``: ``"sock"``) in the directory, for code that
        binds by itself (asyncio, a web server's ``--uds``); cleanup removes that socket too.

        Raises :class:`PathTooLongError` when the path would not fit ``sun_path``."""
        raw = _name_arg(name)
        buf = ctypes.create_string_buffer(PATH_MAX)
        with self._lock:
            status = _lib.lib.usock_socket_path(self._live_handle(), raw, buf, PATH_MAX)
            if status != _lib.OK:
                raise _error(status)
        return os.fsdecode(buf.value)

    def bind(
        self,
        name: Optional[Union[str, bytes]] = None,
        *,
        type: int = _socket.SOCK_STREAM,
        backlog: Optional[int] = None,
    ) -> _socket.socket:
        """A socket of ``type`` bound at ``<dir>/<name>`` (``None``: ``"sock"``), with mode
        0600, listening with ``backlog`` (``None``: ``SOMAXCONN``) unless it is a datagram
        socket. The caller owns the socket; cleanup removes its file.

        Raises :class:`NameInUseError` when the name is taken (the file there is left alone)
        and :class:`PathTooLongError` when the path would not fit."""
        return self._bind(_name_arg(name), _type_arg(type), _backlog_arg(backlog))

    def _bind(self, raw_name: Optional[bytes], ty: int, backlog: int) -> _socket.socket:
        fd = ctypes.c_int(-1)
        with self._lock:
            status = _lib.lib.usock_bind(self._live_handle(), raw_name, ty, backlog, ctypes.byref(fd))
            if status != _lib.OK:
                raise _error(status)
        # Family and type given, so that socket() need not ask the kernel.
        return _socket.socket(_socket.AF_UNIX, ty, 0, fileno=fd.value)

    def adopt(self, name: Optional[Union[str, bytes]] = None) -> None:
        """Takes a socket you bound yourself at :meth:`socket_path` into usock's care: checks
        it is a socket you own, sets its mode to 0600 whatever the umask, and has cleanup remove
        exactly it. Call it after binding and before listening (with asyncio, after
        ``start_unix_server(path=...)`` returns, before clients are told the path).

        Raises :class:`InvalidArgumentError` when the file is not a socket,
        :class:`UnsafeDirectoryError` when another user owns it, :class:`Error` (ENOENT) when
        nothing is there."""
        raw = _name_arg(name)
        with self._lock:
            status = _lib.lib.usock_adopt(self._live_handle(), raw)
            if status != _lib.OK:
                raise _error(status)

    def cleanup(self) -> None:
        """Removes the sockets and the directory. A second call does nothing.

        Raises :class:`ChangedError` when something usock did not make was found and left in
        place (with the directory), naming it."""
        with self._lock:
            status = _release(id(self))
        if status is not None and status != _lib.OK:
            raise _error(status)

    def __del__(self) -> None:
        # Garbage collection of a directory never cleaned up: clean it, ignoring errors.
        # (getattr: __init__ may have failed before registering.)
        if getattr(self, "_handle", None) is not None and _live is not None:
            _release(id(self))

    def __enter__(self) -> "PrivateDir":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "cleaned up" if self.closed else "live"
        return f"<usock.PrivateDir {self._path!r} ({state})>"


def private_dir(parent: Optional[StrPath] = None) -> PrivateDir:
    """Makes a :class:`PrivateDir`; use it as a context manager."""
    return PrivateDir(parent)


# The listener -----------------------------------------------------------------------------


class Listener:
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
    path = d._path + "/" + (_decode(raw_name) if raw_name is not None else "sock")
    return Listener(d, sock, path)
