"""usock.mqi.PrologMQI, swiplserver's PrologMQI on a socket in a usock private directory, with
swiplserver from PyPI and the system's swipl: queries, threads, async queries, restarts, failed
starts; the modes on disk at once after start, and what is left behind."""

import os
import shutil
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

from _support import figure_writer, mode

import usock

swiplserver = pytest.importorskip("swiplserver", reason="swiplserver is not installed (pip install swiplserver)")
if shutil.which("swipl") is None:
    pytest.skip("SWI-Prolog (swipl) is not on PATH", allow_module_level=True)

from usock.mqi import PrologMQI  # noqa: E402


figure = figure_writer("test_mqi.py")


@pytest.fixture(autouse=True, scope="module")
def swipl_without_the_asan_preload(tmp_path_factory):
    """make test-python-asan preloads AddressSanitizer into this process and its children. swipl,
    the MQI server, is not what that run checks, and the preloaded runtime crashes it now and
    then as its threads end (AsanThread::Destroy, "unable to unmap"): swipl runs without it,
    through a wrapper first on PATH (exec: the server's pid is swipl's own)."""
    if "LD_PRELOAD" not in os.environ:
        yield
        return
    wrapper = tmp_path_factory.mktemp("swipl") / "swipl"
    wrapper.write_text(f'#!/bin/sh\nunset LD_PRELOAD\nexec "{shutil.which("swipl")}" "$@"\n')
    wrapper.chmod(0o755)
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{wrapper.parent}{os.pathsep}{path}"
    yield
    os.environ["PATH"] = path


def run_python(code, **kw):
    """Runs code in a fresh interpreter with this usock importable; returns the completed
    process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(usock.__file__).parent.parent)] + sys.path)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=60, **kw)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie counts as ended.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def refuses(path):
    """Nobody listens at path any more."""
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            return True
    return False


def eventually(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_is_a_drop_in_subclass():
    assert issubclass(PrologMQI, swiplserver.PrologMQI)


def test_queries_on_a_private_socket_and_stop_leaves_nothing(scratch):
    with PrologMQI(parent=scratch) as mqi:
        path = mqi.socket_path
        directory = os.path.dirname(path)
        assert Path(directory).parent == scratch
        assert os.path.basename(path) == "mqi"
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        assert mode(directory) == 0o700
        assert mode(path) == 0o600
        with mqi.create_thread() as prolog:
            assert prolog.query("member(X, [a, b])") == [{"X": "a"}, {"X": "b"}]
            assert prolog.query("atom_length(abc, N)") == [{"N": 3}]
    assert mqi.socket_path is None
    assert list(scratch.iterdir()) == []


def test_modes_at_once_after_start_under_umask_0(scratch):
    # The process umask is changed only in a child; under umask 0 MQI's bind alone gives 0777.
    out = run_python(f"""
        import os, stat
        from usock.mqi import PrologMQI
        m = PrologMQI(parent={str(scratch)!r})
        m.start()
        p = m.socket_path
        print(oct(stat.S_IMODE(os.lstat(os.path.dirname(p)).st_mode)),
              oct(stat.S_IMODE(os.lstat(p).st_mode)))
        m.stop()
    """, umask=0)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0o700", "0o600"]
    assert list(scratch.iterdir()) == []
    figure("attack", "Python usock.mqi: swipl started under umask 0 (MQI's own bind gives the socket 0777): socket 0600 in a 0700 directory as start() returns, nothing left after stop()", 1, 1,
           "test_modes_at_once_after_start_under_umask_0")


def test_several_threads(scratch):
    results, errors = {}, []
    with PrologMQI(parent=scratch) as mqi:
        def work(i):
            try:
                with mqi.create_thread() as prolog:
                    results[i] = [prolog.query(f"X is {i} * {j}")[0]["X"] for j in range(20)]
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert results == {i: [i * j for j in range(20)] for i in range(6)}
    assert list(scratch.iterdir()) == []


def test_async_queries(scratch):
    with PrologMQI(parent=scratch) as mqi:
        with mqi.create_thread() as prolog:
            prolog.query_async("member(X, [1, 2, 3])", find_all=False)
            answers = []
            while True:
                answer = prolog.query_async_result()
                if answer is None:
                    break
                answers.append(answer[0]["X"])
            assert answers == [1, 2, 3]
            prolog.query_async("sleep(30)")
            # A cancel that reaches MQI before the goal runs cancels nothing (under load it
            # can): while the goal still runs, cancel it again.
            for _ in range(30):
                prolog.cancel_query_async()
                try:
                    prolog.query_async_result(wait_timeout_seconds=1)
                except swiplserver.PrologResultNotAvailableError:
                    continue
                except swiplserver.PrologQueryCancelledError:
                    break
                pytest.fail("sleep(30) was not cancelled")
            else:
                pytest.fail("sleep(30) still runs after 30 cancels")
    assert list(scratch.iterdir()) == []


def test_stop_and_restart_use_a_fresh_directory_each_time(scratch):
    mqi = PrologMQI(parent=scratch)
    paths = []
    for _ in range(2):
        mqi.start()
        paths.append(mqi.socket_path)
        assert mode(paths[-1]) == 0o600
        with mqi.create_thread() as prolog:
            assert prolog.query("true") is True
        mqi.stop()
        assert not os.path.exists(os.path.dirname(paths[-1]))
        assert list(scratch.iterdir()) == []
    assert paths[0] != paths[1]
    mqi.stop()                                   # a second stop does nothing


def test_start_twice_keeps_one_server(scratch):
    with PrologMQI(parent=scratch) as mqi:
        pid, path = mqi.process_id(), mqi.socket_path
        mqi.start()
        assert (mqi.process_id(), mqi.socket_path) == (pid, path)
        assert len(list(scratch.iterdir())) == 1
    assert list(scratch.iterdir()) == []


def test_a_server_that_fails_to_start_leaves_nothing(scratch):
    # swipl starts, but halts before mqi_start writes the socket path
    mqi = PrologMQI(parent=scratch, prolog_path_args=["-g", "halt(3)"])
    with pytest.raises(swiplserver.PrologLaunchError):
        mqi.start()
    assert mqi.process_id() is None
    assert mqi.socket_path is None
    assert list(scratch.iterdir()) == []
    # no swipl at all
    mqi = PrologMQI(parent=scratch, prolog_path=str(scratch / "nowhere"))
    with pytest.raises(swiplserver.PrologLaunchError):
        mqi.start()
    assert list(scratch.iterdir()) == []


def test_too_long_fails_before_launching(scratch):
    deep = scratch
    for _ in range(4):
        deep = deep / ("d" * 25)
    deep.mkdir(parents=True)
    mqi = PrologMQI(parent=deep)
    with pytest.raises(usock.PathTooLongError):
        mqi.start()
    assert mqi.process_id() is None
    assert list(deep.iterdir()) == []


def test_killed_prolog_then_stop_leaves_nothing(scratch):
    mqi = PrologMQI(parent=scratch)
    mqi.start()
    os.kill(mqi.process_id(), signal.SIGKILL)
    mqi.stop()
    assert list(scratch.iterdir()) == []


def test_interpreter_exit_stops_prolog_and_removes_the_directory(scratch):
    out = run_python(f"""
        from usock.mqi import PrologMQI
        m = PrologMQI(parent={str(scratch)!r})
        m.start()
        print(m.process_id(), m.socket_path, flush=True)
    """)
    assert out.returncode == 0, out.stderr
    pid, path = out.stdout.split()
    assert Path(path).parent.parent == scratch
    assert list(scratch.iterdir()) == []
    assert eventually(lambda: not alive(int(pid)))


def test_killed_python_then_sweep_leaves_nothing(scratch):
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from usock.mqi import PrologMQI
            m = PrologMQI(parent={str(scratch)!r})
            m.start()
            print(m.process_id(), m.socket_path, flush=True)
            time.sleep(60)
        """)],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(usock.__file__).parent.parent)] + sys.path)),
        stdout=subprocess.PIPE, text=True)
    swipl, path = child.stdout.readline().split()
    child.kill()
    child.wait()
    child.stdout.close()
    os.kill(int(swipl), signal.SIGKILL)          # its orphan, as a supervisor would end it
    # (its main thread can be a zombie while other threads still hold the socket)
    assert eventually(lambda: refuses(path))
    [left] = list(scratch.iterdir())
    report = usock.sweep(scratch, grace=0)
    assert report.removed == [str(left)], report.kept
    assert list(scratch.iterdir()) == []
    figure("fault", "Python usock.mqi: the Python process and its swipl killed (SIGKILL): a sweep removes the directory, nothing is left in the parent", 1, 1,
           "test_killed_python_then_sweep_leaves_nothing")


def test_threads_that_start_the_server_together_share_one(scratch):
    # PrologThread.start() starts a server that is not running; six threads at once make one.
    mqi = PrologMQI(parent=scratch)
    barrier = threading.Barrier(6)
    seen, errors = [], []

    def work():
        try:
            barrier.wait()
            with mqi.create_thread() as prolog:
                assert prolog.query("true") is True
                seen.append((mqi.process_id(), mqi.socket_path, len(list(scratch.iterdir()))))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    mqi.stop()
    assert errors == []
    assert len(set(seen)) == 1 and seen[0][2] == 1
    assert list(scratch.iterdir()) == []


def test_port_or_own_socket_is_swiplserver_unchanged(scratch):
    with PrologMQI(port=None, unix_domain_socket=None, launch_mqi=True, parent=scratch) as mqi:
        assert Path(mqi.socket_path).parent.parent == scratch   # the default: a private directory
    with PrologMQI(unix_domain_socket="", parent=scratch) as mqi:  # "make one": usock's, not MQI's
        assert Path(mqi.socket_path).parent.parent == scratch
        assert mode(mqi.socket_path) == 0o600
    with usock.private_dir(scratch) as d:
        own = d.socket_path("own")
        with PrologMQI(unix_domain_socket=own) as mqi:
            assert mqi.socket_path == own
            with mqi.create_thread() as prolog:
                assert prolog.query("true") is True
            assert sorted(os.listdir(scratch)) == [os.path.basename(d.path)]
    with socket.socket() as probe:               # a free port on localhost
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with PrologMQI(port=port, parent=scratch) as mqi:
        assert mqi.socket_path is None
        with mqi.create_thread() as prolog:
            assert prolog.query("true") is True
    assert list(scratch.iterdir()) == []


def test_missing_swiplserver_names_it():
    out = run_python("""
        import sys
        sys.modules["swiplserver"] = None      # as if it were not installed
        try:
            import usock.mqi
        except ImportError as e:
            print(e.name, "|", e)
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("swiplserver |")
    # A command that works: usock is not on PyPI, so 'usock[mqi]' would fetch nothing (or
    # another project's package).
    assert "pip install swiplserver" in out.stdout
    assert "usock[mqi]" not in out.stdout
