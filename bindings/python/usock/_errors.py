"""usock's exceptions: an ``OSError`` subclass per status of the library, combined with the
built-in class of the errno, and :func:`_error`, which builds the one for a failed call."""

from __future__ import annotations

import errno as _errno
import os

from . import _lib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


class Error(OSError):
    """A failure reported by libusock, following OSError's conventions.

    ``errno`` is the operating system's error number when a system call failed (``None``
    otherwise), and the error is then also an instance of the matching built-in class: a missing
    parent is a ``FileNotFoundError``, a permission the kernel refused a ``PermissionError``,
    and so on. ``strerror`` is the short reason, ``filename`` the path concerned (the parent
    asked for, the directory or the socket), ``status`` the library's status code
    (``USOCK_ERR_*``), and ``str()`` the library's full message, which names the path and what
    was found there.
    """

    status: int = 0
    #: The errno the standard library gives for the same failure, where libusock sets none.
    _default_errno: Optional[int] = None

    def __init__(self, status: int, errno: Optional[int], message: str,
                 filename: Optional[str] = None):
        if errno:
            super().__init__(errno, os.strerror(errno), filename)
        else:
            super().__init__(message)
            self.strerror = _lib.lib.usock_strerror(status).decode()
            self.filename = filename
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # pickling: rebuild through _error's class choice
        base = next(c for c in type(self).__mro__ if c in _OWN)
        return (_rebuild, (self.status, self.errno, self.message, self.filename, base))


class InvalidArgumentError(Error):
    """The library refused an argument (``USOCK_ERR_INVALID``)."""


class PathTooLongError(Error):
    """The socket path would not fit in ``sockaddr_un.sun_path`` (``USOCK_ERR_TOO_LONG``)."""


class UnsafeError(Error):
    """Something failed a safety check (``USOCK_ERR_UNSAFE``): the base of
    :class:`UnsafeDirectoryError` and :class:`WrongServerError`."""


class UnsafeDirectoryError(UnsafeError):
    """A directory or file failed a safety check: owner, mode, symlink, sticky bit
    (``USOCK_ERR_UNSAFE``). ``errno`` is ``None``: the kernel allowed it, usock refused."""


class WrongServerError(UnsafeError, PermissionError):
    """:func:`connect` with ``server=`` reached a server that runs as another user (or one
    whose user cannot be known): the connection was closed before anything was sent. A
    :class:`PermissionError` with ``errno`` ``EACCES``; the message names the uid asked for
    and the server's (``USOCK_ERR_UNSAFE`` from ``usock_connect``)."""

    _default_errno = _errno.EACCES


class NoDirectoryError(Error):
    """Automatic choice found no usable parent directory (``USOCK_ERR_NO_DIR``); the message
    lists each candidate and why it was skipped."""


class NameInUseError(Error):
    """That socket name is already taken (``USOCK_ERR_IN_USE``); ``errno`` is
    ``EADDRINUSE``, as ``socket.bind()`` gives. When another process held the path's lock (or a
    sweep the directory) past the wait, ``errno`` is ``EAGAIN`` instead, so the error is also a
    :class:`BlockingIOError`: try again."""

    _default_errno = _errno.EADDRINUSE


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


# The classes above, the ones a pickled error is rebuilt from.
_OWN = frozenset((Error, UnsafeError, WrongServerError, *_ERRORS.values()))

# What the classes made below give as their module: the package, where users find them.
_PACKAGE = __name__.rpartition(".")[0]

# usock's class for a status, combined with the built-in OSError subclass of its errno.
_CLASSES: "dict[tuple[type, int], type]" = {}


def _error_class(base: type, errno: Optional[int]) -> type:
    """``base`` combined with the built-in class of ``errno`` (``FileNotFoundError`` for
    ``ENOENT``, ...). The combination of the generic :class:`Error` is named after the built-in
    class, the one a user catches and a traceback shows (``usock.ConnectionRefusedError``);
    usock's own classes keep their names."""
    if not errno:
        return base
    key = (base, errno)
    cls = _CLASSES.get(key)
    if cls is None:
        builtin = type(OSError(errno, ""))
        if builtin is OSError or issubclass(base, builtin):
            cls = base
        else:
            name = builtin.__name__ if base is Error else base.__name__
            cls = type(name, (base, builtin), {
                "__module__": _PACKAGE, "__doc__": base.__doc__, "__qualname__": name})
        _CLASSES[key] = cls
    return cls


def _rebuild(status: int, errno: Optional[int], message: str, filename: Optional[str],
             base: Optional[type] = None) -> Error:
    if base is None:
        base = _ERRORS.get(status, Error)
    return _error_class(base, errno)(status, errno, message, filename)


def _error(status: int, base: Optional[type] = None) -> Error:
    """The exception for a failed call, read from this thread's last error; ``base``: the class
    when the call gives the status a meaning of its own."""
    lib = _lib.lib
    message = os.fsdecode(lib.usock_last_error()) or lib.usock_strerror(status).decode()
    if base is None:
        base = _ERRORS.get(status, Error)
    errno = lib.usock_last_errno() or base._default_errno
    path = lib.usock_last_error_path()
    return _rebuild(status, errno, message, os.fsdecode(path) if path else None, base)

