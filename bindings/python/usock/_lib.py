"""Finding and loading libusock, and the C function prototypes.

The library is looked for, in order, at ``$USOCK_LIBRARY``, as a copy shipped inside this
package, as the system's (``ctypes.util.find_library``), and in the build output of the
repository this package sits in (``target/release``).
"""

from __future__ import annotations

import ctypes
import os
import sys

# (No pathlib, typing or ctypes.util at import: together they cost more than the rest of
# `import usock`. ctypes.util is imported only when the earlier places have no library.)
_HERE = os.path.dirname(os.path.realpath(__file__))
if sys.platform == "darwin":
    _SONAME, _LINKNAME = "libusock.0.dylib", "libusock.dylib"
else:
    _SONAME, _LINKNAME = "libusock.so.0", "libusock.so"


def _candidates():
    """(where, path) pairs to try, in order; each found only when the ones before failed."""
    env = os.environ.get("USOCK_LIBRARY")
    if env:
        yield "$USOCK_LIBRARY", env
    for name in (_SONAME, _LINKNAME):
        shipped = os.path.join(_HERE, name)
        if os.path.exists(shipped):
            yield "the copy inside the package", shipped
            break
    import ctypes.util

    system = ctypes.util.find_library("usock")
    if system:
        yield "the system's library", system
    parent = _HERE
    while os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
        built = os.path.join(parent, "target", "release", _LINKNAME)
        if os.path.exists(built):
            yield "the repository's build output", built
            break


def load() -> ctypes.CDLL:
    tried = []
    for where, path in _candidates():
        try:
            lib = ctypes.CDLL(path, use_errno=True)
        except OSError as e:
            if where == "$USOCK_LIBRARY":
                raise ImportError(f"usock: cannot load $USOCK_LIBRARY={path}: {e}") from e
            tried.append(f"{where} {path}: {e}")
            continue
        _declare(lib)
        return lib
    raise ImportError(
        "usock: cannot find libusock. Build it with `make build` (or `cargo build --release`) "
        "in the usock repository and reinstall this package, install it with "
        f"`make install`, or set USOCK_LIBRARY=/path/to/{_LINKNAME}"
        + ("; tried: " + "; ".join(tried) if tried else "")
    )


def _declare(lib: ctypes.CDLL) -> None:
    # A usock_dir * travels as c_void_p, so that a c_void_p object can hold it and be passed
    # as it is (its value read at call time; NULL once released).
    c_int, c_char_p, c_size_t, c_dir = ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p
    lib.usock_create_dir.argtypes = [c_char_p, ctypes.c_uint32, ctypes.POINTER(c_dir)]
    lib.usock_create_dir.restype = c_int
    lib.usock_dir_path.argtypes = [c_dir]
    lib.usock_dir_path.restype = c_char_p
    lib.usock_socket_path.argtypes = [c_dir, c_char_p, ctypes.c_char_p, c_size_t]
    lib.usock_socket_path.restype = c_int
    lib.usock_socket_address.argtypes = [c_dir, c_char_p, ctypes.c_char_p, c_size_t]
    lib.usock_socket_address.restype = c_int
    lib.usock_bind.argtypes = [c_dir, c_char_p, c_int, c_int, ctypes.POINTER(c_int)]
    lib.usock_bind.restype = c_int
    lib.usock_bind_fd.argtypes = [c_dir, c_char_p, c_int, c_int]
    lib.usock_bind_fd.restype = c_int
    lib.usock_adopt.argtypes = [c_dir, c_char_p]
    lib.usock_adopt.restype = c_int
    lib.usock_cleanup.argtypes = [c_dir]
    lib.usock_cleanup.restype = c_int
    lib.usock_dir_idle.argtypes = [c_dir]
    lib.usock_dir_idle.restype = c_int
    lib.usock_strerror.argtypes = [c_int]
    lib.usock_strerror.restype = c_char_p
    lib.usock_last_error.argtypes = []
    lib.usock_last_error.restype = c_char_p
    lib.usock_last_error_path.argtypes = []
    lib.usock_last_error_path.restype = c_char_p
    lib.usock_last_errno.argtypes = []
    lib.usock_last_errno.restype = c_int
    lib.usock_version.argtypes = []
    lib.usock_version.restype = c_char_p
    lib.usock_path_max.argtypes = []
    lib.usock_path_max.restype = c_size_t
    lib.usock_status_name.argtypes = [c_int]
    lib.usock_status_name.restype = c_char_p
    c_path = ctypes.c_void_p  # a usock_bound_path *, like c_dir
    lib.usock_connect.argtypes = [c_char_p, c_int, ctypes.c_uint32, ctypes.c_int64, ctypes.POINTER(c_int)]
    lib.usock_connect.restype = c_int
    lib.usock_bind_path.argtypes = [c_char_p, c_int, c_int, ctypes.c_uint32, ctypes.POINTER(c_path)]
    lib.usock_bind_path.restype = c_int
    lib.usock_unbind_path.argtypes = [c_path]
    lib.usock_unbind_path.restype = c_int
    lib.usock_sweep.argtypes = [c_char_p, ctypes.c_int64, ctypes.c_uint32, SWEEP_FN,
                                ctypes.c_void_p, ctypes.POINTER(c_size_t)]
    lib.usock_sweep.restype = c_int
    lib.usock_hand_off.argtypes = [c_dir, ctypes.POINTER(c_int)]
    lib.usock_hand_off.restype = c_int
    lib.usock_take_over.argtypes = [c_char_p, c_int, ctypes.c_uint32, ctypes.POINTER(c_dir)]
    lib.usock_take_over.restype = c_int
    c_policy = ctypes.c_void_p
    lib.usock_peer_of.argtypes = [c_int, ctypes.POINTER(PEER)]
    lib.usock_peer_of.restype = c_int
    lib.usock_policy_new.argtypes = [c_int, ctypes.POINTER(ctypes.c_uint32), c_size_t, ctypes.POINTER(c_policy)]
    lib.usock_policy_new.restype = c_int
    lib.usock_accept.argtypes = [c_policy, c_int, ctypes.POINTER(PEER), ctypes.POINTER(c_int)]
    lib.usock_accept.restype = c_int
    lib.usock_policy_check.argtypes = [c_policy, c_int, ctypes.POINTER(PEER)]
    lib.usock_policy_check.restype = c_int
    lib.usock_policy_refused.argtypes = [c_policy, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_int64)]
    lib.usock_policy_refused.restype = c_int
    lib.usock_overflow_ids.argtypes = [ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint32)]
    lib.usock_overflow_ids.restype = c_int
    lib.usock_policy_free.argtypes = [c_policy]
    lib.usock_policy_free.restype = c_int
    lib.usock_create_shared_dir.argtypes = [c_char_p, ctypes.c_uint32, ctypes.c_uint32, ctypes.POINTER(c_dir)]
    lib.usock_create_shared_dir.restype = c_int


class PEER(ctypes.Structure):
    """``usock_peer``"""
    _fields_ = [("uid", ctypes.c_uint32), ("gid", ctypes.c_uint32), ("pid", ctypes.c_int32)]


#: ``usock_sweep_fn``: (ctx, path, removed, reason)
SWEEP_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)

# Flags, as include/usock.h defines them (compile-time constants there; a test compares).
CONNECT_NONBLOCK = 1  # USOCK_CONNECT_NONBLOCK
REPLACE = 1  # USOCK_REPLACE
SERVER_ANY = -1  # USOCK_SERVER_ANY
SERVER_SELF_OR_ROOT = -2  # USOCK_SERVER_SELF_OR_ROOT
ALLOW_SAME_USER, ALLOW_GROUP, ALLOW_UIDS = 0, 1, 2  # USOCK_ALLOW_*
LONG_PATHS = 1  # USOCK_LONG_PATHS


lib = load()

def _status_codes() -> "dict[str, int]":
    """The status codes by their header names, from the library itself (0, -1, -2, ... until
    ``usock_status_name`` has no name): no copy of the header to keep in step."""
    codes = {}
    while True:
        name = lib.usock_status_name(-len(codes))
        if name is None:
            return codes
        codes[name.decode()] = -len(codes)


#: ``{"USOCK_OK": 0, "USOCK_ERR_INVALID": -1, ...}``
STATUS = _status_codes()
OK = STATUS["USOCK_OK"]
ERR_INVALID = STATUS["USOCK_ERR_INVALID"]
ERR_TOO_LONG = STATUS["USOCK_ERR_TOO_LONG"]
ERR_UNSAFE = STATUS["USOCK_ERR_UNSAFE"]
ERR_NO_DIR = STATUS["USOCK_ERR_NO_DIR"]
ERR_IN_USE = STATUS["USOCK_ERR_IN_USE"]
ERR_EXHAUSTED = STATUS["USOCK_ERR_EXHAUSTED"]
ERR_CHANGED = STATUS["USOCK_ERR_CHANGED"]
ERR_SYSTEM = STATUS["USOCK_ERR_SYSTEM"]
ERR_BUFFER = STATUS["USOCK_ERR_BUFFER"]
ERR_PANIC = STATUS["USOCK_ERR_PANIC"]

#: ``sizeof(sockaddr_un.sun_path)`` of the platform, NUL included (``USOCK_PATH_MAX``): 108 on
#: Linux, 104 on macOS and the BSDs, as the library reports it.
PATH_MAX: int = lib.usock_path_max()
