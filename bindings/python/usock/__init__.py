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

# The package is split by area; each module's names are re-exported here, the one place users
# import them from:
#   _lib       finding and loading libusock, its prototypes and status codes
#   _errors    the exceptions
#   _args      arguments checked before the library sees them
#   _handle    the handle base every owning object shares (release once, no copies)
#   _dirs      private directories: PrivateDir, private_dir, take_over, shared_dir
#   _listener  a socket listening in its own directory: Listener, listen
#   _paths     well-known paths: BoundPath, listen_at
#   _connect   the client: connect
#   _sweep     removing what dead processes left: sweep
#   _peers     who is at the other end and who may connect: Peer, peer, AcceptPolicy
#   mqi        SWI-Prolog's Machine Query Interface on a private socket (imported on demand)

# The standard modules 0.2's single module had in its namespace: dir(usock) stays as it was.
import atexit, ctypes, gc, os, select, sys, threading, time, weakref  # noqa: E401,F401

from . import _lib
from ._connect import SELF_OR_ROOT, connect
from ._dirs import PrivateDir, private_dir, shared_dir, take_over
from ._errors import (  # noqa: F401  (_rebuild: pickled errors name it as usock._rebuild)
    ChangedError,
    Error,
    ExhaustedError,
    InvalidArgumentError,
    NameInUseError,
    NoDirectoryError,
    PathTooLongError,
    UnsafeDirectoryError,
    UnsafeError,
    WrongServerError,
    _rebuild,
)
from ._handle import _SoleOwner, _Socket  # noqa: F401  (reprs name them usock._Socket, ...)
from ._listener import Listener, listen
from ._paths import BoundPath, listen_at
from ._peers import OVERFLOW_GID, OVERFLOW_UID, AcceptPolicy, Peer, peer
from ._sweep import SweepReport, sweep

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing at run time costs more than usock itself
    from ._args import StrPath  # noqa: F401  (for usock.mqi's annotations)

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


def version() -> str:
    """The loaded libusock's version, "MAJOR.MINOR.PATCH"."""
    return _lib.lib.usock_version().decode()


def _present_as_usock() -> None:
    """Each public class and function says it is ``usock.X``, where users find it (reprs,
    tracebacks, help() and pickling by reference), not the module it is written in; so do the
    socket class and the base that reprs and help() show, and the function pickled errors
    name."""
    for name in (*__all__, "_SoleOwner", "_Socket", "_rebuild"):
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith(__name__ + "."):
            obj.__module__ = __name__


_present_as_usock()
