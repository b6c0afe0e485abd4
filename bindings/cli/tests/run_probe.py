#!/usr/bin/env python3
"""A probe server for the usock run / systemd-socket-activate oracle test.

    run_probe.py OUTDIR

Records what it was started with (each open descriptor below 64: kind, socket type, listening
or not, its address and peer; the LISTEN_*, USOCK_* and PROBE_* variables), then serves once:
with LISTEN_FDS, the first descriptor that has something (a connection: read to EOF, answer
"probe:" + data; a datagram: read it); a connected socket at 3 (accept mode): the same on it.
Writes OUTDIR/<pid>.json.
"""
import json
import os
import select
import socket
import stat
import sys

TYPES = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "dgram", socket.SOCK_SEQPACKET: "seqpacket"}


def describe(fd):
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode):
        return {"kind": "pipe" if stat.S_ISFIFO(st.st_mode) else "other"}
    s = socket.socket(fileno=os.dup(fd))
    try:
        d = {
            "kind": "socket",
            "family": "unix" if s.family == socket.AF_UNIX else int(s.family),
            "type": TYPES.get(s.type, int(s.type)),
            "listening": bool(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)),
            "name": s.getsockname(),
            "cloexec": not os.get_inheritable(fd),
        }
        try:
            d["peer"] = s.getpeername()
        except OSError:
            d["peer"] = None
        if isinstance(d["name"], bytes):
            d["name"] = "@" + d["name"].decode(errors="replace")
        return d
    finally:
        s.close()


def serve_connection(s):
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    s.sendall(b"probe:" + data)
    s.shutdown(socket.SHUT_WR)
    return data.decode()


def serve(record):
    fds = [fd for fd in range(3, 64) if (record["fds"].get(str(fd)) or {}).get("kind") == "socket"]
    if not fds:
        return None
    socks = {fd: socket.socket(fileno=os.dup(fd)) for fd in fds}
    info = record["fds"]
    connected = [fd for fd in fds if info[str(fd)]["peer"] is not None or info[str(fd)]["type"] == "dgram"]
    if not any(info[str(fd)]["listening"] for fd in fds) and connected and info[str(connected[0])]["type"] != "dgram":
        return {"fd": connected[0], "data": serve_connection(socks[connected[0]])}
    ready, _, _ = select.select(list(socks.values()), [], [], 10)
    if not ready:
        return {"timeout": True}
    s = ready[0]
    fd = next(fd for fd, v in socks.items() if v is s)
    if info[str(fd)]["type"] == "dgram":
        return {"fd": fd, "data": s.recv(4096).decode()}
    c, _ = s.accept()
    return {"fd": fd, "data": serve_connection(c)}


def main():
    out = sys.argv[1]
    open(os.path.join(out, f"{os.getpid()}.start"), "w").close()
    record = {
        "env": {k: v for k, v in os.environ.items() if k.startswith(("LISTEN_", "USOCK_", "PROBE_"))},
        "pid": os.getpid(),
        "fds": {str(fd): d for fd in range(64) if (d := describe(fd)) is not None},
    }
    record["served"] = serve(record) if "--no-serve" not in sys.argv else None
    with open(os.path.join(out, f"{os.getpid()}.tmp"), "w") as f:
        json.dump(record, f)
    os.rename(f.name, os.path.join(out, f"{os.getpid()}.json"))  # whole, for the reader


main()
