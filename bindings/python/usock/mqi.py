"""SWI-Prolog's Machine Query Interface on a socket in a usock private directory.

>>> from usock.mqi import PrologMQI                  # instead of: from swiplserver import PrologMQI
>>> with PrologMQI() as mqi:                          # swipl runs MQI on <private dir>/mqi
...     with mqi.create_thread() as prolog_thread:
...         prolog_thread.query("member(X, [a, b])")

:class:`PrologMQI` is ``swiplserver.PrologMQI`` (a subclass: same arguments, methods and
behaviour) except for where its socket lives. Unless you pass ``port`` or a path of your own
as ``unix_domain_socket``, each :meth:`~PrologMQI.start` makes a usock private directory (mode
0700, an unpredictable name, in a checked parent), hands swipl the socket path ``<dir>/mqi``
in it, and sets the socket's mode to 0600 once MQI has bound it; :meth:`~PrologMQI.stop`
removes the directory, and so does a start that fails, garbage collection and interpreter exit.
Plain ``swiplserver`` uses TCP on localhost by default (any local user can connect and try the
password), and with ``unix_domain_socket=""`` a directory Prolog names with ``tmp_file/2``
(``/tmp/swipl_udsock_<pid>_<n>``: predictable, made with default permissions and ``chmod``-ed
afterwards). Here ``""`` also means a usock directory.

``swiplserver`` is an optional dependency (the ``mqi`` extra): ``pip install swiplserver``, or
``pip install './bindings/python[mqi]'`` from a usock checkout (usock is not on PyPI yet).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import weakref

try:
    import swiplserver
    from swiplserver import (  # noqa: F401  (re-exported: one import for an MQI program)
        PrologConnectionFailedError,
        PrologError,
        PrologLaunchError,
        PrologNoQueryError,
        PrologQueryCancelledError,
        PrologQueryTimeoutError,
        PrologResultNotAvailableError,
        PrologThread,
    )
except ImportError as missing:
    raise ImportError(
        "usock.mqi needs swiplserver, SWI-Prolog's Python client of the Machine Query Interface, "
        "which is not installed: pip install swiplserver (usock's mqi extra; from a usock "
        "checkout: pip install './bindings/python[mqi]')",
        name="swiplserver",
    ) from missing

from . import Error, PrivateDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from . import StrPath

__all__ = [
    "PrologMQI",
    "PrologThread",
    "PrologError",
    "PrologLaunchError",
    "PrologQueryTimeoutError",
    "PrologQueryCancelledError",
    "PrologConnectionFailedError",
    "PrologResultNotAvailableError",
    "PrologNoQueryError",
    "SOCKET_NAME",
]

#: The socket's name in its private directory.
SOCKET_NAME = "mqi"

# Servers with a live private directory, stopped (their swipl killed, the directory removed)
# at interpreter exit.
_running: "weakref.WeakSet[PrologMQI]" = weakref.WeakSet()


def _stop_at_exit() -> None:
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.stop(kill=True)


# swiplserver reads swipl's output in non-daemon threads, which end only when swipl does, and
# the interpreter joins non-daemon threads before it runs atexit hooks: a server left running
# would hang the exit. threading's own exit hooks (Python 3.9+; concurrent.futures uses them)
# run before that join.
_register = getattr(threading, "_register_atexit", atexit.register)
_register(_stop_at_exit)


class PrologMQI(swiplserver.PrologMQI):
    """``swiplserver.PrologMQI`` with its socket in a usock private directory.

    The arguments are swiplserver's; ``parent`` (keyword only) is the directory to make the
    private directory in (``None``: usock's automatic location, the first safe one of
    ``$XDG_RUNTIME_DIR``, ``$TMPDIR``, ``/tmp``, ``/var/tmp`` with room for the socket path; on
    macOS the per-user temporary directory first).
    With ``port``, a non-empty ``unix_domain_socket`` or ``launch_mqi=False`` it is
    ``swiplserver.PrologMQI`` unchanged.

    :meth:`start` raises usock's :class:`~usock.PathTooLongError` (the socket path would not fit
    ``sun_path`` here), :class:`~usock.UnsafeDirectoryError` or :class:`~usock.NoDirectoryError`
    before swipl is launched, and swiplserver's errors after; nothing is left behind then.
    """

    def __init__(self, launch_mqi: bool = True, port: Optional[int] = None,
                 password: Optional[str] = None, unix_domain_socket: Optional[str] = None,
                 query_timeout_seconds: Optional[float] = None,
                 pending_connection_count: Optional[int] = None,
                 output_file_name: Optional[str] = None, mqi_traces: Optional[str] = None,
                 prolog_path: Optional[str] = None, prolog_path_args: Optional[list] = None,
                 *, parent: Optional[StrPath] = None, **more: object):
        # Set before swiplserver's __init__, which may raise: __del__ calls stop() even then.
        self._usock_lock = threading.RLock()
        self._usock_dir: Optional[PrivateDir] = None
        self._usock_parent = parent
        self._usock_managed = bool(launch_mqi) and port is None and not unix_domain_socket
        super().__init__(launch_mqi, port, password, unix_domain_socket, query_timeout_seconds,
                         pending_connection_count, output_file_name, mqi_traces, prolog_path,
                         prolog_path_args, **more)
        if self._usock_managed:
            self._unix_domain_socket = None   # "" too: the path is chosen at start

    @property
    def socket_path(self) -> Optional[str]:
        """The path of the running server's Unix domain socket (``None`` for TCP, or before
        :meth:`start`)."""
        return self._unix_domain_socket or None

    def start(self) -> None:
        """swiplserver's ``start``, on a socket in a fresh private directory. A server already
        started by this object is left as it is (swiplserver would launch a second swipl and
        lose track of the first)."""
        if not self._usock_managed:
            return super().start()
        with self._usock_lock:
            if self._process is not None:
                return
            directory = PrivateDir(self._usock_parent)
            try:
                self._unix_domain_socket = directory.socket_path(SOCKET_NAME)  # checks the length
                super().start()
                # MQI bound the socket with the process umask (0755 under umask 022); the 0700
                # directory kept everyone else out meanwhile. Set 0600 before anyone is told the
                # path, and check that what is there is a socket of this user.
                directory.adopt(SOCKET_NAME)
            except BaseException as failure:
                self._abandon(directory, failure)
                raise
            self._usock_dir = directory
            _running.add(self)

    def process_id(self) -> Optional[int]:
        """swiplserver's ``process_id``, once a start in progress has finished. (A
        ``PrologThread`` starts the server when this is ``None``, and connects at once
        otherwise: without the wait, a thread could connect while another is still starting the
        server, before the socket is bound.)"""
        with self._usock_lock:
            return super().process_id()

    def _abandon(self, directory: PrivateDir, failure: BaseException) -> None:
        """A start that failed: end swipl if it was launched, remove the directory."""
        with contextlib.suppress(Exception):
            super().stop(kill=True)
        self._unix_domain_socket = None
        try:
            directory.cleanup()
        except Error as error:   # the failure stays the exception; the cleanup's goes with it
            if hasattr(failure, "add_note"):
                failure.add_note(f"usock: {error}")

    def stop(self, kill: bool = False) -> None:
        """swiplserver's ``stop``; then removes the private directory. Raises
        :class:`~usock.ChangedError` when something usock did not make was found there (and
        left in place, with the directory)."""
        with self._usock_lock:
            try:
                super().stop(kill)
            finally:
                directory, self._usock_dir = self._usock_dir, None
                if directory is not None:
                    _running.discard(self)
                    self._unix_domain_socket = None
                    directory.cleanup()
