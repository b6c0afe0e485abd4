"""Private directories: :class:`PrivateDir` and the functions that make one
(:func:`private_dir`, :func:`take_over`, :func:`shared_dir`)."""

from __future__ import annotations

import ctypes
import os
import socket as _socket

from . import _lib
from ._args import _backlog_arg, _decode, _name_arg, _parent_arg, _type_arg
from ._errors import _error
from ._handle import _finish, _new_handle, _owners, _SoleOwner, _Socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Optional, Union

    from ._args import StrPath


class PrivateDir(_SoleOwner):
    """A private directory for Unix domain sockets, made when the object is created.

    ``parent`` is the directory to create it in, or ``None`` for the automatic location
    (``$XDG_RUNTIME_DIR``, ``$TMPDIR``, ``/tmp``, ``/var/tmp``, on macOS the per-user temporary
    directory first: the first that is safe and leaves room for a socket path). The directory has an unpredictable name and mode 0700.
    ``long_paths=True`` (Linux and FreeBSD) allows socket paths longer than ``sun_path`` under a deep
    parent: :meth:`bind` binds them through ``/proc/thread-self/fd``, :func:`connect` reaches them,
    and :meth:`socket_address` gives the address other code in this process can bind to.

    Cleanup removes the sockets in it and the directory itself. It runs once: at
    :meth:`cleanup`, at the end of a ``with`` block, when the object is garbage-collected, or
    when the interpreter exits, whichever comes first. SIGTERM's default action ends Python
    without any of these: a server that a service manager stops makes SIGTERM call
    ``sys.exit()`` (``signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))``). A socket from :meth:`bind` keeps its
    directory alive, so garbage collection never removes a directory whose socket is still in
    use. A directory that handed out a path (:meth:`socket_path`, :meth:`socket_address`) is not
    removed when the object is collected: later full collections look at it (each look is a
    connection to each socket in it that closes at once, as the sweep's) and remove it once no
    socket in it has answered for a second; one with nothing bound in it (yet, or any more)
    stays until exit, holding two descriptors (other code may still bind there; removing it
    would let another user make the same name). Call :meth:`cleanup` (or use ``with``) when
    done, and ``listen()`` right after ``bind()`` at such a path: a socket bound but not
    listening for over a second refuses connections, as a dead one does. In a child process made
    by ``os.fork()`` cleanup removes nothing (the parent still owns the directory).

    Raises :class:`UnsafeDirectoryError`, :class:`PathTooLongError`,
    :class:`NoDirectoryError` or :class:`Error`; nothing is left on disk then.
    """

    _pickle_hint = "; another process takes a directory over with hand_off and take_over"

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
        you, mode 0700, or 0710 when shared with a group, in a safe parent), and cleaned up like
        one made here. ``lock_fd``: the descriptor :meth:`hand_off` gave, when this process
        inherited it; on success the object keeps a close-on-exec duplicate of it (holding the
        same lock) and ``lock_fd`` itself is closed; on failure it stays open and yours.

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
            handle.handed_out = True
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
        _finish(self._handle)

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


def take_over(path: StrPath, lock_fd: Optional[int] = None) -> PrivateDir:
    """:meth:`PrivateDir.take_over`."""
    return PrivateDir.take_over(path, lock_fd)


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
