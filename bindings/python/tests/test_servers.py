"""The README's recipes for web servers that bind by themselves (uvicorn, gunicorn, aiohttp) and
for SIGTERM, run for real: a child Python runs the README's code, a client is served through the
usock socket, the socket is 0600 in a 0700 directory while it serves, and nothing is left after
the server is stopped as a service manager stops it (SIGTERM)."""

import importlib.util
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _support import mode

import usock
from _readme import block

ASGI_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})
'''

WSGI_APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
'''


def needs(module):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed in this environment (make venv installs it)")


def start(code, tmp_path, app=None):
    """A child Python running ``code`` in a fresh 0700 runtime directory, in its own session;
    returns (process, runtime directory)."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    work = tmp_path / "work"
    work.mkdir()
    if app:
        (work / "app.py").write_text(app)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run), TMPDIR=str(run))
    env["PYTHONPATH"] = os.pathsep.join([str(work), str(Path(usock.__file__).parent.parent)]
                                        + sys.path)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=work, text=True,
                            stdout=subprocess.PIPE, start_new_session=True)
    return proc, run


def get(path):
    """GET / through the Unix socket at ``path``; the response's body."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(30)
                s.connect(path)
                s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")   # not chunked
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
            break
        except (ConnectionRefusedError, FileNotFoundError):
            if time.monotonic() > deadline:  # a server that takes the socket but never serves
                raise
            time.sleep(0.1)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split()[1] == b"200", reply
    return body


def children(pid):
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def serve_and_stop(proc, run, stop_pid=None):
    """The client is served through the socket the child printed, which is 0600 in a 0700
    directory meanwhile; SIGTERM (to ``stop_pid``, else the child) stops it and nothing is
    left in the runtime directory."""
    try:
        path = proc.stdout.readline().strip()
        assert path.startswith(str(run) + "/usock-"), path
        assert get(path) == b"hello"
        assert stat.S_ISSOCK(os.lstat(path).st_mode) and mode(path) == 0o600
        assert mode(os.path.dirname(path)) == 0o700
        os.kill(stop_pid(proc) if stop_pid else proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert os.listdir(run) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_uvicorn_serves_on_the_usock_socket_and_leaves_nothing(tmp_path):
    needs("uvicorn")
    proc, run = start(block('uvicorn.run("app:app", fd=server.fileno())'), tmp_path, ASGI_APP)
    serve_and_stop(proc, run)


def test_gunicorn_serves_on_the_usock_socket_and_leaves_nothing(tmp_path):
    needs("gunicorn")
    proc, run = start(block('"--bind", f"fd://{fd}"'), tmp_path, WSGI_APP)
    master = []
    serve_and_stop(proc, run, stop_pid=lambda p: master.extend(children(p.pid)) or p.pid)
    # SIGTERM to the Python parent alone (docker stop, kill): gunicorn's master stopped too.
    assert master and not any(os.path.exists(f"/proc/{pid}") for pid in master), master


def test_aiohttp_serves_on_the_usock_socket_and_leaves_nothing(tmp_path):
    needs("aiohttp")
    proc, run = start(block("web.run_app(app, sock=server.socket)"), tmp_path)
    serve_and_stop(proc, run)


SERVER = """
import socket, usock
with usock.listen() as server:
    print(server.path, flush=True)
    while True:
        conn, _ = server.socket.accept()
        conn.close()
"""


@pytest.mark.parametrize("recipe", [True, False], ids=["with_the_recipe", "without"])
def test_sigterm_cleans_up_only_with_the_readme_recipe(tmp_path, recipe):
    code = (block("import signal, sys\nsignal.signal(signal.SIGTERM,") if recipe else "") + SERVER
    proc, run = start(code, tmp_path)
    try:
        path = proc.stdout.readline().strip()
        usock.connect(path).close()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if recipe:
        assert status == 0 and os.listdir(run) == []
    else:   # SIGTERM's default: Python ends at once, and the directory and socket stay
        assert status == -signal.SIGTERM
        assert os.listdir(path[:path.rindex("/")]) == ["sock"]
