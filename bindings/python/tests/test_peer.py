"""Who may connect, from Python: peer credentials, the accept policy (blocking and asyncio),
the client's check of the server, directories shared with a group. Clients of other users run
as real subprocesses with privileges dropped (root only; skipped otherwise)."""

import asyncio
import errno
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

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


SERVER_AS_OTHER = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen()
print("READY", flush=True)
conn, _ = s.accept()
conn.settimeout(30)
print("closed" if conn.recv(1) == b"" else "data", flush=True)
"""


@root_only
@pytest.mark.parametrize("asked", ["self", "self_or_root"])
def test_a_server_of_another_user_is_a_wrong_server_error(public, asked):
    # The server runs as another user (not the overflow uid, which has a message of its own); this client (root) asks for a server running as itself.
    home = public / "other"
    home.mkdir()
    os.chown(home, OTHER, OTHER)
    path = home / "other.sock"
    server = subprocess.Popen([CLIENT_PYTHON, "-c", SERVER_AS_OTHER, str(path)], user=OTHER,
                              group=OTHER, stdout=subprocess.PIPE, text=True, cwd="/")
    try:
        assert server.stdout.readline().strip() == "READY"
        wanted = os.geteuid() if asked == "self" else usock.SELF_OR_ROOT
        with pytest.raises(usock.WrongServerError) as info:
            usock.connect(path, server=wanted)
        e = info.value
        assert isinstance(e, PermissionError) and isinstance(e, usock.Error)
        assert isinstance(e, usock.UnsafeError) and not isinstance(e, usock.UnsafeDirectoryError)
        assert type(e).__name__ == "WrongServerError" and e.errno == errno.EACCES
        assert e.filename == str(path)
        if asked == "self_or_root":    # as root, "you or root" is root alone
            expected = "root (uid 0)" if os.geteuid() == 0 else f"uid {os.geteuid()} or root"
        else:
            expected = f"uid {os.geteuid()}"
        assert f"runs as uid {OTHER}, not {expected}" in str(e)
        assert server.stdout.readline().strip() == "closed"     # closed before a byte was sent
    finally:
        server.kill()
        server.wait()


def test_a_policy_without_us_refuses_and_counts(tmp_path):
    tmp_path.chmod(0o755)
    policy = usock.AcceptPolicy(uids=[4242, usock.OVERFLOW_UID])
    assert policy.refused == (0, None)           # a pair, as its docstrings say
    for doc in (usock.AcceptPolicy.__doc__, usock.AcceptPolicy.refused.__doc__):
        assert "pair" in doc and "counts the refusals" not in doc
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
    admitted, outcomes = serve(listener, policy,
                               [client(path, usock.OVERFLOW_UID), client(path, OTHER)])
    assert outcomes == ["closed", "answered"]
    assert policy.refused == (1, usock.OVERFLOW_UID)


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


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="checks the /proc address of long paths, which is Linux's")
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


SERVER_USER, MEMBER, OUTSIDER, SHARED_GROUP = 40001, 40002, 40003, 40100


def fork_as(uid, gid, groups, body):
    """Runs ``body(write)`` in a forked child as ``uid``/``gid`` with exactly the supplementary
    ``groups``; ``write(text)`` sends a line to the parent. Returns (pid, reader): the child
    exits 0 when ``body`` returned, 1 when it raised (the traceback on stderr)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(r)
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)
            body(lambda text: os.write(w, (text + "\n").encode()))
            status = 0
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            os._exit(status)
    os.close(w)
    return pid, os.fdopen(r)


def exit_status(pid, timeout=30):
    """The forked child's exit status; it is killed if it has not exited by ``timeout``."""
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return "killed"


@root_only
def test_a_server_running_as_the_overflow_uid_refuses_its_own_uid(public):
    os.chown(public, usock.OVERFLOW_UID, usock.OVERFLOW_UID)

    def server(write):
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(public / "s.sock"))
        s.listen()
        c = socket.socket(socket.AF_UNIX)
        c.connect(str(public / "s.sock"))
        conn, _ = s.accept()
        assert usock.peer(conn).uid == os.geteuid() == usock.OVERFLOW_UID
        policy = usock.AcceptPolicy()
        write(f"{policy.check(conn)} {policy.refused}")

    pid, out = fork_as(usock.OVERFLOW_UID, usock.OVERFLOW_GID, [], server)
    line = out.read().strip()
    assert exit_status(pid) == 0
    assert line == f"None (1, {usock.OVERFLOW_UID})"


@root_only
def test_a_client_refuses_a_server_running_as_the_overflow_uid(public):
    os.chown(public, usock.OVERFLOW_UID, usock.OVERFLOW_UID)

    def server_and_client(write):
        s = socket.socket(socket.AF_UNIX)
        path = str(public / "s.sock")
        s.bind(path)
        s.listen()
        for server in (usock.SELF_OR_ROOT, usock.OVERFLOW_UID):
            with pytest.raises(usock.UnsafeError, match="overflow uid"):
                usock.connect(path, server=server)
        usock.connect(path).close()
        write("refused")

    pid, out = fork_as(usock.OVERFLOW_UID, usock.OVERFLOW_GID, [], server_and_client)
    line = out.read().strip()
    assert exit_status(pid) == 0
    assert line == "refused"


@root_only
def test_a_group_policy_for_the_overflow_gid_admits_no_one(open_listener):
    listener, path = open_listener
    policy = usock.AcceptPolicy(group=usock.OVERFLOW_GID)
    as_primary = subprocess.Popen([CLIENT_PYTHON, "-c", CLIENT, str(path)], user=OTHER,
                                  group=usock.OVERFLOW_GID, extra_groups=[],
                                  stdout=subprocess.PIPE, text=True, cwd="/")
    as_supplementary = client(path, OTHER, [usock.OVERFLOW_GID])
    admitted, outcomes = serve(listener, policy, [as_primary, as_supplementary])
    assert outcomes == ["closed", "closed"]
    assert admitted == []
    assert policy.refused == (2, OTHER)


@root_only
def test_a_member_by_a_supplementary_group_connects_to_a_shared_directory(public):
    os.chown(public, SERVER_USER, SERVER_USER)   # where the server (not root) may create

    def server(write):
        with usock.shared_dir(SHARED_GROUP, public) as d:
            sock = d.bind()
            write(d.socket_path())
            conn, who = usock.AcceptPolicy(group=SHARED_GROUP).accept(sock)
            conn.recv(1)
            conn.sendall(b"!")
            conn.close()
            sock.close()
            write(f"admitted {who.uid}")

    pid, out = fork_as(SERVER_USER, SERVER_USER, [SHARED_GROUP], server)
    try:
        path = out.readline().strip()
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (SERVER_USER, SHARED_GROUP, 0o660)
        assert outcome(client(path, OUTSIDER)) == "error 13"   # EACCES: not a member
        assert outcome(client(path, MEMBER, [SHARED_GROUP])) == "answered"
        assert out.readline().strip() == f"admitted {MEMBER}"
    finally:
        status = exit_status(pid, timeout=0 if sys.exc_info()[0] else 30)
    assert status == 0
    assert os.listdir(public) == []


# AcceptPolicy.accept waits as socket.accept() does --------------------------------------------


def test_policy_accept_admits_a_connection_that_then_works(tmp_path):
    tmp_path.chmod(0o755)
    policy = usock.AcceptPolicy()
    with usock.listen(parent=tmp_path) as server:
        for timeout in (None, 5.0, 0.0):          # blocking, a timeout, non-blocking
            server.socket.settimeout(timeout)
            client = usock.connect(server.path)
            conn, who = policy.accept(server.socket)
            assert who == usock.Peer(os.geteuid(), os.getegid(), os.getpid())
            assert conn.gettimeout() is None and not conn.get_inheritable()
            client.sendall(b"?")
            assert conn.recv(1) == b"?"
            conn.sendall(b"!")
            assert client.recv(1) == b"!"
            conn.close()
            client.close()
        client = usock.connect(server.path)
        conn, _ = policy.accept(server)             # a Listener stands for its socket
        with pytest.raises(TypeError, match="socket.socket"):
            policy.accept(server.socket.fileno())
        for s in (conn, client):
            s.close()
    assert policy.refused == (0, None)


def test_policy_accept_on_a_non_blocking_socket_raises_blocking_io_error(tmp_path):
    tmp_path.chmod(0o755)
    with usock.listen(parent=tmp_path) as server:
        server.socket.setblocking(False)
        with pytest.raises(BlockingIOError):
            usock.AcceptPolicy().accept(server.socket)


def test_policy_accept_times_out_after_the_sockets_timeout(tmp_path):
    tmp_path.chmod(0o755)
    with usock.listen(parent=tmp_path) as server:
        server.socket.settimeout(0.5)
        start = time.monotonic()
        with pytest.raises(socket.timeout, match="timed out"):
            usock.AcceptPolicy().accept(server.socket)
        assert time.monotonic() - start >= 0.45
        if sys.version_info >= (3, 10):
            assert socket.timeout is TimeoutError


def test_policy_accept_deadline_holds_while_refused_peers_keep_coming(tmp_path):
    # A refused connection every 0.1 s for 30 s: a wait that started over after each one would
    # not end before they stop; the socket's timeout is the time for the whole call.
    tmp_path.chmod(0o755)
    policy = usock.AcceptPolicy(uids=[4242])        # refuses us
    stop, clients = threading.Event(), []

    def keep_connecting(path):
        for _ in range(300):
            clients.append(usock.connect(path))
            if stop.wait(0.1):
                return

    with usock.listen(parent=tmp_path) as server:
        server.socket.settimeout(1.0)
        thread = threading.Thread(target=keep_connecting, args=(server.path,))
        thread.start()
        try:
            with pytest.raises(socket.timeout):
                policy.accept(server.socket)
            assert not stop.is_set() and thread.is_alive(), "timed out only once the peers stopped"
        finally:
            stop.set()
            thread.join()
        count, last = policy.refused
        assert count >= 1 and last == os.geteuid()
        clients[0].settimeout(10)
        assert clients[0].recv(1) == b""            # refused: closed by the server
        for c in clients:
            c.close()


WAIT_FOR_SIGNAL = """
import os, signal, socket, sys, threading, usock
class Alarm(Exception):
    pass
def on_alarm(*_):
    raise Alarm
signal.signal(signal.SIGALRM, on_alarm)
signal.signal(signal.SIGINT, signal.default_int_handler)
sig, timeout = getattr(signal, sys.argv[2]), eval(sys.argv[3])
server = usock.listen(parent=sys.argv[1])
server.socket.settimeout(timeout)
refused = usock.connect(server.path)        # waiting before the call: to be closed and counted
policy = usock.AcceptPolicy(uids=[4242])    # refuses us
armed, done, rescued = threading.Event(), threading.Event(), False
def signal_then_rescue():
    global rescued
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGINT})   # for the main thread
    armed.wait()
    if done.wait(0.3):
        return
    os.kill(os.getpid(), sig)
    if not done.wait(20):
        rescued = True                      # the signal did not end the wait: end it otherwise
        server.socket.shutdown(socket.SHUT_RDWR)
threading.Thread(target=signal_then_rescue, daemon=True).start()
try:
    armed.set()
    policy.accept(server.socket)
    outcome = "returned"
except BaseException as e:
    outcome = type(e).__name__
done.set()
refused.settimeout(10)
print(outcome, rescued, policy.refused[0], refused.recv(1) == b"")
server.close()
"""


@pytest.mark.parametrize("timeout", [None, 30.0], ids=["blocking", "timeout"])
@pytest.mark.parametrize("sig,raised", [("SIGALRM", "Alarm"), ("SIGINT", "KeyboardInterrupt")])
def test_policy_accept_lets_signal_handlers_end_the_wait(tmp_path, sig, raised, timeout):
    # In a child: signal handlers are process-wide. The main thread waits in accept() after
    # refusing a queued connection; a handler that raises (Ctrl-C's KeyboardInterrupt) ends it.
    tmp_path.chmod(0o755)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(usock.__file__).parent.parent)] + sys.path)
    out = subprocess.run([sys.executable, "-c", WAIT_FOR_SIGNAL, str(tmp_path), sig, repr(timeout)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [raised, "False", "1", "True"]
    assert os.listdir(tmp_path) == []
