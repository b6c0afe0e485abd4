"""Who may connect, from Python: peer credentials, the accept policy (blocking and asyncio),
the client's check of the server, directories shared with a group. Clients of other users run
as real subprocesses with privileges dropped (root only; skipped otherwise)."""

import asyncio
import os
import socket
import stat
import subprocess
import sys

import pytest

import usock

NOBODY, OTHER = 65534, 54321
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run clients as other users")

CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("error", e.errno); sys.exit(0)
try:
    s.sendall(b"?")
    print("answered" if s.recv(1) == b"!" else "closed")
except (ConnectionResetError, BrokenPipeError):
    print("closed")   # the server closed it with our byte unread
"""


# Other users may not reach this interpreter (a virtual environment under /root, say): the
# clients need nothing but the socket module, so they run the system's Python where it exists.
CLIENT_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def client(path, user, extra_groups=()):
    """A client process as another user; returns it (read its outcome with outcome())."""
    return subprocess.Popen([CLIENT_PYTHON, "-c", CLIENT, str(path)], user=user, group=user,
                            extra_groups=list(extra_groups), stdout=subprocess.PIPE, text=True,
                            cwd="/")


def outcome(proc):
    out, _ = proc.communicate(timeout=30)
    return out.strip()


@pytest.fixture
def public():
    """A 0755 directory other users can reach (pytest's tmp_path lies under a 0700 one)."""
    import shutil
    import tempfile
    from pathlib import Path
    d = Path(tempfile.mkdtemp(prefix="usock-pytest-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


@pytest.fixture
def open_listener(public):
    """A listener anyone can reach: a 0777 socket in a 0755 directory."""
    path = public / "open.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    os.chmod(path, 0o777)
    s.listen()
    yield s, path
    s.close()


def serve(listener, policy, procs):
    """Accept with the policy until every client is done; answer the admitted ones."""
    listener.setblocking(False)
    admitted, results = [], []
    pending = list(procs)
    while pending:
        try:
            conn, who = policy.accept(listener)
            conn.setblocking(True)
            conn.recv(1)
            conn.sendall(b"!")
            conn.close()
            admitted.append(who)
        except BlockingIOError:
            pass
        for p in list(pending):
            if p.poll() is not None:
                pending.remove(p)
    return admitted, [outcome(p) for p in procs]


def test_peer_of_a_connection_in_this_process(tmp_path):
    tmp_path.chmod(0o755)
    with usock.listen(parent=tmp_path) as server:
        c = usock.connect(server.path, server=usock.SELF_OR_ROOT)
        conn, _ = server.socket.accept()
        p = usock.peer(conn)
        assert (p.uid, p.gid, p.pid) == (os.geteuid(), os.getegid(), os.getpid())
        uid, gid, pid = usock.peer(c)
        assert uid == os.geteuid()
        with pytest.raises(usock.UnsafeError, match="runs as uid"):
            usock.connect(server.path, server=os.geteuid() + 1)
        with pytest.raises(ValueError):
            usock.connect(server.path, server="someone")
        c.close()
        conn.close()


def test_a_policy_without_us_refuses_and_counts(tmp_path):
    tmp_path.chmod(0o755)
    policy = usock.AcceptPolicy(uids=[4242, usock.OVERFLOW_UID])
    with usock.listen(parent=tmp_path) as server:
        c = usock.connect(server.path)
        server.socket.setblocking(False)
        with pytest.raises(BlockingIOError):
            policy.accept(server.socket)
        assert policy.refused == (1, os.geteuid())
        assert c.recv(1) == b""          # closed by the server
        c.close()


@root_only
def test_the_default_policy_refuses_another_user(open_listener):
    listener, path = open_listener
    policy = usock.AcceptPolicy()
    admitted, outcomes = serve(listener, policy, [client(path, NOBODY), client(path, 0)])
    assert outcomes == ["closed", "answered"]
    assert [p.uid for p in admitted] == [0]
    assert policy.refused == (1, NOBODY)


@root_only
def test_a_group_policy_admits_a_supplementary_member(open_listener):
    listener, path = open_listener
    policy = usock.AcceptPolicy(group=4242)
    admitted, outcomes = serve(listener, policy, [client(path, OTHER), client(path, OTHER, [4242])])
    assert outcomes == ["closed", "answered"]
    assert [p.uid for p in admitted] == [OTHER]


@root_only
def test_a_uid_list_never_admits_the_overflow_uid(open_listener):
    listener, path = open_listener
    policy = usock.AcceptPolicy(uids=[usock.OVERFLOW_UID, OTHER])
    admitted, outcomes = serve(listener, policy, [client(path, NOBODY), client(path, OTHER)])
    assert outcomes == ["closed", "answered"]
    assert policy.refused == (1, NOBODY)


@root_only
def test_asyncio_guard_closes_refused_connections(open_listener):
    listener, path = open_listener
    policy = usock.AcceptPolicy()

    async def answer(reader, writer):
        await reader.readexactly(1)
        writer.write(b"!")
        await writer.drain()
        writer.close()

    async def main():
        srv = await asyncio.start_unix_server(policy.guard(answer), sock=listener)
        async with srv:
            outcomes = []
            for user in (NOBODY, 0):
                proc = await asyncio.create_subprocess_exec(
                    CLIENT_PYTHON, "-c", CLIENT, str(path), user=user, group=user,
                    extra_groups=[], stdout=subprocess.PIPE, cwd="/")
                out, _ = await proc.communicate()
                outcomes.append(out.decode().strip())
            return outcomes

    assert asyncio.run(main()) == ["closed", "answered"]
    assert policy.refused == (1, NOBODY)


@root_only
def test_a_shared_directory_lets_members_in(public):
    with pytest.raises(usock.InvalidArgumentError, match="not a member"):
        usock.shared_dir(4343, public)
    assert os.listdir(public) == []
    with usock.shared_dir(0, public) as d:
        assert stat.S_IMODE(os.stat(d.path).st_mode) == 0o710
        sock = d.bind()
        path = d.socket_path()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        policy = usock.AcceptPolicy(group=0)
        admitted, outcomes = serve(sock, policy, [client(path, OTHER, [0]), client(path, NOBODY)])
        assert outcomes[0] == "answered"
        assert outcomes[1] == "error 13"            # EACCES: not a member
        sock.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="long paths are Linux only")
def test_long_paths_bind_and_connect_beyond_sun_path(public):
    deep = public
    while len(str(deep)) < 190:
        deep = deep / ("d" * 40)
        deep.mkdir()
        deep.chmod(0o755)
    with pytest.raises(usock.PathTooLongError):
        usock.private_dir(deep)
    if os.environ.get("USOCK_TEST_PORTABLE"):
        # The path of macOS and the BSDs (run here with --cfg usock_portable): no long paths.
        with pytest.raises(usock.PathTooLongError):
            usock.private_dir(deep, long_paths=True)
        return
    with usock.private_dir(deep, long_paths=True) as d:
        sock = d.bind()
        path = d.socket_path()
        assert len(os.fsencode(path)) > usock.PATH_MAX
        assert d.socket_address().startswith("/proc/thread-self/fd/")
        c = usock.connect(path)
        conn, _ = sock.accept()
        c.sendall(b"x")
        assert conn.recv(1) == b"x"
        for s in (c, conn, sock):
            s.close()
