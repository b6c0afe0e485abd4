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
import errno as _errno
import gc
import os
import select
import socket as _socket
import sys
import threading
import time
import atexit
import weakref

from . import _lib

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing at run time costs more than usock itself
    from typing import Callable, List, Optional, Tuple, Union

    StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

__all__ = [
    "listen",
    "private_dir",
    "PrivateDir",
    "Listener",
    "connect",
    "listen_at",
    "BoundPath",
    "sweep",
    "SweepReport",
    "take_over",
    "Peer",
    "peer",
    "AcceptPolicy",
    "shared_dir",
    "SELF_OR_ROOT",
    "OVERFLOW_GID",
    "OVERFLOW_UID",
    "Error",
    "InvalidArgumentError",
    "PathTooLongError",
    "UnsafeDirectoryError",
    "UnsafeError",
    "WrongServerError",
    "NoDirectoryError",
    "NameInUseError",
    "ExhaustedError",
    "ChangedError",
    "PATH_MAX",
    "version",
    "__version__",
]

PATH_MAX = _lib.PATH_MAX

#: The package's version, which is the library's (they are built together).
__version__: str = _lib.lib.usock_version().decode()

_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()


def _decode(raw: bytes) -> str:
    """``os.fsdecode`` for bytes, without its type dispatch."""
    return raw.decode(_FS_ENCODING, _FS_ERRORS)


def version() -> str:
    """The loaded libusock's version, "MAJOR.MINOR.PATCH"."""
    return _lib.lib.usock_version().decode()


# Errors -----------------------------------------------------------------------------------


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
        base = next(c for c in type(self).__mro__ if c.__module__ == __name__ and c.__name__
                    in __all__)
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
    ``EADDRINUSE``, as ``socket.bind()`` gives."""

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
                "__module__": __name__, "__doc__": base.__doc__, "__qualname__": name})
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


class _Handle:
    """A libusock directory handle and the lock that every call on it holds, release included.

    ``cell`` holds the C pointer (NULL before creation and after release). ctypes lets go of
    the GIL during each C call, so without the lock an exit hook could free the handle while
    another thread is still inside ``usock_bind`` with it (libusock also waits for calls in
    flight, but a call that began after the free would read freed memory).
    """

    __slots__ = ("cell", "lock", "free")

    def __init__(self, free: "ctypes._CFuncPtr") -> None:
        self.cell = ctypes.c_void_p()
        self.lock = threading.Lock()
        self.free = free  # usock_cleanup or usock_unbind_path

    def live(self, path: str) -> ctypes.c_void_p:
        """The cell, for a call made under the lock; ValueError once released."""
        if not self.cell.value:
            raise ValueError(f"the private directory {path} was already cleaned up")
        return self.cell


def _release(handle: _Handle) -> int:
    """Cleans up and frees the handle (``usock_cleanup`` or ``usock_unbind_path``), once, and
    empties its cell.

    The cell is emptied before ``usock_cleanup`` runs, and CPython runs signal handlers only at
    a call's end, a loop's back edge or a function's start: an exception from a handler (Ctrl-C's
    KeyboardInterrupt) can come before this function does anything, or after the handle is
    freed, never in between. Returns the status, ``USOCK_OK`` when there was nothing to do."""
    free = handle.free
    cell = handle.cell
    pointer = cell.value
    cell.value = None
    return free(pointer) if pointer else _lib.OK


class _Owner(weakref.ref):
    """A weak reference to a :class:`PrivateDir` (or :class:`BoundPath`) that carries its
    handle: when the object is garbage, the handle is released (see :func:`_collected`)."""

    __slots__ = ("handle",)


# Every handle not yet released, by id, with a weak reference to the object it belongs to.
# This table owns the handles: a release that an exception cut short (a finalizer that a signal
# handler interrupted) leaves its entry here, and the next full garbage collection, or the exit
# hook, finishes it.
_owners: "dict[int, _Owner]" = {}


def _collected(owner: _Owner) -> None:
    """The directory object became garbage: release its handle (no other thread can be using
    it: nothing refers to it any more)."""
    _release(owner.handle)
    _owners.pop(id(owner.handle), None)


def _finish_orphans(phase: str, info: "dict[str, int]") -> None:
    """After a full garbage collection: release handles whose owner is gone but whose release
    was cut short, and forget released ones."""
    if phase != "stop" or info.get("generation") != 2:
        return
    for key, owner in list(_owners.items()):
        if owner() is None:
            _release(owner.handle)
        if not owner.handle.cell.value:
            _owners.pop(key, None)


gc.callbacks.append(_finish_orphans)


@atexit.register
def _release_at_exit() -> None:
    """At interpreter exit, clean up what the program left, under each handle's lock (a daemon
    thread may still be inside a call). In a forked child the library removes nothing."""
    for owner in list(_owners.values()):
        with owner.handle.lock:
            _release(owner.handle)
    _owners.clear()


def _new_locks_in_child() -> None:
    """A lock that a parent's thread held at fork stays locked in the child forever."""
    for owner in list(_owners.values()):
        owner.handle.lock = threading.Lock()


os.register_at_fork(after_in_child=_new_locks_in_child)


def _new_handle(obj: object, free: "ctypes._CFuncPtr") -> _Handle:
    """A handle for ``obj``, owned by the table before any C call can fill it: the table and the
    weak reference release whatever the library writes into the cell."""
    handle = _Handle(free)
    obj._handle = handle
    owner = _Owner(obj, _collected)
    owner.handle = handle
    _owners[id(handle)] = owner
    return handle


class _SoleOwner:
    """Base of the classes whose object is the one owner of what it holds (a directory, a
    listening socket and its path, a library handle): a copy would be a second owner that could
    bind in, clean up or free what the first still uses. Copying and pickling are refused, as
    ``socket.socket`` refuses them."""

    __slots__ = ()

    def __copy__(self) -> "_SoleOwner":
        raise TypeError(f"cannot copy a usock.{type(self).__name__} object: it alone owns what "
                        "it made; share the object itself")

    def __deepcopy__(self, memo: object) -> "_SoleOwner":
        return self.__copy__()

    def __reduce_ex__(self, protocol: object) -> object:
        hint = ("; another process takes a directory over with hand_off and take_over"
                if isinstance(self, PrivateDir) else "")
        raise TypeError(f"cannot pickle a usock.{type(self).__name__} object: it owns a live "
                        f"resource of this process{hint}")


class _Socket(_socket.socket):
    """A socket bound by usock: a plain :class:`socket.socket` that keeps its
    :class:`PrivateDir` alive, so that the directory is never cleaned up by garbage collection
    while the socket is still open (for example when only ``asyncio`` holds the socket)."""

    __slots__ = ("_usock_dir",)


class PrivateDir(_SoleOwner):
    """A private directory for Unix domain sockets, made when the object is created.

    ``parent`` is the directory to create it in, or ``None`` for the automatic location
    (``$XDG_RUNTIME_DIR``, ``$TMPDIR``, ``/tmp``, ``/var/tmp``: the first that is safe and
    leaves room for a socket path). The directory has an unpredictable name and mode 0700.
    ``long_paths=True`` (Linux) allows socket paths longer than ``sun_path`` under a deep
    parent: :meth:`bind` binds them through ``/proc/thread-self/fd``, :func:`connect` reaches them,
    and :meth:`socket_address` gives the address other code in this process can bind to.

    Cleanup removes the sockets in it and the directory itself. It runs once: at
    :meth:`cleanup`, at the end of a ``with`` block, when the object is garbage-collected, or
    when the interpreter exits, whichever comes first. SIGTERM's default action ends Python
    without any of these: a server that a service manager stops makes SIGTERM call
    ``sys.exit()`` (``signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))``). A socket from :meth:`bind` keeps its
    directory alive, so garbage collection never removes a directory whose socket is still in
    use. In a child process made by ``os.fork()`` cleanup removes nothing (the parent still owns
    the directory).

    Raises :class:`UnsafeDirectoryError`, :class:`PathTooLongError`,
    :class:`NoDirectoryError` or :class:`Error`; nothing is left on disk then.
    """

    def __init__(self, parent: Optional[StrPath] = None, *, long_paths: bool = False):
        raw_parent = _parent_arg(parent)
        flags = _lib.LONG_PATHS if long_paths else 0
        self._open(lambda cell: _lib.lib.usock_create_dir(raw_parent, flags, cell))

    def _open(self, make: "Callable[[object], int]") -> None:
        handle = _new_handle(self, _lib.lib.usock_cleanup)
        status = make(ctypes.byref(handle.cell))
        if status != _lib.OK:
            raise _error(status)
        self._path = _decode(_lib.lib.usock_dir_path(handle.cell))

    @classmethod
    def take_over(cls, path: StrPath, lock_fd: Optional[int] = None) -> "PrivateDir":
        """A :class:`PrivateDir` for an existing usock directory at ``path``, handed over by
        another process (see :meth:`hand_off`): checked as at creation (a usock name, owned by
        you, mode 0700, in a safe parent), and cleaned up like one made here. ``lock_fd``: the
        descriptor :meth:`hand_off` gave, when this process inherited it; the object takes it
        over (it becomes close-on-exec) and closes it at cleanup.

        Raises :class:`UnsafeDirectoryError` when a check fails."""
        raw = _parent_arg(path)
        if lock_fd is not None and (isinstance(lock_fd, bool) or not isinstance(lock_fd, int)):
            raise TypeError(f"lock_fd must be an int or None, not {type(lock_fd).__name__}")
        fd = -1 if lock_fd is None else lock_fd
        self = cls.__new__(cls)
        self._open(lambda cell: _lib.lib.usock_take_over(raw, fd, 0, cell))
        return self

    @property
    def path(self) -> str:
        """The directory's absolute path, with no symbolic links in it."""
        return self._path

    @property
    def closed(self) -> bool:
        """True once the directory has been cleaned up."""
        return not self._handle.cell.value

    def socket_path(self, name: Optional[Union[str, bytes]] = None) -> str:
        """The path of socket ``name`` (``None``: ``"sock"``) in the directory, for code that
        binds by itself (asyncio, a web server's ``--uds``); cleanup removes that socket too.

        Raises :class:`PathTooLongError` when the path would not fit ``sun_path``."""
        return self._ask_path(_lib.lib.usock_socket_path, name)

    def socket_address(self, name: Optional[Union[str, bytes]] = None) -> str:
        """Where code in *this process* binds or connects to socket ``name``: the path from
        :meth:`socket_path` when it fits ``sun_path``, else (``long_paths=True``, Linux) the same
        socket through this directory's descriptor, ``/proc/thread-self/fd/N/name`` (use that in
        the calling thread, or one that shares its descriptor table). Never hand the latter to
        another process: there it names something else."""
        return self._ask_path(_lib.lib.usock_socket_address, name)

    def _ask_path(self, call: "ctypes._CFuncPtr", name: Optional[Union[str, bytes]]) -> str:
        raw = _name_arg(name)
        size = 4096  # a long path (long_paths=True) may exceed PATH_MAX
        buf = ctypes.create_string_buffer(size)
        handle = self._handle
        with handle.lock:
            cell = handle.live(self._path)
            status = call(cell, raw, buf, size)
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
        socket. The caller owns the socket; cleanup removes its file. The socket keeps this
        directory alive until it is closed and dropped.

        Raises :class:`NameInUseError` when the name is taken (the file there is left alone)
        and :class:`PathTooLongError` when the path would not fit."""
        return self._bind(_name_arg(name), _type_arg(type), _backlog_arg(backlog))

    def _bind(self, raw_name: Optional[bytes], ty: int, backlog: int) -> _socket.socket:
        # The socket object owns its descriptor from the start; usock binds that descriptor,
        # so none is ever handed over (and lost if an exception arrives in between).
        sock = _Socket(_socket.AF_UNIX, ty)
        sock._usock_dir = self
        try:
            handle = self._handle
            with handle.lock:
                cell = handle.live(self._path)
                status = _lib.lib.usock_bind_fd(cell, raw_name, sock.fileno(), backlog)
                if status != _lib.OK:
                    raise _error(status)
        except BaseException:
            sock.close()
            raise
        return sock

    def adopt(self, name: Optional[Union[str, bytes]] = None) -> None:
        """Takes a socket you bound yourself at :meth:`socket_path` into usock's care: checks
        it is a socket you own, sets its mode to 0600 whatever the umask, and has cleanup remove
        exactly it. Call it after binding and before listening (with asyncio, after
        ``start_unix_server(path=...)`` returns, before clients are told the path).

        Raises :class:`InvalidArgumentError` when the file is not a socket,
        :class:`UnsafeDirectoryError` when another user owns it, :class:`Error` (ENOENT) when
        nothing is there."""
        raw = _name_arg(name)
        handle = self._handle
        with handle.lock:
            cell = handle.live(self._path)
            status = _lib.lib.usock_adopt(cell, raw)
            if status != _lib.OK:
                raise _error(status)

    def hand_off(self) -> int:
        """Ends this object without removing anything and returns a descriptor of the
        directory, inheritable, for a program you start with ``exec`` (``subprocess`` with
        ``pass_fds=(fd,)``): pass it the number and :attr:`path` (say in ``USOCK_LOCK_FD`` and
        ``USOCK_DIR``), and it calls :meth:`take_over`. While any process holds the descriptor,
        :func:`sweep` leaves the directory alone. Close it here once it is passed on."""
        handle = self._handle
        fd = ctypes.c_int(-1)
        with handle.lock:
            cell = handle.live(self._path)
            pointer = cell.value
            cell.value = None  # freed by a successful call; restored when it fails
            status = _lib.lib.usock_hand_off(pointer, ctypes.byref(fd))
            if status != _lib.OK:
                cell.value = pointer
                raise _error(status)
        _owners.pop(id(handle), None)
        return fd.value

    def cleanup(self) -> None:
        """Removes the sockets and the directory. A second call does nothing.

        Raises :class:`ChangedError` when something usock did not make was found and left in
        place (with the directory), naming it."""
        handle = self._handle
        with handle.lock:
            status = _release(handle)
            error = _error(status) if status != _lib.OK else None
        _owners.pop(id(handle), None)
        if error is not None:
            raise error

    def __enter__(self) -> "PrivateDir":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        state = "cleaned up" if self.closed else "live"
        return f"<usock.PrivateDir {self._path!r} ({state})>"


def private_dir(parent: Optional[StrPath] = None, *, long_paths: bool = False) -> PrivateDir:
    """Makes a :class:`PrivateDir`; use it as a context manager."""
    return PrivateDir(parent, long_paths=long_paths)


# The listener -----------------------------------------------------------------------------


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
    path = d._path + "/" + (_decode(raw_name) if raw_name is not None else "sock")
    return Listener(d, sock, path)


# Well-known paths, connecting, the sweep -----------------------------------------------------


def _path_arg(path: StrPath, what: str = "path") -> bytes:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a path, not {type(path).__name__}")
    raw = os.fsencode(path)
    if not raw:
        raise ValueError(f"{what} must not be empty")
    if b"\0" in raw:
        raise ValueError(f"{what} must not contain a NUL byte")
    return raw


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
    A path that does not fit ``sun_path`` is :class:`PathTooLongError`."""
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
        handle = self._handle
        with handle.lock:
            status = _release(handle)
            error = _error(status) if status != _lib.OK else None
        _owners.pop(id(handle), None)
        if error is not None:
            raise error

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


class SweepReport:
    """What :func:`sweep` did: ``removed``, the directories removed, and ``kept``, pairs of
    (directory, why it was kept)."""

    __slots__ = ("removed", "kept")

    def __init__(self) -> None:
        self.removed: "List[str]" = []
        self.kept: "List[Tuple[str, str]]" = []

    def __repr__(self) -> str:
        return f"<usock.SweepReport removed={self.removed!r} kept={self.kept!r}>"


def sweep(parent: Optional[StrPath] = None, *, grace: float = 60.0) -> SweepReport:
    """Removes private directories left by processes that died, in ``parent`` (``None``: each
    automatic location): only usock directories of yours that no live process holds, unchanged
    for ``grace`` seconds, whose sockets all refuse connections. Returns a :class:`SweepReport`.
    A live server sees a connection that closes at once."""
    raw = _parent_arg(parent)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)):
        raise TypeError(f"grace must be a number of seconds, not {type(grace).__name__}")
    if grace < 0:
        raise ValueError(f"grace must not be negative, got {grace}")
    report = SweepReport()

    def seen(_ctx: object, path: bytes, removed: int, reason: Optional[bytes]) -> None:
        if removed:
            report.removed.append(os.fsdecode(path))
        else:
            report.kept.append((os.fsdecode(path), os.fsdecode(reason or b"")))

    callback = _lib.SWEEP_FN(seen)
    status = _lib.lib.usock_sweep(raw, int(grace), 0, callback, None, None)
    if status != _lib.OK:
        raise _error(status)
    return report


def take_over(path: StrPath, lock_fd: Optional[int] = None) -> PrivateDir:
    """:meth:`PrivateDir.take_over`."""
    return PrivateDir.take_over(path, lock_fd)


# Who may connect -------------------------------------------------------------------------

def _overflow_ids() -> "Tuple[int, int]":
    uid, gid = ctypes.c_uint32(), ctypes.c_uint32()
    _lib.lib.usock_overflow_ids(ctypes.byref(uid), ctypes.byref(gid))
    return uid.value, gid.value


#: What the kernel shows for a user it cannot map into this user namespace (Linux's
#: ``/proc/sys/kernel/overflowuid``, as the library reads it; 65534 where the system does not
#: say), and the same for a group. No policy admits the overflow uid or counts the overflow
#: gid as a group, and ``connect(..., server=...)`` never accepts a server running as it.
OVERFLOW_UID, OVERFLOW_GID = _overflow_ids()


class Peer:
    """Who is at the other end of a connected socket: ``uid``, ``gid`` and ``pid`` (``None``
    where the system does not say). Unpacks as ``uid, gid, pid = peer``."""

    __slots__ = ("uid", "gid", "pid")

    def __init__(self, uid: int, gid: int, pid: Optional[int]):
        self.uid, self.gid, self.pid = uid, gid, pid

    @classmethod
    def _from_c(cls, c: "_lib.PEER") -> "Peer":
        return cls(c.uid, c.gid, c.pid if c.pid >= 0 else None)

    def __iter__(self):
        return iter((self.uid, self.gid, self.pid))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Peer) and tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return f"Peer(uid={self.uid}, gid={self.gid}, pid={self.pid})"


def _fd_arg(sock: "Union[_socket.socket, int]") -> int:
    fd = sock if isinstance(sock, int) and not isinstance(sock, bool) else sock.fileno()
    if fd < 0:
        raise ValueError("the socket is closed")
    return fd


def peer(sock: "Union[_socket.socket, int]") -> Peer:
    """The peer of a connected Unix domain socket (or descriptor): for a server's connection
    the client, for a client the server. Raises :class:`Error` where the system cannot say
    (a datagram socket): it never guesses."""
    out = _lib.PEER()
    status = _lib.lib.usock_peer_of(_fd_arg(sock), ctypes.byref(out))
    if status != _lib.OK:
        raise _error(status)
    return Peer._from_c(out)


class AcceptPolicy(_SoleOwner):
    """Who may connect: by default only your own user; ``group=gid`` admits members of the group
    (supplementary groups count; systems that cannot tell them, OpenBSD and NetBSD, refuse to make
    such a policy); ``uids=[...]`` admits those uids. No policy admits :data:`OVERFLOW_UID` or
    counts :data:`OVERFLOW_GID` as a group: a server running as ``nobody`` (or in a user
    namespace that does not map its user) admits no one by default.

    :meth:`accept` closes every connection the policy refuses before you see it; :meth:`check`
    screens one accepted elsewhere; :meth:`guard` wraps an ``asyncio.start_unix_server``
    callback. :attr:`refused` is a pair: how many connections were refused, and the uid of the
    last refused peer (``None`` until one with a known uid was refused)."""

    def __init__(self, *, group: Optional[int] = None, uids: "Optional[List[int]]" = None):
        if group is not None and uids is not None:
            raise ValueError("give group or uids, not both")
        if group is not None:
            kind, ids = _lib.ALLOW_GROUP, [group]
        elif uids is not None:
            kind, ids = _lib.ALLOW_UIDS, list(uids)
        else:
            kind, ids = _lib.ALLOW_SAME_USER, []
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 2**32:
                raise ValueError(f"ids must be uids or gids, not {i!r}")
        array = (ctypes.c_uint32 * len(ids))(*ids)
        cell = ctypes.c_void_p()
        status = _lib.lib.usock_policy_new(kind, array, len(ids), ctypes.byref(cell))
        if status != _lib.OK:
            raise _error(status)
        self._cell = cell
        self._finalizer = weakref.finalize(self, _lib.lib.usock_policy_free, cell.value)

    def accept(self, sock: "Union[_socket.socket, Listener, BoundPath]"
               ) -> "Tuple[_socket.socket, Peer]":
        """Like ``sock.accept()``, for a connection the policy admits: returns the new socket
        and its :class:`Peer`. Every other connection is closed before you see it, and counted
        (:attr:`refused`).

        It waits as ``sock.accept()`` does. Blocking (no timeout): until a connection is
        admitted. With ``sock.settimeout(t)``: raises :class:`TimeoutError`
        (``socket.timeout``) once ``t`` seconds have passed in all, refused connections
        included. Non-blocking: raises :class:`BlockingIOError` when no admissible connection
        waits. Signal handlers run while it waits, and one that raises (Ctrl-C's
        ``KeyboardInterrupt``) ends the wait with its exception. ``sock`` may also be a
        :class:`Listener` or :class:`BoundPath`."""
        if isinstance(sock, (Listener, BoundPath)):
            sock = sock.socket
        if not isinstance(sock, _socket.socket):
            raise TypeError(f"accept() needs a listening socket.socket, not {type(sock).__name__}")
        _fd_arg(sock)  # a closed socket is a ValueError, as before
        # Python's accept() does the waiting: it honours the socket's timeout, runs signal
        # handlers and retries after EINTR (PEP 475), which a wait inside one C call cannot.
        # Between refused connections, poll() waits (with the same care) for what is left of
        # the timeout: the deadline is the whole call's (only another thread taking that
        # connection first can make the next accept() wait its own full timeout).
        timeout = sock.gettimeout()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            conn, _ = sock.accept()
            who = self._screen(conn)
            if who is not None:
                return conn, who
            if timeout and not _readable(sock.fileno(), deadline):
                raise _socket.timeout("timed out")

    def _screen(self, conn: _socket.socket) -> Optional[Peer]:
        """The peer of a connection the policy admits; a refused one is closed (and counted)."""
        who = None
        try:
            who = self.check(conn)
        finally:
            if who is None:
                conn.close()
        return who

    def check(self, sock: "Union[_socket.socket, int]") -> Optional[Peer]:
        """Screens a connection accepted elsewhere: its :class:`Peer` when admitted, ``None``
        when refused (counted; close it without reading)."""
        out_peer = _lib.PEER()
        status = _lib.lib.usock_policy_check(self._cell, _fd_arg(sock), ctypes.byref(out_peer))
        if status == _lib.OK:
            return Peer._from_c(out_peer)
        if status == _lib.ERR_UNSAFE:
            return None
        raise _error(status)

    def guard(self, callback: "Callable[..., object]") -> "Callable[..., object]":
        """Wraps an ``asyncio.start_unix_server`` connection callback: a connection the policy
        refuses is closed before ``callback`` sees it."""
        import inspect

        async def guarded(reader, writer):
            sock = writer.get_extra_info("socket")
            if sock is None or self.check(sock.fileno()) is None:
                writer.close()
                return
            result = callback(reader, writer)
            if inspect.isawaitable(result):
                await result

        return guarded

    @property
    def refused(self) -> "Tuple[int, Optional[int]]":
        """A pair, ``(count, last_uid)``: how many connections this policy refused so far (in
        :meth:`accept`, :meth:`check` and :meth:`guard`), and the uid of the most recent refused
        peer whose uid could be read, ``None`` until there is one."""
        count, last = ctypes.c_uint64(), ctypes.c_int64()
        _lib.lib.usock_policy_refused(self._cell, ctypes.byref(count), ctypes.byref(last))
        return count.value, (last.value if last.value >= 0 else None)


def _readable(fd: int, deadline: float) -> bool:
    """Waits until ``fd`` is readable (a connection waits on a listening socket): False when
    ``deadline`` (``time.monotonic()``) passes first."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return False
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(remaining * 1000))


def shared_dir(gid: int, parent: Optional[StrPath] = None) -> PrivateDir:
    """A :class:`PrivateDir` shared with group ``gid``: mode 0710 (members reach sockets whose
    names they know, but cannot list it), sockets given to the group with mode 0660 (so a
    member by a supplementary group connects). Pair it with
    ``AcceptPolicy(group=gid)``. Raises :class:`InvalidArgumentError` when you are not a
    member of the group."""
    if isinstance(gid, bool) or not isinstance(gid, int) or not 0 <= gid < 2**32:
        raise ValueError(f"gid must be a group id, not {gid!r}")
    raw_parent = _parent_arg(parent)
    d = PrivateDir.__new__(PrivateDir)
    d._open(lambda cell: _lib.lib.usock_create_shared_dir(raw_parent, gid, 0, cell))
    return d
