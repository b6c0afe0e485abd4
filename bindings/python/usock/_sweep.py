"""The sweep: :func:`sweep` removes the private directories of processes that died, and says
what it did in a :class:`SweepReport`."""

from __future__ import annotations

import math
import os

from . import _lib
from ._args import _parent_arg
from ._errors import _error

_INT64_MAX = 2**63 - 1

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Tuple

    from ._args import StrPath


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
    A live server sees a connection that closes at once. The library counts whole seconds: a
    fraction is rounded up (0.5 keeps what changed within the last second), never down."""
    raw = _parent_arg(parent)
    if isinstance(grace, bool) or not isinstance(grace, (int, float)):
        raise TypeError(f"grace must be a number of seconds, not {type(grace).__name__}")
    if grace < 0 or math.isnan(grace):
        raise ValueError(f"grace must be a number of seconds, not negative, got {grace}")
    # Whole seconds for the C call, rounded up (a fraction must not shorten the grace to less
    # than asked); inf and the like as the largest the call takes.
    seconds = _INT64_MAX if grace >= _INT64_MAX else math.ceil(grace)
    report = SweepReport()

    def seen(_ctx: object, path: bytes, removed: int, reason: Optional[bytes]) -> None:
        if removed:
            report.removed.append(os.fsdecode(path))
        else:
            report.kept.append((os.fsdecode(path), os.fsdecode(reason or b"")))

    callback = _lib.SWEEP_FN(seen)
    status = _lib.lib.usock_sweep(raw, seconds, 0, callback, None, None)
    if status != _lib.OK:
        raise _error(status)
    return report
