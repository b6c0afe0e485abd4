"""The Python binding, tested as a user sees it: real connections, mode bits on disk, what is
left behind, open descriptors, a second user with privileges really dropped."""

import asyncio
import gc
import os
import re
import socket
import socketserver
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from _support import figure_writer, mode

import usock
from usock import _lib

REPO = Path(__file__).resolve().parents[3]
NOBODY = 65534


figure = figure_writer("test_usock.py")


def run_python(code, extra_env=None, **kw):
    """Runs code in a fresh interpreter with this usock importable; returns stdout."""
    env = dict(os.environ, **(extra_env or {}))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(usock.__file__).parent.parent)] + sys.path)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env, capture_output=True, text=True, timeout=60, **kw
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_listen_client_exchanges_bytes_and_cleanup_leaves_nothing(scratch):
    with usock.listen(parent=scratch) as server:
        assert server.path == os.path.join(server.dir.path, "sock")
        assert Path(server.dir.path).parent == scratch
        assert mode(server.dir.path) == 0o700
        assert mode(server.path) == 0o600
        assert stat.S_ISSOCK(os.lstat(server.path).st_mode)
        assert isinstance(server.socket, socket.socket)
        assert server.fileno() == server.socket.fileno()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(server.path)
            conn, _ = server.socket.accept()
            with conn:
                client.sendall(b"ping")
                assert conn.recv(4) == b"ping"
                conn.sendall(b"pong")
                assert client.recv(4) == b"pong"
    assert server.socket.fileno() == -1
    assert list(scratch.iterdir()) == []


def test_automatic_location():
    with usock.listen() as server:
        name = os.path.basename(server.dir.path)
        assert re.fullmatch(r"usock-[a-z2-9]{13}", name)
        assert mode(server.dir.path) == 0o700
    assert not os.path.exists(server.dir.path)


def test_private_dir_socket_path_for_code_that_binds_itself(scratch):
    with usock.private_dir(parent=scratch) as d:
        assert os.path.isdir(d.path)  # exists as soon as the call returns
        path = d.socket_path("api.sock")
        assert path == os.path.join(d.path, "api.sock")
        assert d.socket_path() == os.path.join(d.path, "sock")
        own = socket.socket(socket.AF_UNIX)
        own.bind(path)
        own.listen()
        s = d.bind("second", backlog=3)
        assert mode(os.path.join(d.path, "second")) == 0o600
    own.close()
    s.close()
    assert list(scratch.iterdir()) == []
    assert d.closed
    d.cleanup()  # a second cleanup is harmless
    with pytest.raises(ValueError, match="already cleaned up"):
        d.socket_path()


def test_adopt_a_socket_bound_by_asyncio(scratch):
    async def main():
        with usock.private_dir(scratch) as d:
            path = d.socket_path("api.sock")
            server = await asyncio.start_unix_server(lambda r, w: w.close(), path=path)
            os.chmod(path, 0o777)  # as a permissive umask would have left it
            assert mode(path) == 0o777
            d.adopt("api.sock")
            assert mode(path) == 0o600
            Path(d.path, "plain").write_text("x")
            with pytest.raises(usock.InvalidArgumentError, match="not a socket"):
                d.adopt("plain")
            os.unlink(os.path.join(d.path, "plain"))
            with pytest.raises(usock.Error) as info:
                d.adopt("missing")
            assert info.value.errno == __import__("errno").ENOENT
            server.close()
            await server.wait_closed()

    asyncio.run(main())
    assert list(scratch.iterdir()) == []


def test_datagram_and_seqpacket(scratch):
    with usock.private_dir(scratch) as d:
        server = d.bind("dgram", type=socket.SOCK_DGRAM)
        assert server.type == socket.SOCK_DGRAM
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            client.sendto(b"hi", d.socket_path("dgram"))
            assert server.recv(2) == b"hi"
        seq = d.bind("seq", type=socket.SOCK_SEQPACKET)
        assert seq.type == socket.SOCK_SEQPACKET
        server.close()
        seq.close()
    assert list(scratch.iterdir()) == []


def test_modes_whatever_the_umask(scratch):
    for mask in (0o000, 0o022, 0o077, 0o777):
        out = run_python(
            f"""
            import os, stat, usock
            os.umask({mask})
            with usock.listen(parent={str(scratch)!r}) as s:
                print(oct(stat.S_IMODE(os.stat(s.dir.path).st_mode)),
                      oct(stat.S_IMODE(os.stat(s.path).st_mode)), oct(os.umask(0)))
            """
        )
        assert out.split() == ["0o700", "0o600", oct(mask)]
    assert list(scratch.iterdir()) == []


# Errors: each class raised by a real failing case -------------------------------------------


def test_unsafe_directory_error(scratch):
    world = scratch / "world"
    world.mkdir()
    world.chmod(0o777)
    with pytest.raises(usock.UnsafeDirectoryError) as info:
        usock.listen(parent=world)
    e = info.value
    assert isinstance(e, usock.Error) and isinstance(e, OSError)
    assert e.status == _lib.ERR_UNSAFE
    assert e.errno is None
    assert str(world) in str(e) and "sticky" in str(e)
    assert list(world.iterdir()) == []


def test_path_too_long_error(scratch):
    deep = scratch / ("d" * 100)
    deep.mkdir()
    with pytest.raises(usock.PathTooLongError, match="the limit here is 107"):
        usock.private_dir(deep)
    assert list(deep.iterdir()) == []
    with usock.private_dir(scratch) as d:
        with pytest.raises(usock.PathTooLongError) as info:
            d.socket_path("n" * 120)
        assert info.value.status == _lib.ERR_TOO_LONG
        with pytest.raises(usock.PathTooLongError):
            d.bind("n" * 120)


def test_name_in_use_error(scratch):
    with usock.private_dir(scratch) as d:
        first = d.bind()
        with pytest.raises(usock.NameInUseError) as info:
            d.bind()
        assert info.value.errno == __import__("errno").EADDRINUSE
        Path(d.path, "notes").write_text("keep")
        with pytest.raises(usock.NameInUseError, match="a regular file"):
            d.bind("notes")
        assert Path(d.path, "notes").read_text() == "keep"
        os.unlink(os.path.join(d.path, "notes"))
        first.close()


def test_system_error_keeps_errno(scratch):
    with pytest.raises(usock.Error) as info:
        usock.private_dir(scratch / "missing")
    assert info.value.errno == __import__("errno").ENOENT
    assert info.value.status == _lib.ERR_SYSTEM
    assert str(scratch / "missing") in str(info.value)


def test_errors_follow_oserror_conventions(scratch):
    import errno
    import pickle

    asked = scratch / "missing" / "deeper"
    with pytest.raises(FileNotFoundError) as info:       # also a usock.Error
        usock.private_dir(asked)
    e = info.value
    assert isinstance(e, usock.Error) and type(e).__name__ == "FileNotFoundError"
    assert (e.errno, e.strerror, e.filename) == (errno.ENOENT, os.strerror(errno.ENOENT), str(asked))
    assert str(e) == f"cannot use {asked} as a parent: {scratch / 'missing'} does not exist"
    again = pickle.loads(pickle.dumps(e))
    assert isinstance(again, FileNotFoundError) and str(again) == str(e)

    world = scratch / "world"
    world.mkdir()
    world.chmod(0o777)
    with pytest.raises(usock.UnsafeDirectoryError) as info:
        usock.private_dir(world)
    assert not isinstance(info.value, PermissionError)    # unsafe is not a permission error
    assert info.value.errno is None and info.value.filename == str(world)
    assert info.value.strerror == "directory failed a safety check"

    with usock.private_dir(scratch) as d:
        with pytest.raises(usock.PathTooLongError) as info:
            d.socket_path("n" * 120)
        assert info.value.errno == errno.ENAMETOOLONG
        assert info.value.filename == os.path.join(d.path, "n" * 120)
        d.bind("taken").close()
        with pytest.raises(usock.NameInUseError) as info:
            d.bind("taken")
        assert info.value.errno == errno.EADDRINUSE
        assert info.value.filename == os.path.join(d.path, "taken")


def test_each_error_is_named_for_the_class_a_user_catches(scratch):
    # As the standard library raises them: the built-in class's name in a traceback, the
    # errno a socket call gives, a message that names the path; still a usock.Error.
    import errno
    import pickle
    import socket
    import traceback

    def failure(call):
        with pytest.raises(usock.Error) as info:
            call()
        return info.value

    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(scratch / "dead.sock"))                 # bound, never listening
    (scratch / "file").write_text("")
    world = scratch / "world"
    world.mkdir()
    world.chmod(0o777)
    with usock.listen_at(scratch / "app.sock"), usock.private_dir(scratch) as d:
        d.bind("taken").close()
        cases = [
            (lambda: usock.connect(scratch / "none"), "FileNotFoundError", errno.ENOENT,
             FileNotFoundError, "nothing is there"),
            (lambda: usock.connect(scratch / "dead.sock"), "ConnectionRefusedError",
             errno.ECONNREFUSED, ConnectionRefusedError, "nobody is listening"),
            (lambda: usock.connect(scratch / "file"), "ConnectionRefusedError",
             errno.ECONNREFUSED, ConnectionRefusedError, "not a socket"),
            (lambda: usock.private_dir(scratch / "missing"), "FileNotFoundError", errno.ENOENT,
             FileNotFoundError, "does not exist"),
            (lambda: d.adopt("absent"), "FileNotFoundError", errno.ENOENT, FileNotFoundError,
             "absent"),
            (lambda: usock.listen_at(scratch / "app.sock"), "NameInUseError", errno.EADDRINUSE,
             usock.NameInUseError, "a server answers there"),
            (lambda: d.bind("taken"), "NameInUseError", errno.EADDRINUSE, usock.NameInUseError,
             "the name is taken"),
            (lambda: d.socket_path("n" * 120), "PathTooLongError", errno.ENAMETOOLONG,
             usock.PathTooLongError, "the limit here is"),
            (lambda: usock.private_dir(world), "UnsafeDirectoryError", None,
             usock.UnsafeDirectoryError, "mode 0777"),
        ]
        for call, name, code, catch, words in cases:
            e = failure(call)
            assert (type(e).__name__, e.errno) == (name, code), str(e)
            assert isinstance(e, catch) and isinstance(e, OSError)
            assert words in str(e)
            last = traceback.format_exception_only(type(e), e)[-1]
            assert last.startswith(f"usock.{name}: "), last
            again = pickle.loads(pickle.dumps(e))
            assert type(again) is type(e) and str(again) == str(e)
    dead.close()


def test_a_refused_permission_is_a_permission_error(scratch):
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    out = run_python(
        f"""
        import os, usock
        os.setgroups([]); os.setgid({NOBODY}); os.setuid({NOBODY})
        try:
            usock.private_dir({str(scratch)!r})   # root's 0755 directory
        except PermissionError as e:
            print(type(e).__name__, isinstance(e, usock.Error), e.errno, e.filename == {str(scratch)!r})
        """
    )
    assert out.split() == ["PermissionError", "True", str(__import__("errno").EACCES), "True"]


def test_changed_error_leaves_foreign_files(scratch):
    d = usock.private_dir(scratch)
    s = d.bind()
    Path(d.path, "dropped.txt").write_text("x")
    with pytest.raises(usock.ChangedError, match=r"dropped.txt \(a regular file\)"):
        d.cleanup()
    assert sorted(os.listdir(d.path)) == ["dropped.txt"]  # our socket went, the file stayed
    d.cleanup()  # harmless
    os.unlink(os.path.join(d.path, "dropped.txt"))
    os.rmdir(d.path)
    s.close()


def test_no_directory_error(scratch):
    # /tmp and /var/tmp cannot be made unusable from here, so run as nobody in a private
    # mount namespace where they are read-only: unshare needs root, as the suite runs.
    if os.geteuid() != 0:
        pytest.skip("needs root to make a mount namespace")
    out = run_python(
        """
        import ctypes, os, usock
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.unshare(0x00020000) == 0  # CLONE_NEWNS
        assert libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None) == 0  # MS_REC|MS_PRIVATE
        for target in (b"/tmp", b"/var/tmp"):
            assert libc.mount(b"tmpfs", target, b"tmpfs", 1, None) == 0  # MS_RDONLY
        os.environ.pop("XDG_RUNTIME_DIR", None)
        os.environ["TMPDIR"] = "/nonexistent"
        try:
            usock.listen()
        except usock.NoDirectoryError as e:
            print(e.status, e)
        """
    )
    assert out.startswith(f"{_lib.ERR_NO_DIR} ")
    for part in ("$XDG_RUNTIME_DIR: not set", "$TMPDIR (/nonexistent)", "/tmp:", "/var/tmp:"):
        assert part in out


def test_exhausted_error_when_the_random_source_repeats(scratch):
    # A broken random source, for real: a preloaded getrandom() that always returns the same
    # bytes (libusock calls the C library's getrandom, so the shim replaces it).
    shim_dir = scratch / "shim"
    shim_dir.mkdir()
    parent = scratch / "parent"
    parent.mkdir()
    source = shim_dir / "repeat.c"
    source.write_text(
        "#include <string.h>\n#include <sys/types.h>\n"
        "ssize_t getrandom(void *buf, size_t len, unsigned flags)"
        " { (void)flags; memset(buf, 0x5a, len); return (ssize_t)len; }\n"
    )
    shim = shim_dir / "repeat.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(source)], check=True)
    out = run_python(
        f"""
        import usock
        first = usock.private_dir({str(parent)!r})   # takes the one name the source gives
        try:
            usock.private_dir({str(parent)!r})
        except usock.ExhaustedError as e:
            print(e.status, "16 fresh random names" in str(e))
        first.cleanup()
        """,
        # (after any preload already set, such as the AddressSanitizer runtime)
        extra_env={"LD_PRELOAD": " ".join(filter(None, [os.environ.get("LD_PRELOAD"), str(shim)]))},
    )
    assert out.split() == [str(_lib.ERR_EXHAUSTED), "True"]
    assert list(parent.iterdir()) == []


def test_bad_python_arguments_fail_before_c(scratch):
    with usock.private_dir(scratch) as d:
        for bad in ("", "a/b", ".", "..", "x\0y", b"a/b"):
            with pytest.raises(ValueError):
                d.socket_path(bad)
            with pytest.raises(ValueError):
                d.bind(bad)
        for bad in (3, 1.5, ["x"]):
            with pytest.raises(TypeError):
                d.socket_path(bad)
        with pytest.raises(ValueError):
            d.bind(type=socket.SOCK_RAW)
        with pytest.raises(TypeError):
            d.bind(type="stream")
        with pytest.raises(TypeError):
            d.bind(type=True)
        with pytest.raises(ValueError):
            d.bind(backlog=-1)
        with pytest.raises(TypeError):
            d.bind(backlog="5")
    with pytest.raises(TypeError):
        usock.private_dir(42)
    with pytest.raises(ValueError):
        usock.private_dir("")
    with pytest.raises(ValueError):
        usock.listen(parent="/tmp\0x")
    assert list(scratch.iterdir()) == []


def test_non_utf8_paths(scratch):
    raw = os.fsencode(scratch) + b"/caf\xe9"
    os.mkdir(raw)
    with usock.listen(parent=raw) as server:
        assert os.fsencode(server.path).startswith(raw + b"/usock-")
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(server.path)
    assert os.listdir(raw) == []


# Lifetimes ---------------------------------------------------------------------------------


def test_garbage_collection_and_interpreter_exit_clean_up(scratch):
    out = run_python(
        f"""
        import gc, os, usock
        d = usock.private_dir({str(scratch)!r})
        s = d.bind()
        path = d.path
        s.close()
        del d, s
        gc.collect()
        print(os.path.exists(path))
        keep = usock.listen(parent={str(scratch)!r})   # never cleaned: interpreter exit does it
        print(keep.path)
        """
    )
    gc_left, exit_path = out.split()
    assert gc_left == "False"
    assert not os.path.exists(exit_path)
    assert list(scratch.iterdir()) == []


def _slow_listen_shim(directory):
    """A preloadable shim whose listen() takes 300 ms, to hold a thread inside usock_bind."""
    source = directory / "slow_listen.c"
    source.write_text(
        "#define _GNU_SOURCE\n#include <dlfcn.h>\n#include <unistd.h>\n"
        "int listen(int fd, int backlog) {\n"
        "    int (*real)(int, int);\n"
        "    *(void **)(&real) = dlsym(RTLD_NEXT, \"listen\");\n"
        "    usleep(300000);\n"
        "    return real(fd, backlog);\n"
        "}\n"
    )
    shim = directory / "slow_listen.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(shim), str(source)], check=True)
    return str(shim)


def _preload(shim):
    # (after any preload already set, such as the AddressSanitizer runtime)
    return {"LD_PRELOAD": " ".join(filter(None, [os.environ.get("LD_PRELOAD"), shim]))}


def test_exit_while_a_daemon_thread_is_inside_bind(scratch):
    # The exit hook must not free a handle that a call is still using (AddressSanitizer, in the
    # suite's second run, reported a use after free here): it waits for the call, then cleans.
    shim_dir = scratch / "shim"
    shim_dir.mkdir()
    parent = scratch / "parent"
    parent.mkdir()
    out = run_python(
        f"""
        import atexit, threading, time
        atexit.register(time.sleep, 0.5)        # runs after usock's hook: exit takes a while
        import usock
        d = usock.private_dir({str(parent)!r})
        inside = threading.Event()
        def late_bind():
            inside.set()
            d.bind("late")                      # listen() takes 300 ms
        threading.Thread(target=late_bind, daemon=True).start()
        inside.wait()
        time.sleep(0.05)
        print(d.path)
        """,
        extra_env=_preload(_slow_listen_shim(shim_dir)),
    )
    assert out.strip().startswith(str(parent))
    assert list(parent.iterdir()) == []
    figure("fault", "interpreter exit while a daemon thread is inside bind() (listen slowed to 300 ms): the exit hook waits for the call, then removes everything", 1, 1,
           "test_exit_while_a_daemon_thread_is_inside_bind")


def test_garbage_collection_never_removes_a_directory_whose_socket_serves(scratch):
    # The README's pattern: only asyncio holds the socket; the Listener is garbage at once.
    async def main():
        async def echo(reader, writer):
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_unix_server(echo, sock=usock.listen(parent=scratch).socket)
        gc.collect()
        path = server.sockets[0].getsockname()
        assert os.path.exists(path)
        reader, writer = await asyncio.open_unix_connection(path)
        writer.write(b"still here\n")
        reply = await reader.readline()
        writer.close()
        server.close()
        await server.wait_closed()
        return path, reply

    path, reply = asyncio.run(main())
    assert reply == b"still here\n"
    gc.collect()
    assert not os.path.exists(os.path.dirname(path))
    assert list(scratch.iterdir()) == []
    figure("fault", "Python: the Listener garbage-collected while asyncio serves its socket: the directory stays until the socket is closed", 1, 1,
           "test_garbage_collection_never_removes_a_directory_whose_socket_serves")


def test_garbage_collection_keeps_a_directory_that_handed_out_a_path_while_it_serves(scratch):
    # A path from socket_path() given to other code (here a plain socket): the PrivateDir was
    # removed at garbage collection while that code served there, and in a parent others may
    # write to, another user could then make the same name and receive the server.
    import time

    d = usock.PrivateDir(scratch)
    path = d.socket_path("srv")
    directory = os.path.dirname(path)
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    del d
    gc.collect()
    assert os.path.exists(path), "the directory went while its socket served"
    with socket.socket(socket.AF_UNIX) as client:
        client.connect(path)
    # Served no more: gone once looks a second apart found it idle and unchanged, also when
    # full collections come more often than once a second (the first idle look counts).
    server.close()
    deadline = time.monotonic() + 3
    while os.path.exists(directory) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.3)
    assert not os.path.exists(directory)
    # A path handed out and never bound: kept (other code may bind there later), until exit.
    unbound = usock.PrivateDir(scratch)
    kept = os.path.dirname(unbound.socket_path())
    del unbound
    gc.collect()
    time.sleep(1.1)
    gc.collect()
    assert os.path.isdir(kept)
    # A directory that handed out nothing goes at once, as before.
    plain = usock.PrivateDir(scratch)
    gone = plain.path
    del plain
    assert not os.path.exists(gone)
    figure("fault", "Python: a PrivateDir garbage-collected after it handed out a socket path: kept while a socket there serves, removed once nothing does (two looks a second apart), kept when nothing was bound there", 3, 3,
           "test_garbage_collection_keeps_a_directory_that_handed_out_a_path_while_it_serves")


def test_exceptions_from_signal_handlers_leak_nothing(scratch):
    # Ctrl-C's KeyboardInterrupt, for real: a timer signal whose handler raises, every 200 us,
    # while listen(), PrivateDir(), bind() and cleanup() run in a loop.
    out = run_python(
        f"""
        import gc, os, signal, usock
        parent = {str(scratch)!r}
        class Tick(Exception):
            pass
        armed = False
        def on_alarm(*_):                       # raises only inside step(), never in the loop
            global armed
            if armed:
                armed = False
                raise Tick
        def step(i):
            which = i % 4
            if which == 0:
                with usock.listen(parent=parent):
                    pass
            elif which == 1:
                usock.PrivateDir(parent).cleanup()
            elif which == 2:
                d = usock.PrivateDir(parent)
                d.bind("x").close()
                d.cleanup()
            else:
                usock.PrivateDir(parent)        # left to garbage collection
        signal.signal(signal.SIGALRM, on_alarm)
        before = len(os.listdir("/proc/self/fd"))
        i = interrupted = 0
        signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
        while i < 4000:
            i += 1
            try:
                armed = True
                step(i)
                armed = False
            except Tick:
                interrupted += 1
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        gc.collect()
        print(interrupted, before, len(os.listdir("/proc/self/fd")), len(os.listdir(parent)))
        """
    )
    interrupted, before, after, left = map(int, out.split())
    assert interrupted > 100, "the signals did not interrupt the calls often enough"
    assert after == before, "descriptors leaked"
    assert left == 0, "directories leaked"
    figure("fault", "Python: an exception raised by a signal handler every 200 us inside listen(), PrivateDir(), bind(), cleanup() and garbage collection, 4000 calls: no directory or descriptor leaked", 4000, 4000,
           "test_exceptions_from_signal_handlers_leak_nothing")


def test_forked_children_do_not_hang_on_a_lock_a_parent_thread_held(scratch):
    out = run_python(
        f"""
        import os, stat, threading, time, usock
        d = usock.private_dir({str(scratch)!r})
        s = d.bind()
        stop = threading.Event()
        def hammer():                           # holds the object's lock most of the time
            while not stop.is_set():
                d.socket_path()
        t = threading.Thread(target=hammer)
        t.start()
        hung = failed = 0
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                try:
                    d.socket_path()
                    with d:
                        pass                    # the child's cleanup removes nothing
                    os._exit(0)
                except BaseException:
                    os._exit(3)
            deadline = time.monotonic() + 20      # a deadlock hangs for ever; ASan on a busy
                                                  # machine took over 3 s once
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    failed += os.waitstatus_to_exitcode(status) != 0
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    hung += 1
                    break
                time.sleep(0.002)
        stop.set()
        t.join()
        alive = stat.S_ISSOCK(os.lstat(os.path.join(d.path, "sock")).st_mode)
        s.close()
        d.cleanup()
        print(hung, failed, alive)
        """
    )
    assert out.split() == ["0", "0", "True"]
    assert list(scratch.iterdir()) == []
    figure("fault", "Python: 20 forks while another thread holds the object's lock: no child hangs, no child removes anything", 20, 20,
           "test_forked_children_do_not_hang_on_a_lock_a_parent_thread_held")


def test_forked_child_leaves_the_parents_socket_alone(scratch):
    with usock.listen(parent=scratch) as server:
        pid = os.fork()
        if pid == 0:  # the child cleans up explicitly and then exits normally
            try:
                server.close()
                code = 0 if os.path.exists(server.path) else 1
            except BaseException:
                code = 2
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        assert os.path.exists(server.path)
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(server.path)
    assert list(scratch.iterdir()) == []


def test_forked_child_interpreter_exit_removes_nothing(scratch):
    out = run_python(
        f"""
        import os, sys, usock
        server = usock.listen(parent={str(scratch)!r})
        pid = os.fork()
        if pid == 0:
            sys.exit(0)          # runs the child's finalizers at interpreter exit
        os.waitpid(pid, 0)
        print(os.path.exists(server.path))
        server.close()
        print(os.path.exists(server.dir.path))
        """
    )
    assert out.split() == ["True", "False"]


def test_asyncio_round_trip(scratch):
    async def main():
        with usock.listen(parent=scratch) as server:
            async def handle(reader, writer):
                writer.write(b"echo:" + await reader.readline())
                await writer.drain()
                writer.close()

            srv = await asyncio.start_unix_server(handle, sock=server.socket)
            async with srv:
                reader, writer = await asyncio.open_unix_connection(server.path)
                writer.write(b"hello\n")
                reply = await reader.read()
                writer.close()
            return reply

    assert asyncio.run(main()) == b"echo:hello\n"
    assert list(scratch.iterdir()) == []


def test_socketserver(scratch):
    class Echo(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(self.rfile.readline().upper())

    with usock.private_dir(scratch) as d:
        path = d.socket_path("srv")
        with socketserver.UnixStreamServer(path, Echo) as srv:
            t = threading.Thread(target=srv.handle_request)
            t.start()
            with socket.socket(socket.AF_UNIX) as c:
                c.connect(path)
                c.sendall(b"abc\n")
                assert c.recv(4) == b"ABC\n"
            t.join()
    assert list(scratch.iterdir()) == []


def test_many_threads_leave_no_descriptors(scratch):
    def fds():
        return len(os.listdir("/proc/self/fd"))

    before = fds()
    paths, errors = [], []

    def work():
        try:
            for _ in range(100):
                with usock.listen(parent=scratch) as s:
                    paths.append(s.path)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(paths)) == 800
    assert list(scratch.iterdir()) == []
    assert fds() == before


def test_another_user_cannot_connect(scratch):
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to another user")
    with usock.listen(parent=scratch) as server:
        results = {}
        for who in ("nobody", "owner"):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                try:
                    if who == "nobody":
                        os.setgroups([])
                        os.setgid(NOBODY)
                        os.setuid(NOBODY)
                    c = socket.socket(socket.AF_UNIX)
                    try:
                        c.connect(server.path)
                        msg = b"connected"
                    except PermissionError:
                        msg = b"denied"
                    os.write(w, msg + b" " + str(os.geteuid()).encode())
                finally:
                    os._exit(0)
            os.close(w)
            results[who] = os.read(r, 100).decode()
            os.close(r)
            os.waitpid(pid, 0)
        assert results["nobody"] == f"denied {NOBODY}"
        assert results["owner"] == "connected 0"


# The library and its constants -----------------------------------------------------------


def test_status_constants_match_the_header():
    header = (REPO / "include" / "usock.h").read_text()
    defined = dict(re.findall(r"#define USOCK_(\w+) (-?\d+)", header))
    defined.pop("PATH_MAX")
    for name, value in vars(_lib).items():
        if name == "OK" or name.startswith("ERR_"):
            assert int(defined[name]) == value, name
    # The header defines it per platform; the library reports its own.
    assert usock.PATH_MAX == (108 if sys.platform.startswith("linux") else 104)
    codes = {k for k in defined if k == "OK" or k.startswith("ERR_")}
    assert codes == {k for k in vars(_lib) if k == "OK" or k.startswith("ERR_")}


def test_version_matches_the_header():
    header = (REPO / "include" / "usock.h").read_text()
    parts = [re.search(rf"#define USOCK_VERSION_{p} (\d+)", header).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    assert usock.version() == ".".join(parts)


def test_the_default_socket_name_is_the_one_the_library_binds(scratch):
    # libusock exports no constant for the name it uses when given none: the package keeps one
    # copy (listen() builds its path from it), checked here against what the library does.
    from usock._args import DEFAULT_NAME
    with usock.private_dir(scratch) as d:
        assert d.socket_path() == os.path.join(d.path, DEFAULT_NAME)
        with d.bind():
            assert os.listdir(d.path) == [DEFAULT_NAME]
    with usock.listen(parent=scratch) as server:
        assert os.listdir(server.dir.path) == [DEFAULT_NAME]
        assert server.path == os.path.join(server.dir.path, DEFAULT_NAME)
        assert stat.S_ISSOCK(os.lstat(server.path).st_mode)


def test_public_names_present_themselves_as_usock():
    # The package is split into modules; users import from usock, and reprs, tracebacks,
    # help() and pickles by reference name usock.X, as when it was one module.
    import pickle
    for name in usock.__all__:
        obj = getattr(usock, name)
        if isinstance(obj, type) or callable(obj):
            assert obj.__module__ == "usock", name
            assert pickle.loads(pickle.dumps(obj)) is obj, name
    assert not [n for n in dir(usock) if n.startswith(("errors", "dirs", "peers"))]
    with pytest.raises(FileNotFoundError) as info:
        usock.connect("/nonexistent/usock-test.sock")
    assert type(info.value).__module__ == "usock"
    assert type(info.value).__name__ == "FileNotFoundError"


def test_missing_library_says_how_to_fix_it(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import usock"],
        env={**os.environ, "USOCK_LIBRARY": str(tmp_path / "nope.so"),
             "PYTHONPATH": str(Path(usock.__file__).parent.parent)},
        capture_output=True, text=True,
    )
    assert out.returncode != 0
    assert "ImportError" in out.stderr and "USOCK_LIBRARY" in out.stderr


def _owners(scratch):
    """One object of each class that owns something, by name."""
    d = usock.PrivateDir(scratch)
    listener = usock.listen(parent=scratch)
    bound = usock.listen_at(scratch / "well-known.sock")
    return {
        "PrivateDir": (d, d.cleanup),
        "Listener": (listener, listener.close),
        "BoundPath": (bound, bound.close),
        "AcceptPolicy": (usock.AcceptPolicy(), lambda: None),
    }


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_owning_objects_refuse_copying_and_pickling(scratch, how):
    # A copy would be a second owner: it could bind in, or clean up, what the original still
    # uses (a copied AcceptPolicy would free the policy the original still holds).
    import copy
    import pickle
    duplicate = {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": pickle.dumps}[how]
    owners = _owners(scratch)
    for name, (obj, close) in owners.items():
        with pytest.raises(TypeError, match=rf"\b{name}\b"):
            duplicate(obj)
        if how != "copy":                        # a shallow copy shares what a list holds
            with pytest.raises(TypeError, match=rf"\b{name}\b"):
                duplicate([obj])                 # inside a container too
        close()
    # Each original cleaned up what it made (a well-known path's lock file stays by design).
    assert os.listdir(scratch) == ["well-known.sock.lock"]
    # A socket from bind() refuses as socket.socket does.
    with usock.PrivateDir(scratch) as d:
        sock = d.bind()
        with pytest.raises(TypeError):
            duplicate(sock)
        sock.close()
    figure("attack", f"Python: {how} of each owning object (PrivateDir, Listener, BoundPath, "
           "AcceptPolicy) refused with TypeError, so no second owner can bind in or clean up",
           len(owners), len(owners),
           f"test_owning_objects_refuse_copying_and_pickling[{how}]")


def test_the_installed_package_loads_the_libusock_it_carries():
    # What the READMEs say of `pip install ./bindings/python` (as make test-python runs it, with
    # no `make build` needed): setup.py compiles libusock and ships it inside the package, and
    # without $USOCK_LIBRARY that copy is the one loaded.
    package = Path(usock.__file__).resolve().parent
    if package == Path(__file__).resolve().parents[1] / "usock":
        pytest.skip("usock is imported from the source tree here, not from an installed package")
    env = {k: v for k, v in os.environ.items() if k != "USOCK_LIBRARY"}
    out = subprocess.run([sys.executable, "-c", "import usock; print(usock._lib.lib._name)"],
                         env=env, cwd="/", capture_output=True, text=True, check=True)
    loaded = Path(out.stdout.strip())
    assert loaded.parent == package and loaded.name.startswith("libusock"), loaded


def test_the_version_is_the_crates():
    # One version: the package reports the library's, which is Cargo.toml's.
    import re
    cargo = Path(__file__).resolve().parents[3] / "Cargo.toml"
    if not cargo.exists():
        pytest.skip(f"no {cargo} beside these tests")
    version = re.search(r'^version = "([^"]+)"', cargo.read_text(), re.M).group(1)
    assert usock.__version__ == version
