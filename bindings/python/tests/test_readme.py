"""Every Python example of README.md and bindings/*/README.md runs, as written, in a child
Python with a fresh 0700 runtime directory ($XDG_RUNTIME_DIR) and a client that connects to each
socket that appears there; what is left on disk afterwards is checked. A new example without an
entry in EXAMPLES fails here."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import usock
from _readme import block, blocks

# Before every example: the modules the examples use, and a client for each new socket.
COMMON = '''
import asyncio, gc, os, socket, stat, subprocess, sys, threading, time, usock
RUN = os.environ["XDG_RUNTIME_DIR"]
_clients = []

def _connect_to_each_socket():
    seen = set()
    while True:
        for root, _, files in os.walk(RUN):
            for name in files:
                path = os.path.join(root, name)
                try:
                    if path in seen or not stat.S_ISSOCK(os.lstat(path).st_mode):
                        continue
                    c = socket.socket(socket.AF_UNIX)
                    c.connect(path)
                    c.sendall(b"ping\\n")
                    seen.add(path)
                    _clients.append(c)
                except OSError:
                    pass
        time.sleep(0.05)

threading.Thread(target=_connect_to_each_socket, daemon=True).start()
'''

# An example that begins with its imports runs in a namespace of its own, as a script would (a
# missing import fails it); the others see the modules and names imported and defined above.
RUN_EXAMPLE = '''
import ast
_code = compile(EXAMPLE, "README", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
_own = EXAMPLE.startswith(("import ", "from ")) and not BEFORE
_awaiting = eval(_code, {"__name__": "__main__"} if _own else globals())
if _awaiting is not None:
    asyncio.run(_awaiting)
'''

ASYNC_MAIN = '''
async def handle(reader, writer):
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()
    MAIN.cancel()
''', '''
async def _drive():
    global MAIN
    MAIN = asyncio.create_task(main())
    try:
        await MAIN
    except asyncio.CancelledError:
        pass
asyncio.run(_drive())
'''

WHO_MAY_CONNECT = '''
server = usock.listen()
path = server.path
async def handle(reader, writer):
    writer.close()
''', '''
conn.close()
sock.close()
server.close()
'''

# The successor of the hand-off example, as the program `server` it starts.
SUCCESSOR = "#!{python}\nimport os, socket, usock\n{code}"

# For each example, by words in it: (code before it, code after it, what is left in $XDG_RUNTIME_DIR),
# or the test that runs it.
EXAMPLES = {
    "with usock.listen() as server:": ("", "", []),
    "async def main():": (*ASYNC_MAIN, []),
    "usock.listen_at(os.path.join(": ("", "", ["app.sock.lock"]),
    "report = usock.sweep()": ("", "", []),
    "fd = d.hand_off()": ("", "", []),
    "policy = usock.AcceptPolicy()": (*WHO_MAY_CONNECT, []),
    "sock = socket.socket(fileno=int(os.environ[\"USOCK_SOCKET_FD\"]))":
        "the program `server` of the hand-off example (test_readme.py)",
    "import signal, sys\nsignal.signal(": "test_servers.py::test_sigterm_cleans_up_only_with_the_readme_recipe",
    "uvicorn.run(": "test_servers.py::test_uvicorn_serves_on_the_usock_socket_and_leaves_nothing",
    "fd://": "test_servers.py::test_gunicorn_serves_on_the_usock_socket_and_leaves_nothing",
    "web.run_app(": "test_servers.py::test_aiohttp_serves_on_the_usock_socket_and_leaves_nothing",
    "from usock.mqi import PrologMQI": "test_mqi.py::test_queries_on_a_private_socket_and_stop_leaves_nothing",
}


def entry(code):
    hits = [value for words, value in EXAMPLES.items() if words in code]
    assert len(hits) == 1, f"this README example has {len(hits)} entries in EXAMPLES:\n{code}"
    return hits[0]


def test_every_readme_example_has_a_test():
    for where, code in blocks():
        how = entry(code)
        if isinstance(how, str) and "::" in how:
            module, name = how.split("::")
            assert f"def {name}(" in (Path(__file__).parent / module).read_text(), (where, how)


RUN_HERE = [(where, code) for where, code in blocks() if not isinstance(entry(code), str)]


@pytest.mark.parametrize("where,code", RUN_HERE, ids=[where for where, _ in RUN_HERE])
def test_readme_example_runs(where, code, tmp_path):
    before, after, left = entry(code)
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    successor = bin_dir / "server"
    successor.write_text(SUCCESSOR.format(python=sys.executable,
                                          code=block('sock = socket.socket(fileno=int(')))
    successor.chmod(0o755)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(run), TMPDIR=str(run))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(usock.__file__).parent.parent)] + sys.path)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    program = "\n".join([COMMON, textwrap.dedent(before), f"EXAMPLE = {code!r}", f"BEFORE = {before!r}",
                         RUN_EXAMPLE,
                         textwrap.dedent(after), "gc.collect()", "print(sorted(os.listdir(RUN)))"])
    out = subprocess.run([sys.executable, "-c", program], env=env, cwd=tmp_path, text=True,
                         capture_output=True, timeout=60)
    assert out.returncode == 0, f"{where}:\n{out.stderr}"
    assert out.stdout.splitlines()[-1] == repr(left), out.stdout
