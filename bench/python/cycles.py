"""Python contenders for `make bench`: µs per create-bind-listen-close-cleanup cycle.

    python cycles.py usock|mkdtemp PARENT N
"""
import os
import shutil
import socket
import sys
import tempfile
import time

import usock


def usock_cycle(parent):
    with usock.listen(parent=parent, backlog=128):
        pass


def mkdtemp_cycle(parent):
    # What multiprocessing does for its sockets: a mkdtemp directory, removed with rmtree.
    d = tempfile.mkdtemp(prefix="pymp-", dir=parent)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(os.path.join(d, "sock"))
    s.listen(128)
    s.close()
    shutil.rmtree(d)


def main():
    mode, parent, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cycle = {"usock": usock_cycle, "mkdtemp": mkdtemp_cycle}[mode]
    for _ in range(50):
        cycle(parent)
    start = time.perf_counter()
    for _ in range(n):
        cycle(parent)
    print(f"{(time.perf_counter() - start) * 1e6 / n:.3f}")


main()
