"""Who is at the other end, and who may connect: :class:`Peer` and :func:`peer`,
:class:`AcceptPolicy`, and the overflow ids no policy admits."""

from __future__ import annotations

import ctypes
import select
import socket as _socket
import time
import weakref

from . import _lib
from ._args import _fd_arg
from ._errors import _error
from ._handle import _SoleOwner
from ._listener import Listener
from ._paths import BoundPath

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, List, Optional, Tuple, Union


def _overflow_ids() -> "Tuple[int, int]":
    uid, gid = ctypes.c_uint32(), ctypes.c_uint32()
    _lib.lib.usock_overflow_ids(ctypes.byref(uid), ctypes.byref(gid))
    return uid.value, gid.value


#: What the kernel shows for a user it cannot map into this user namespace (Linux's
#: ``/proc/sys/kernel/overflowuid``, as the library reads it; the header's ``OVERFLOW_UID``
#: where the system does not say), and the same for a group. No policy admits the overflow
#: uid or counts the overflow gid as a group, and ``connect(..., server=...)`` never accepts a
#: server running as it.
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

