"""The handle base that every owning object shares: a library handle behind a lock, the table
that releases it once (explicitly, at garbage collection, after a cut-short release, at exit,
never twice and never in a forked child's stead), and :class:`_SoleOwner`, which refuses copies
and pickling."""

from __future__ import annotations

import atexit
import ctypes
import gc
import os
import socket as _socket
import threading
import time
import weakref

from . import _lib
from ._errors import _error


class _Handle:
    """A libusock directory handle and the lock that every call on it holds, release included.

    ``cell`` holds the C pointer (NULL before creation and after release). ctypes lets go of
    the GIL during each C call, so without the lock an exit hook could free the handle while
    another thread is still inside ``usock_bind`` with it (libusock also waits for calls in
    flight, but a call that began after the free would read freed memory).
    """

    __slots__ = ("cell", "lock", "free", "handed_out", "last_look")

    def __init__(self, free: "ctypes._CFuncPtr") -> None:
        self.cell = ctypes.c_void_p()
        self.lock = threading.Lock()
        self.free = free  # usock_cleanup or usock_unbind_path
        # A directory that gave a socket path to other code (socket_path, socket_address) is
        # not removed when its object is collected: see _collected.
        self.handed_out = False
        self.last_look: "tuple[int, int, int, float] | None" = None

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
    it: nothing refers to it any more). One that handed out a socket path stays in the table
    instead: other code may serve at that path, or bind there later, and removing the directory
    would let another user make the same name in a shared parent and receive that server (or
    its clients). Later full collections look at it (:func:`_dead_now`); exit removes it."""
    if owner.handle.handed_out:
        return
    _release(owner.handle)
    _owners.pop(id(owner.handle), None)


def _dead_now(handle: _Handle) -> bool:
    """Whether an orphaned directory that handed out a path may go now: none of its sockets
    answers (``usock_dir_idle``, which never blocks: a full backlog counts as an answer, and a
    directory where nothing is bound stays), at looks at least a second apart between which the
    directory did not change (inode, mtime, ctime): the first such look is kept, however often
    collections come. One look is not proof: a socket bound but not yet listening refuses
    connections as a closed one does (a bind changes the directory and starts the second
    again, but a ``listen()`` more than a second after its ``bind()`` can come too late)."""
    if not handle.lock.acquire(blocking=False):
        return False
    try:
        if not handle.cell.value:
            return True
        if _lib.lib.usock_dir_idle(handle.cell) != _lib.OK:
            handle.last_look = None
            return False
        st = os.stat(_lib.lib.usock_dir_path(handle.cell))
        now = time.monotonic()
        state = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        first = handle.last_look
        if first is None or first[:3] != state:
            handle.last_look = (*state, now)
            return False
        return now - first[3] >= 1.0
    except OSError:
        handle.last_look = None
        return False
    finally:
        handle.lock.release()


def _finish_orphans(phase: str, info: "dict[str, int]") -> None:
    """After a full garbage collection: release handles whose owner is gone but whose release
    was cut short, and those of directories that handed out a path once nothing serves there
    (:func:`_dead_now`); forget released ones."""
    if phase != "stop" or info.get("generation") != 2:
        return
    for key, owner in list(_owners.items()):
        handle = owner.handle
        if owner() is None and (not handle.handed_out or _dead_now(handle)):
            _release(handle)
        if not handle.cell.value:
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


def _finish(handle: _Handle) -> None:
    """Releases ``handle`` under its lock, and raises the library's error if the release
    failed (the handle is freed either way): ``cleanup()`` and ``unbind()``."""
    with handle.lock:
        status = _release(handle)
        error = _error(status) if status != _lib.OK else None
    _owners.pop(id(handle), None)
    if error is not None:
        raise error


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

    #: Added to the message that refuses pickling.
    _pickle_hint = ""

    def __copy__(self) -> "_SoleOwner":
        raise TypeError(f"cannot copy a usock.{type(self).__name__} object: it alone owns what "
                        "it made; share the object itself")

    def __deepcopy__(self, memo: object) -> "_SoleOwner":
        return self.__copy__()

    def __reduce_ex__(self, protocol: object) -> object:
        raise TypeError(f"cannot pickle a usock.{type(self).__name__} object: it owns a live "
                        f"resource of this process{self._pickle_hint}")


class _Socket(_socket.socket):
    """A socket bound by usock: a plain :class:`socket.socket` that keeps its
    :class:`PrivateDir` alive, so that the directory is never cleaned up by garbage collection
    while the socket is still open (for example when only ``asyncio`` holds the socket)."""

    __slots__ = ("_usock_dir",)

