"""`usock run` as a drop-in for `systemd-socket-activate`: the same scenarios under both, with
the same command line but for the command's name, and a probe server (run_probe.py) that records
what it was started with. They must agree on what the server sees: its descriptors (type,
listening or not, address), the LISTEN_* and -E variables, the data. usock's extras are checked
on top: modes on disk, cleanup, and the --allow policy against a real other user.

    USOCK_CLI=target/release/usock python -m pytest bindings/cli/tests/test_run_oracle.py
"""

import fcntl
import glob
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PROBE = [sys.executable, str(HERE / "run_probe.py")]
# A Python that another uid can run: the virtual environment may sit in a directory only root
# may enter (/root/project on a fresh machine); the clients of another user need only the stdlib.
OTHER_USERS_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
USOCK = os.environ.get("USOCK_CLI", str(HERE.parents[2] / "target/release/usock"))
SSA = shutil.which("systemd-socket-activate")
RUNNERS = {"usock": [USOCK, "run"], "systemd": [SSA]}
OTHER_UID = 12345  # a real uid that is neither root, nor us, nor the overflow uid

needs_ssa = pytest.mark.skipif(SSA is None, reason="systemd-socket-activate is not installed (Debian: systemd)")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switches to another uid: run as root")


def wait_until(cond, what, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Run:
    """One runner (usock or systemd) in a fresh 0700 directory `d`, the probe writing to `out`."""

    def __init__(self, who, tmp):
        self.who = who
        self.d = Path(tempfile.mkdtemp(prefix=f"{who}-", dir=tmp))
        self.out = self.d / "out"
        self.out.mkdir()
        self.proc = None

    def start(self, options, command=None, env=None, inherit=None):
        self.named = "--fdname" in options
        argv = RUNNERS[self.who] + [o.replace("D/", f"{self.d}/") for o in options]
        argv += command if command is not None else PROBE + [str(self.out)]
        full_env = dict(os.environ, **(env or {}))
        if inherit is None:
            self.proc = subprocess.Popen(argv, env=full_env, stderr=subprocess.PIPE)
            return self
        # A socket passed to the runner itself: descriptor 3, LISTEN_PID its own pid.
        def at_three():
            os.dup2(inherit.fileno(), 3)
        shell = 'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=inh exec "$@"'
        self.proc = subprocess.Popen(["sh", "-c", shell, "sh"] + argv, env=full_env,
                                     preexec_fn=at_three, close_fds=False, stderr=subprocess.PIPE)
        return self

    def records(self, count=1):
        wait_until(lambda: len(glob.glob(f"{self.out}/*.json")) >= count, f"{self.who}: {count} probe record(s)")
        time.sleep(0.05)
        return [self.normal(json.load(open(f))) for f in sorted(glob.glob(f"{self.out}/*.json"))]

    def started(self):
        return len(glob.glob(f"{self.out}/*.start"))

    def normal(self, rec):
        """What the server sees, without what differs by design: the directory, the pid,
        usock's own USOCK_* variables, and the runner's own descriptors 0-2."""
        text = json.dumps(rec).replace(str(self.d), "D")
        rec = json.loads(text)
        env = rec["env"]
        assert env.pop("LISTEN_PID", str(rec["pid"])) == str(rec["pid"])
        env = {k: v for k, v in env.items() if not k.startswith("USOCK_")}
        if not self.named:
            # Without --fdname systemd sets no LISTEN_FDNAMES; usock names each socket
            # (checked in test_names_without_fdname_inherited_names_and_paths).
            names = env.pop("LISTEN_FDNAMES", None)
            assert self.who == "usock" or names is None
        fds = {k: v for k, v in rec["fds"].items() if int(k) > 2 or v.get("kind") == "socket"}
        return {"env": env, "fds": fds, "served": rec["served"]}

    def finish(self):
        """The status once the command ended by itself (the runner with it)."""
        return self.stop(signal=None)

    def stop(self, signal=signal.SIGTERM):
        if signal is not None and self.proc.poll() is None:
            self.proc.send_signal(signal)
        self.proc.wait(timeout=20)
        self.err = self.proc.stderr.read().decode()
        return self.proc.returncode


def connect(path, kind=socket.SOCK_STREAM, timeout=10.0):
    """A socket connected to `path`, once it is there and listening (a socket is bound, then
    listened on: a connection in between is refused)."""
    end = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, kind)
        s.settimeout(timeout)
        try:
            s.connect(str(path))
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


def talk(path, data, kind=socket.SOCK_STREAM, timeout=10.0):
    """Connects to `path` once it is there, sends `data`, half-closes, returns the reply."""
    if kind == socket.SOCK_DGRAM:
        wait_until(lambda: os.path.exists(path), f"socket {path}")
        s = socket.socket(socket.AF_UNIX, kind)
        s.sendto(data, str(path))
        s.close()
        return None
    s = connect(path, kind, timeout)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while chunk := s.recv(4096):
        reply += chunk
    s.close()
    return reply


def both(tmp, scenario):
    """Runs `scenario(run)` under each runner; returns {runner: result}."""
    return {who: scenario(Run(who, tmp)) for who in ("systemd", "usock")}


# Rows for SECURITY.md (conftest.py writes them when the test passed): kind, guarantee, times.
SECURITY_ROWS = {
    "test_several_sockets_names_setenv_and_first_connection_start": (
        "attack", "usock run -l/--path: every well-known socket checked, 0600, removed at exit "
        "(systemd-socket-activate leaves its sockets, 0644)", 1),
    "test_allow_against_a_real_other_user[None-False]": (
        "attack", "usock run --accept, default policy: a peer of another real uid is closed before "
        "a byte is read, reported with its uid and counted", 1),
    "test_allow_against_a_real_other_user[self-False]": (
        "attack", "usock run --accept --allow self: a peer of another real uid is refused", 1),
    "test_group_by_name_shares_the_directory": (
        "attack", "usock run --group NAME: directory 0710 and socket 0660 of that group; an "
        "unknown group is bad usage with nothing made", 1),
    "test_accept_stops_at_max_instances": (
        "fault", "usock run --accept: --max-instances bounds the commands running at once", 1),
    "test_accept_instances_end_with_the_runner[SIGTERM]": (
        "fault", "usock run --accept: SIGTERM reaches every instance, the sockets are removed", 1),
    "test_accept_instances_end_with_the_runner[SIGKILL]": (
        "fault", "usock run --accept: SIGKILL of the runner takes every instance with it", 1),
    "test_a_flood_of_refused_peers_does_not_fill_standard_error": (
        "attack", "usock run --accept: 300 connections from a refused real uid: 10 lines on "
        "stderr, then counts; the total at exit", 1),
    "test_accept_a_command_that_cannot_start_loses_one_connection_not_the_service": (
        "fault", "usock run --accept: a command that cannot start costs its connection, not the "
        "service", 1),
    "test_a_flood_of_failing_commands_does_not_fill_standard_error": (
        "attack", "usock run --accept: 40 connections whose commands fail: 10 lines on stderr, "
        "then counts; the total at exit", 1),
    "test_accept_leaves_an_inherited_socket_blocking_as_it_came": (
        "fault", "usock run --accept on a socket inherited through LISTEN_FDS: its flags (shared "
        "with the manager) are as they came when usock run ends", 1),
    "test_bad_usage_is_status_2": (
        "attack", "usock run: a port, host:port, @abstract, vsock: or a bad --fdname is bad usage "
        "(2) before anything is made", 1),
}


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="usock-oracle-")
    os.chmod(d, 0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@needs_ssa
def test_several_sockets_names_setenv_and_first_connection_start(tmp):
    def scenario(r):
        r.start(["-l", "D/a.sock", "-l", "D/b.sock", "--fdname", "one:two", "-E", "PROBE_SET=x",
                 "-E", "PROBE_PASS", "-E", "PROBE_UNSET"], env={"PROBE_PASS": "from-env"})
        wait_until(lambda: os.path.exists(r.d / "b.sock"), "b.sock")
        time.sleep(0.5)
        assert r.started() == 0, f"{r.who} started the server before the first connection"
        extra = None
        if r.who == "usock":
            extra = stat.S_IMODE(os.stat(r.d / "a.sock").st_mode)
        reply = talk(r.d / "b.sock", b"hello")
        rec = r.records()
        status = r.finish()
        left = sorted(p.name for p in r.d.glob("*.sock"))
        return rec, reply, status, extra, left

    res = both(tmp, scenario)
    assert res["usock"][:3] == res["systemd"][:3]
    rec = res["usock"][0][0]
    assert rec["env"]["LISTEN_FDS"] == "2" and rec["env"]["LISTEN_FDNAMES"] == "one:two"
    assert rec["env"]["PROBE_SET"] == "x" and rec["env"]["PROBE_PASS"] == "from-env"
    assert rec["env"]["PROBE_UNSET"] == ""
    assert rec["fds"]["3"]["name"] == "D/a.sock" and rec["fds"]["4"]["name"] == "D/b.sock"
    assert rec["served"] == {"fd": 4, "data": "hello"} and res["usock"][1] == b"probe:hello"
    # usock's extras: the socket 0600, and nothing left once it is done (systemd leaves both).
    assert res["usock"][3] == 0o600
    assert res["usock"][4] == [] and res["systemd"][4] == ["a.sock", "b.sock"]


@needs_ssa
@pytest.mark.parametrize("kind", ["datagram", "seqpacket"])
def test_datagram_and_seqpacket(tmp, kind):
    option, sock_type = {"datagram": ("-d", socket.SOCK_DGRAM),
                         "seqpacket": ("--seqpacket", socket.SOCK_SEQPACKET)}[kind]

    def scenario(r):
        r.start([option, "-l", "D/k.sock"])
        reply = talk(r.d / "k.sock", b"payload", sock_type)
        rec = r.records()
        r.finish()
        return rec, reply

    res = both(tmp, scenario)
    assert res["usock"] == res["systemd"]
    rec = res["usock"][0][0]
    assert rec["fds"]["3"]["type"] == {"datagram": "dgram", "seqpacket": "seqpacket"}[kind]
    assert rec["served"]["data"] == "payload"


@needs_ssa
def test_accept_one_instance_per_connection(tmp):
    def scenario(r):
        r.start(["-a", "-l", "D/acc.sock", "--fdname", "conn"])
        replies = [talk(r.d / "acc.sock", data) for data in (b"first", b"second")]
        recs = sorted(r.records(2), key=lambda rec: rec["served"]["data"])
        r.stop()
        return recs, replies

    res = both(tmp, scenario)
    assert res["usock"] == res["systemd"]
    recs, replies = res["usock"]
    assert replies == [b"probe:first", b"probe:second"]
    for rec in recs:
        assert rec["env"]["LISTEN_FDS"] == "1" and rec["env"]["LISTEN_FDNAMES"] == "conn"
        assert rec["fds"]["3"]["listening"] is False and rec["fds"]["3"]["name"] == "D/acc.sock"


@needs_ssa
def test_accept_on_two_listeners_passes_every_fdname_as_systemd_does(tmp):
    """With --accept, each instance has one descriptor; --fdname's names all go to each, as
    systemd-socket-activate passes them (the man page says so)."""
    def scenario(r):
        r.start(["-a", "-l", "D/one.sock", "-l", "D/two.sock", "--fdname", "x:y"])
        replies = [talk(r.d / f"{n}.sock", n.encode()) for n in ("one", "two")]
        recs = sorted(r.records(2), key=lambda rec: rec["served"]["data"])
        r.stop()
        return recs, replies

    res = both(tmp, scenario)
    assert res["usock"] == res["systemd"]
    recs, replies = res["usock"]
    assert replies == [b"probe:one", b"probe:two"]
    for rec in recs:
        assert rec["env"]["LISTEN_FDS"] == "1" and rec["env"]["LISTEN_FDNAMES"] == "x:y"
    # The connection came through the listener it was made to.
    assert [rec["fds"]["3"]["name"] for rec in recs] == ["D/one.sock", "D/two.sock"]


@needs_ssa
def test_inetd_with_cat(tmp):
    def scenario(r):
        r.start(["--inetd", "-a", "-l", "D/cat.sock"], command=["cat"])
        replies = [talk(r.d / "cat.sock", b"meow %d" % i) for i in range(2)]
        r.stop()
        return replies

    res = both(tmp, scenario)
    assert res["usock"] == res["systemd"] == [b"meow 0", b"meow 1"]


@needs_ssa
def test_inetd_probe_sees_the_connection_on_standard_input_and_output(tmp):
    def scenario(r):
        r.start(["--inetd", "-a", "-l", "D/i.sock"], command=PROBE + [str(r.out), "--no-serve"])
        s = connect(r.d / "i.sock")
        rec = r.records()
        s.close()
        r.stop()
        return rec

    res = both(tmp, scenario)
    assert res["usock"] == res["systemd"]
    rec = res["usock"][0]
    assert rec["fds"]["0"]["name"] == rec["fds"]["1"]["name"] == "D/i.sock"
    assert "3" not in rec["fds"] and not any(k.startswith("LISTEN_") for k in rec["env"])


@needs_ssa
def test_a_socket_inherited_through_listen_fds_comes_first(tmp):
    def scenario(r):
        inh = socket.socket(socket.AF_UNIX)
        inh.bind(str(r.d / "inh.sock"))
        inh.listen()
        r.start(["-l", "D/own.sock", "--fdname", "inh:own"], inherit=inh)
        inh.close()
        wait_until(lambda: os.path.exists(r.d / "own.sock"), "own.sock")
        reply = talk(r.d / "inh.sock", b"to the inherited one")
        rec = r.records()
        r.finish()
        return rec, reply

    res = both(tmp, scenario)
    assert res["usock"] == res["systemd"]
    rec = res["usock"][0][0]
    assert rec["env"]["LISTEN_FDS"] == "2" and rec["env"]["LISTEN_FDNAMES"] == "inh:own"
    assert rec["fds"]["3"]["name"] == "D/inh.sock" and rec["fds"]["4"]["name"] == "D/own.sock"
    assert rec["served"] == {"fd": 3, "data": "to the inherited one"}


# usock's own behaviour, on top of systemd-socket-activate's.

def usock(*args, **kw):
    return subprocess.run([USOCK, "run", *args], capture_output=True, text=True, timeout=20, **kw)


def test_names_without_fdname_inherited_names_and_paths(tmp):
    """Without --fdname: each socket's name (a private one's --name, a path's file name, an
    inherited one's from LISTEN_FDNAMES); USOCK_PATH_<fd> for each socket usock bound."""
    d = Path(tmp)
    os.chmod(d, 0o700)
    inh = socket.socket(socket.AF_UNIX)
    inh.bind(str(d / "inh.sock"))
    inh.listen()
    script = 'echo "$LISTEN_FDS|$LISTEN_FDNAMES|$USOCK_PATH|$USOCK_PATH_4|$USOCK_PATH_5|$USOCK_PATH_3"; ' \
             'stat -c %a "$USOCK_DIR"'
    p = subprocess.run(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=inh exec "$@"', "sh",
                        USOCK, "run", "--path", f"{d}/p.sock", "--name", "priv", "--parent", str(d),
                        "sh", "-c", script], preexec_fn=lambda: os.dup2(inh.fileno(), 3), close_fds=False,
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    line, mode = p.stdout.splitlines()
    fds, names, first, p4, p5, p3 = line.split("|")
    assert (fds, names) == ("3", "inh:p.sock:priv")
    assert first == p4 == f"{d}/p.sock" and p5.endswith("/priv") and p3 == ""
    assert mode == "700"
    assert not os.path.exists(p5) and not os.path.exists(p4)


def test_bad_usage_is_status_2(tmp):
    for args in (["--now", "-a", "-l", f"{tmp}/x"], ["-l", "8080"], ["-l", "localhost:80"],
                 ["-l", "@abstract"], ["-l", "vsock:2:80"], ["-d", "-a", "-l", f"{tmp}/x"],
                 ["--parent", tmp, "-l", f"{tmp}/x"], ["--fdname", "a\tb", "-l", f"{tmp}/x"],
                 # no policy can admit the overflow ids or (uid_t)-1: naming them is a mistake
                 ["-a", "--allow", "uid:0,65534", "-l", f"{tmp}/x"],
                 ["-a", "--allow", "uid:4294967295", "-l", f"{tmp}/x"],
                 ["-a", "--allow", "group:65534", "-l", f"{tmp}/x"]):
        p = usock(*args, "true")
        assert p.returncode == 2, (args, p.stderr)
        assert not os.path.exists(f"{tmp}/x")


def test_now_starts_at_once(tmp):
    os.chmod(tmp, 0o700)
    p = usock("--now", "-l", "./n.sock", "sh", "-c", 'echo "$LISTEN_FDS $USOCK_PATH"', cwd=tmp)
    assert (p.returncode, p.stdout) == (0, f"1 {tmp}/n.sock\n"), p.stderr  # a relative path too
    assert not os.path.exists(f"{tmp}/n.sock")


def test_accept_stops_at_max_instances(tmp):
    os.chmod(tmp, 0o700)
    out = Path(tmp) / "out"
    out.mkdir()
    r = subprocess.Popen([USOCK, "run", "-a", "--max-instances", "1", "-l", f"{tmp}/m.sock", *PROBE, str(out)],
                         stderr=subprocess.PIPE)
    wait_until(lambda: os.path.exists(f"{tmp}/m.sock"), "m.sock")
    held = connect(f"{tmp}/m.sock")  # the first instance waits for our EOF
    wait_until(lambda: len(list(out.glob("*.start"))) == 1, "the first instance")
    second = connect(f"{tmp}/m.sock")
    second.sendall(b"later")
    second.shutdown(socket.SHUT_WR)
    time.sleep(0.7)
    assert len(list(out.glob("*.start"))) == 1, "a second instance beyond --max-instances 1"
    held.shutdown(socket.SHUT_WR)
    second.settimeout(10)
    assert second.recv(100) == b"probe:later"
    r.send_signal(signal.SIGTERM)
    assert r.wait(timeout=10) == 128 + signal.SIGTERM
    assert not os.path.exists(f"{tmp}/m.sock")


def connect_as(uid, gid, path, data):
    """A client process running as uid/gid: what it got back ("" when closed at once)."""
    code = ("import socket,sys,time\n"
            "for _ in range(500):\n"
            " s=socket.socket(socket.AF_UNIX);s.settimeout(10)\n"
            " try: s.connect(sys.argv[1]); break\n"
            " except ConnectionRefusedError: s.close(); time.sleep(0.02)\n"
            "try:\n s.sendall(sys.argv[2].encode());s.shutdown(socket.SHUT_WR);print(s.recv(100).decode())\n"
            "except OSError as e: print('error', e.errno)\n")

    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return subprocess.run([OTHER_USERS_PYTHON, "-c", code, str(path), data], preexec_fn=drop,
                          capture_output=True, text=True, timeout=20).stdout.strip()


@needs_root
@pytest.mark.parametrize("allow,admitted", [(None, False), (f"uid:0,{OTHER_UID}", True),
                                            (f"group:{OTHER_UID}", True), ("self", False)])
def test_allow_against_a_real_other_user(tmp, allow, admitted):
    """A directory shared with the other user's group (--group), so the kernel lets it connect;
    the policy alone decides. A refused peer is closed at once and reported with its uid."""
    out = Path(tmp) / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    args = ["-a", "--group", str(OTHER_UID), "--parent", tmp, "--name", "s"]
    args += ["--allow", allow] if allow else []
    # The runner (root) is a member of the group it shares with, as the library requires.
    r = subprocess.Popen([USOCK, "run", *args, *PROBE, str(out)], stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: os.setgroups([0, OTHER_UID]))
    wait_until(lambda: glob.glob(f"{tmp}/usock-*/s"), "the shared socket")
    sock = glob.glob(f"{tmp}/usock-*/s")[0]
    # The socket is bound 0600 first, then given to the group (before it listens).
    shared = lambda: (stat.S_IMODE(os.stat(sock).st_mode), os.stat(sock).st_gid) == (0o660, OTHER_UID)
    wait_until(shared, "the socket to be 0660 and the group's")
    assert stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode) == 0o710
    got = connect_as(OTHER_UID, OTHER_UID, sock, "other")
    if admitted:
        assert got == "probe:other"
    else:
        assert got in ("", "error 32", "error 104"), got  # closed at once: EOF, EPIPE or ECONNRESET
        assert talk(sock, b"root") == b"probe:root"  # root still served
    r.send_signal(signal.SIGTERM)
    assert r.wait(timeout=10) == 128 + signal.SIGTERM
    err = r.stderr.read()
    if admitted:
        assert "refused" not in err, err
    else:
        assert f"uid {OTHER_UID}" in err and "1 connection(s) refused" in err, err
        assert len(list(out.glob("*.start"))) == 1  # only root's connection started the command
    assert not os.path.exists(os.path.dirname(sock))


@needs_root
def test_a_flood_of_refused_peers_does_not_fill_standard_error(tmp):
    """A peer the policy refuses, connecting in a loop, gets each connection counted but only
    the first ten reported one by one: standard error stays bounded (it was one line per
    refusal, megabytes a second), and the total still comes at exit."""
    out = Path(tmp) / "out"
    out.mkdir()
    r = subprocess.Popen([USOCK, "run", "-a", "--group", str(OTHER_UID), "--allow", "self", "--parent", tmp,
                          "--name", "s", *PROBE, str(out)], stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: os.setgroups([0, OTHER_UID]))
    wait_until(lambda: glob.glob(f"{tmp}/usock-*/s"), "the shared socket")
    sock = glob.glob(f"{tmp}/usock-*/s")[0]
    flood = ("import socket,sys\n"
             "for _ in range(300):\n"
             " s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);s.recv(1);s.close()\n")

    def drop():
        os.setgroups([])
        os.setgid(OTHER_UID)
        os.setuid(OTHER_UID)
    subprocess.run([OTHER_USERS_PYTHON, "-c", flood, sock], preexec_fn=drop, check=True, timeout=60)
    r.send_signal(signal.SIGTERM)
    assert r.wait(timeout=10) == 128 + signal.SIGTERM
    lines = r.stderr.read().splitlines()
    assert sum("refused: a connection from uid" in line for line in lines) == 10, lines[:3]
    assert len(lines) <= 13, len(lines)
    assert lines[-1] == "usock: 300 connection(s) refused by the --allow policy", lines[-1]
    assert list(out.glob("*.start")) == []


def test_accept_a_command_that_cannot_start_loses_one_connection_not_the_service(tmp):
    """Under --accept, a command that cannot be executed for one connection (here: made
    non-executable after usock run started) costs that connection only, as with
    systemd-socket-activate; the next connection, once it can run again, is served."""
    os.chmod(tmp, 0o700)
    script = Path(tmp) / "serve"
    script.write_text("#!/bin/sh\necho served\n")
    script.chmod(0o700)
    r = subprocess.Popen([USOCK, "run", "-a", "--inetd", "-l", f"{tmp}/s.sock", str(script)],
                         stderr=subprocess.PIPE, text=True)
    wait_until(lambda: os.path.exists(f"{tmp}/s.sock"), "s.sock")
    script.chmod(0o600)
    assert talk(f"{tmp}/s.sock", b"") == b""  # closed without a reply
    assert r.poll() is None, "usock run ended with the one connection it could not serve"
    script.chmod(0o700)
    assert talk(f"{tmp}/s.sock", b"") == b"served\n"
    r.send_signal(signal.SIGTERM)
    assert r.wait(timeout=10) == 128 + signal.SIGTERM
    assert "serve" in r.stderr.read()  # the failure was reported


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_accept_instances_end_with_the_runner(tmp, how):
    """SIGTERM to usock run --accept reaches every running instance, and usock exits 143 once
    they ended; after a SIGKILL of usock run, its instances get SIGKILL (parent-death signal)."""
    os.chmod(tmp, 0o700)
    out = Path(tmp) / "out"
    out.mkdir()
    r = subprocess.Popen([USOCK, "run", "-a", "-l", f"{tmp}/t.sock", *PROBE, str(out)], stderr=subprocess.PIPE)
    wait_until(lambda: os.path.exists(f"{tmp}/t.sock"), "t.sock")
    held = []
    for _ in range(2):
        held.append(connect(f"{tmp}/t.sock"))  # each instance waits for our EOF
    wait_until(lambda: len(list(out.glob("*.start"))) == 2, "two instances")
    pids = [int(p.stem) for p in out.glob("*.start")]
    r.send_signal(getattr(signal, how))
    status = r.wait(timeout=10)
    if how == "SIGTERM":
        assert status == 128 + signal.SIGTERM
        assert not os.path.exists(f"{tmp}/t.sock")
        # Instances ended by the SIGTERM usock passed on are no failure to report.
        assert b"ended with status" not in r.stderr.read()
    wait_until(lambda: not any(alive(p) for p in pids), "the instances to end")
    assert list(out.glob("*.json")) == []  # none of them got to finish its work


def test_accept_a_stop_sent_to_the_whole_group_is_no_failure(tmp):
    """SIGTERM to usock run --accept's process group, as a service manager stops a control group:
    the instances die of it before usock passed it on; usock still exits 143 and reports no
    failure (it reaped them first and reported "ended with status 143")."""
    os.chmod(tmp, 0o700)
    out = Path(tmp) / "out"
    out.mkdir()
    r = subprocess.Popen([USOCK, "run", "-a", "-l", f"{tmp}/g.sock", *PROBE, str(out)], stderr=subprocess.PIPE,
                         start_new_session=True)
    wait_until(lambda: os.path.exists(f"{tmp}/g.sock"), "g.sock")
    held = [connect(f"{tmp}/g.sock") for _ in range(3)]  # each instance waits for our EOF
    wait_until(lambda: len(list(out.glob("*.start"))) == 3, "three instances")
    os.killpg(r.pid, signal.SIGTERM)
    assert r.wait(timeout=10) == 128 + signal.SIGTERM
    assert b"ended with status" not in r.stderr.read()
    assert not os.path.exists(f"{tmp}/g.sock")
    del held


def test_accept_on_an_inherited_socket_that_cannot_accept_ends_with_18(tmp):
    """An inherited datagram socket under --accept: accept() fails; usock run reports it and
    exits 18 (systemd-socket-activate exits too), instead of looping on it."""
    os.chmod(tmp, 0o700)
    inh = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    inh.bind(f"{tmp}/dg.sock")
    r = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", USOCK, "run", "-a",
                          "-l", f"{tmp}/s.sock", "true"], preexec_fn=lambda: os.dup2(inh.fileno(), 3),
                         close_fds=False, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: os.path.exists(f"{tmp}/s.sock"), "s.sock")
    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"x", f"{tmp}/dg.sock")
    assert r.wait(timeout=10) == 18
    assert "cannot accept" in r.stderr.read()
    assert not os.path.exists(f"{tmp}/s.sock")


def test_accept_leaves_an_inherited_socket_blocking_as_it_came(tmp):
    """usock run --accept makes its listeners non-blocking while it accepts; an inherited one
    (LISTEN_FDS) shares its flags with the manager that passed it, which keeps using it after
    usock run ends: they are as they came (it stayed non-blocking before)."""
    os.chmod(tmp, 0o700)
    inh = socket.socket(socket.AF_UNIX)
    inh.bind(f"{tmp}/inh.sock")
    inh.listen()
    assert inh.getblocking()
    r = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "sh", USOCK, "run", "-a",
                          "--inetd", "cat"], preexec_fn=lambda: os.dup2(inh.fileno(), 3),
                         close_fds=False, stderr=subprocess.PIPE, text=True)
    assert talk(f"{tmp}/inh.sock", b"ping") == b"ping"
    r.send_signal(signal.SIGTERM)
    assert r.wait(timeout=10) == 128 + signal.SIGTERM, r.stderr.read()
    flags = fcntl.fcntl(inh.fileno(), fcntl.F_GETFL)
    assert not flags & os.O_NONBLOCK, "the inherited listener was left non-blocking"


def test_a_flood_of_failing_commands_does_not_fill_standard_error(tmp):
    """An admitted peer can make each command fail (by hanging up, a command dies of SIGPIPE):
    the first ten failures are reported one by one, the rest counted, so that a peer cannot
    fill usock's standard error; the total comes at exit."""
    os.chmod(tmp, 0o700)
    r = subprocess.Popen([USOCK, "run", "-a", "--inetd", "-l", f"{tmp}/f.sock", "false"],
                         stderr=subprocess.PIPE, text=True)
    wait_until(lambda: os.path.exists(f"{tmp}/f.sock"), "f.sock")
    for _ in range(40):
        assert talk(f"{tmp}/f.sock", b"") == b""
    time.sleep(0.5)  # the last commands end and are reaped
    r.send_signal(signal.SIGTERM)
    assert r.wait(timeout=10) == 128 + signal.SIGTERM
    lines = r.stderr.read().splitlines()
    assert sum("ended with status 1" in line and "more" not in line for line in lines) == 10, lines
    assert len(lines) <= 13, lines
    assert lines[-1] == "usock: 40 command(s) ended with a failure status", lines


def test_a_single_failing_command_is_also_totalled_at_exit(tmp):
    """The total comes at exit whatever the number, as for refusals (it came only after more
    than ten, while the documentation promises it)."""
    os.chmod(tmp, 0o700)
    r = subprocess.Popen([USOCK, "run", "-a", "--inetd", "-l", f"{tmp}/f.sock", "false"],
                         stderr=subprocess.PIPE, text=True)
    wait_until(lambda: os.path.exists(f"{tmp}/f.sock"), "f.sock")
    assert talk(f"{tmp}/f.sock", b"") == b""
    time.sleep(0.5)  # the command ends and is reaped
    r.send_signal(signal.SIGTERM)
    assert r.wait(timeout=10) == 128 + signal.SIGTERM
    lines = r.stderr.read().splitlines()
    assert sum("ended with status 1" in line for line in lines) == 1, lines
    assert lines[-1] == "usock: 1 command(s) ended with a failure status", lines


@needs_root
def test_group_by_name_shares_the_directory(tmp):
    """--group takes a group name (looked up) as well as a gid: directory 0710 and socket 0660,
    both the group's; an unknown group is bad usage."""
    import grp
    gid = grp.getgrnam("daemon").gr_gid
    p = usock("--group", "daemon", "--parent", tmp, "--name", "s", "sh", "-c",
              'stat -c "%a %g" "$USOCK_DIR" "$USOCK_PATH"', preexec_fn=lambda: os.setgroups([0, gid]))
    assert (p.returncode, p.stdout.split("\n")[:2]) == (0, [f"710 {gid}", f"660 {gid}"]), p.stderr
    p = usock("--group", "no-such-group-here", "--parent", tmp, "true")
    assert p.returncode == 2 and "no such group" in p.stderr
    assert os.listdir(tmp) == []
