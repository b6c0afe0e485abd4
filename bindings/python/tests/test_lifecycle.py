"""Servers at well-known paths, connecting, the crash sweep and the hand-off, from Python: real
processes killed with SIGKILL, real connections, what is left on disk."""

import asyncio
import errno
import gc
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from _support import mode

import usock
from usock import _lib

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def home(tmp_path):
    """A directory only the user can write to (0755), for well-known paths."""
    tmp_path.chmod(0o755)
    return tmp_path


def python(code, **kw):
    """A fresh interpreter running code with this usock importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(usock.__file__).parent.parent)] + sys.path)
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                            stdout=subprocess.PIPE, text=True, **kw)


def ready(proc):
    line = proc.stdout.readline()
    assert line.startswith("READY"), line
    return line[len("READY"):].strip()


def test_connect_gives_a_socket_and_builtin_error_classes(tmp_path):
    tmp_path.chmod(0o755)
    with usock.listen(parent=tmp_path) as server:
        with usock.connect(server.path) as client:
            conn, _ = server.socket.accept()
            client.sendall(b"hi")
            assert conn.recv(2) == b"hi"
            conn.close()
            assert not client.get_inheritable()
        with pytest.raises(FileNotFoundError) as e:
            usock.connect(os.path.join(server.dir.path, "none"))
        assert isinstance(e.value, usock.Error) and e.value.errno == errno.ENOENT
        assert e.value.filename == os.path.join(server.dir.path, "none")
        with pytest.raises(usock.Error) as e:
            usock.connect(server.path, type=socket.SOCK_DGRAM)
        assert e.value.errno == errno.EPROTOTYPE
    with pytest.raises(usock.PathTooLongError):
        usock.connect("/" + "x" * 200)
    with pytest.raises(ValueError):
        usock.connect("")


def test_connect_to_a_stale_socket_is_connection_refused(home):
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(home / "stale"))
    s.close()
    with pytest.raises(ConnectionRefusedError) as e:
        usock.connect(home / "stale")
    assert "nobody is listening" in str(e.value)
    (home / "file").write_bytes(b"")
    with pytest.raises(ConnectionRefusedError, match="a regular file, not a socket"):
        usock.connect(home / "file")


def test_listen_at_binds_0600_refuses_a_live_server_and_removes_its_path(home):
    path = home / "app.sock"
    with usock.listen_at(path) as server:
        assert mode(path) == 0o600 and mode(str(path) + ".lock") == 0o600
        with pytest.raises(usock.NameInUseError, match="a server answers"):
            usock.listen_at(path)
        c = usock.connect(path)
        server.socket.accept()[0].close()
        c.close()
    assert not path.exists()
    assert os.path.exists(str(path) + ".lock")


def test_a_live_server_sees_the_probe_as_a_connection_that_closes_at_once(home):
    # What listen_at()'s docstring and the header's usock_bind_path say: a second listen_at()
    # connects to tell a live server from a stale socket, and the server must survive it.
    path = home / "probed.sock"
    with usock.listen_at(path) as server:
        with pytest.raises(usock.NameInUseError):
            usock.listen_at(path)
        server.socket.settimeout(10)
        conn, _ = server.socket.accept()          # the probe, queued
        conn.settimeout(10)
        assert conn.recv(1) == b""                # it hung up without a byte
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(100):
                conn.send(b"hello")
        conn.close()
        server.socket.setblocking(False)
        with pytest.raises(BlockingIOError):      # one connection only
            server.socket.accept()
    doc = " ".join(usock.listen_at.__doc__.split())
    assert "sees one connection that closes at once" in doc and "BrokenPipeError" in doc
    lines = (REPO / "include" / "usock.h").read_text().splitlines()
    header = " ".join(line.strip().lstrip("*").strip() for line in lines)
    assert "a live server at the path sees one connection that closes at once" in header


def test_listen_at_refuses_a_shared_directory():
    with pytest.raises(usock.UnsafeDirectoryError, match="another user can create"):
        usock.listen_at("/tmp/usock-python-test.sock")
    assert not os.path.exists("/tmp/usock-python-test.sock")


def test_a_server_killed_with_sigkill_leaves_a_stale_socket_that_is_reused(home):
    path = home / "killed.sock"
    proc = python(f"""
        import time, usock
        server = usock.listen_at({str(path)!r})
        print("READY", flush=True)
        time.sleep(600)
    """)
    ready(proc)
    with pytest.raises(usock.NameInUseError):
        usock.listen_at(path)
    proc.kill()
    proc.wait()
    assert path.exists()
    with usock.listen_at(path) as server:
        usock.connect(path).close()
        server.socket.accept()[0].close()


def test_replace_takes_over_while_a_client_connects_in_a_loop(home):
    path = home / "svc.sock"
    old = usock.listen_at(path)
    failures, connections, stop = [], [0], threading.Event()

    def serve(bound):
        bound.socket.settimeout(0.05)
        while True:
            try:
                c, _ = bound.socket.accept()
                c.sendall(b"k")
                c.close()
            except (socket.timeout, OSError):
                if bound.socket.fileno() < 0:
                    return

    def client():
        while not stop.is_set():
            try:
                with usock.connect(path) as c:
                    c.settimeout(5)
                    if c.recv(1) != b"k":
                        failures.append("no answer")
                connections[0] += 1
            except OSError as e:
                failures.append(e)

    threads = [threading.Thread(target=serve, args=(old,))]
    threads[0].start()
    t = threading.Thread(target=client)
    t.start()
    servers = [old]
    for _ in range(10):
        time.sleep(0.02)
        new = usock.listen_at(path, replace=True)
        th = threading.Thread(target=serve, args=(new,))
        th.start()
        threads.append(th)
        prev = servers.pop()
        prev.unbind()           # leaves the new socket in place
        time.sleep(0.06)        # let the old server drain its queue
        prev.socket.close()
        servers.append(new)
    stop.set()
    t.join()
    assert path.exists()
    servers[0].close()
    for th in threads:
        th.join()
    assert failures == [] and connections[0] > 10
    assert not path.exists()


def test_asyncio_serves_a_well_known_path(home):
    path = home / "aio.sock"

    async def main():
        async def echo(reader, writer):
            writer.write(b"echo:" + await reader.readline())
            await writer.drain()
            writer.close()

        with usock.listen_at(path) as bound:
            srv = await asyncio.start_unix_server(echo, sock=bound.socket)
            async with srv:
                reader, writer = await asyncio.open_unix_connection(sock=usock.connect(path))
                writer.write(b"hi\n")
                reply = await reader.readline()
                writer.close()
                return reply

    assert asyncio.run(main()) == b"echo:hi\n"
    assert not path.exists()


def test_garbage_collection_unbinds_only_when_the_socket_is_gone(home):
    path = home / "gc.sock"
    sock = usock.listen_at(path).socket
    gc.collect()
    assert path.exists(), "the socket keeps its BoundPath alive"
    sock.close()
    del sock
    gc.collect()
    assert not path.exists()


def test_sweep_removes_what_a_killed_process_left_and_keeps_live_ones(home):
    proc = python(f"""
        import time, usock
        server = usock.listen(parent={str(home)!r})
        print("READY", server.dir.path, flush=True)
        time.sleep(600)
    """)
    dead = ready(proc)
    with usock.private_dir(home) as live:
        report = usock.sweep(home, grace=0)
        kept = dict(report.kept)
        assert report.removed == []
        assert "holds its lock" in kept[live.path] and "holds its lock" in kept[dead]
        proc.kill()
        proc.wait()
        report = usock.sweep(home, grace=3600)
        assert "grace period" in dict(report.kept)[dead]
        report = usock.sweep(home, grace=0)
        assert report.removed == [dead]
        assert os.path.isdir(live.path)
    assert os.listdir(home) == []
    with pytest.raises(ValueError):
        usock.sweep(home, grace=-1)


def test_a_fractional_grace_is_rounded_up_not_down(home):
    d = usock.private_dir(home)
    path = d.path
    os.close(d.hand_off())  # nothing holds it now: only the grace period keeps it
    report = usock.sweep(home, grace=0.9)
    assert report.removed == [], "a grace of 0.9 s became 0 and removed a directory made just now"
    assert "grace period" in dict(report.kept)[path]
    assert usock.sweep(home, grace=float("inf")).removed == []
    for bad in (float("nan"), -0.5):
        with pytest.raises(ValueError):
            usock.sweep(home, grace=bad)
    assert usock.sweep(home, grace=0).removed == [path]
    assert os.listdir(home) == []


def test_hand_off_to_an_exec_successor_that_takes_over(home):
    d = usock.private_dir(home)
    sock = d.bind()
    path = d.path
    fd = d.hand_off()
    assert d.closed and os.path.isdir(path)
    code = textwrap.dedent("""
        import os, socket, usock
        d = usock.take_over(os.environ["USOCK_DIR"], int(os.environ["USOCK_LOCK_FD"]))
        report = usock.sweep(os.path.dirname(d.path), grace=0)
        assert "holds its lock" in dict(report.kept)[d.path], report
        d.cleanup()
        print("done", flush=True)
    """)
    env = dict(os.environ, USOCK_DIR=path, USOCK_LOCK_FD=str(fd))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(usock.__file__).parent.parent)] + sys.path)
    sock.close()
    out = subprocess.run([sys.executable, "-c", code], env=env, pass_fds=(fd,),
                         capture_output=True, text=True, timeout=60)
    os.close(fd)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "done"
    assert os.listdir(home) == []
    with pytest.raises(usock.UnsafeDirectoryError, match="not a name usock makes"):
        usock.take_over(home)


def test_flags_match_the_header():
    header = (REPO / "include" / "usock.h")
    if not header.exists():
        pytest.skip("run from an installed package, away from the repository")
    text = header.read_text()
    assert re.search(r"#define USOCK_CONNECT_NONBLOCK (\d+)", text).group(1) == str(_lib.CONNECT_NONBLOCK)
    assert re.search(r"#define USOCK_REPLACE (\d+)", text).group(1) == str(_lib.REPLACE)
    for name, value in [("USOCK_SERVER_ANY", _lib.SERVER_ANY),
                        ("USOCK_SERVER_SELF_OR_ROOT", _lib.SERVER_SELF_OR_ROOT),
                        ("USOCK_ALLOW_SAME_USER", _lib.ALLOW_SAME_USER),
                        ("USOCK_ALLOW_GROUP", _lib.ALLOW_GROUP),
                        ("USOCK_ALLOW_UIDS", _lib.ALLOW_UIDS)]:
        assert re.search(rf"#define {name} (-?\d+)", text).group(1) == str(value), name
