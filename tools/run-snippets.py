#!/usr/bin/env python3
"""Runs the examples of the docs, so that a broken one fails `make test`.

    tools/run-snippets.py LANGUAGE...      c, prolog, sh, rust (python: listed, run by pytest)
    tools/run-snippets.py --list           every example, and what is done with it

Where the examples are: every fenced block of README.md and bindings/*/README.md, and every
.nf/.fi block of the EXAMPLES section of bindings/cli/usock.1 (shell). A new block is picked up
without editing this file; one that cannot run as written fails until it is marked.

How each is run is chosen by words after the language in the fence's info string
(```c fragment listen_fd), or by an HTML comment on the line before the fence
(<!-- snippet: skip installs into /usr/local -->; in the man page a roff comment before .nf,
.\\" snippet: ...). The first word is the mode, the rest are names the harness gives the block:

  skip REASON...   not run (an install command, output); counted and listed with its reason
  root             (anywhere in the marker) run only as root, listed as skipped otherwise
  C:      program (complete; the default when it has main()), fragment (the harness puts it
          in main() after its own #includes and returns 0; #include lines go first),
          declarations (compiled after #include <usock.h>, not run: a prototype that differs
          from the header fails; `declarations complete`: and every function of the header
          must be there). Compiled with -std=c11 -Wall -Wextra -Wpedantic -Werror
          against include/usock.h and the built libusock.
          Given: listen_fd (a non-blocking listening socket in a usock directory).
  Prolog: toplevel (the default for a block of ?- queries: each query runs once in order, an
          error or a failure fails it, $Var is the binding of an earlier query as in the
          toplevel; other lines are answers and are not run), file (the default otherwise:
          loaded as a file, a warning fails it; `file GOAL` then runs GOAL), fragment (goals:
          the body of a clause, singleton warnings off, library(usock) loaded).
          Given: listener (Listener listening at Path), refused (Path where nothing listens any
          more, Dir whose socket name `sock` is taken; retry_later and pick_another_name).
  sh:     script (the default): run with bash -e. The placeholder programs of the docs are
          stand-ins on PATH: my-server --listen P (serves one client), my-client --connect P
          (waits up to 10 s for P, prints the reply), gunicorn/uvicorn (serve HTTP on the
          socket-activation descriptor 3, or --fd N, until SIGTERM; gunicorn checks LISTEN_PID
          and LISTEN_FDS); curl is the real one, as typed a moment later on a terminal (it
          waits up to 10 s for --unix-socket's path, no progress meter); `usock` is the built
          command. What is still running when the script ends gets SIGTERM (usock run passes it
          on and cleans up).
  Rust:   program (the default when it has fn main), fragment (the default otherwise: the
          body of a main() that returns Result); compiled with rustc -D warnings against the
          built crate, and run.
  `...` stands for the reader's code: in Prolog a goal (`true`; alone on a line, `true,`), in
  Rust a line of its own is dropped.

The library is $USOCK_LIBDIR (default target/release: libusock.so and libusock.rlib), the
command $USOCK_CLI (default target/release/usock), the pack bindings/prolog (built by
`make prolog`).

Every run gets a fresh scratch directory: its own $XDG_RUNTIME_DIR and $TMPDIR (mode 0700),
with the docs' example paths /run/user/1000 and /srv/run replaced by directories in it, and a
client process that connects once to each socket that appears there (with supplementary group
1234, the docs' example group, when run as root) and sends "ping". Afterwards nothing but lock
files (`P.lock` is never removed, by design) may be left there, and a C or shell example must
have written nothing to stderr.
"""

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LANGS = {"c": "c", "prolog": "prolog", "sh": "sh", "shell": "sh", "bash": "sh", "console": "sh",
         "python": "python", "rust": "rust"}
LIBDIR = Path(os.environ.get("USOCK_LIBDIR", REPO / "target" / "release"))
ELSEWHERE = {"python": "bindings/python/tests/test_readme.py (make test-python)"}
TIMEOUT = 60
IS_ROOT = os.geteuid() == 0
EXAMPLE_GROUP = 1234


# ----------------------------------------------------------------------------------------------
# Finding the blocks


class Block:
    def __init__(self, where, lang, code, marker):
        self.where, self.lang, self.code = where, lang, code
        words = marker.split()
        self.root = "root" in words
        words = [w for w in words if w != "root"]
        self.mode = words[0] if words else None
        self.args = words[1:]

    def __repr__(self):
        return f"{self.where} ({self.lang})"


FENCE = re.compile(r"^( *)```(\w*)([^\n]*)\n(.*?)^\1```[ \t]*$", re.M | re.S)
COMMENT = re.compile(r"^\s*<!--\s*snippet:(.*?)-->\s*$")


def markdown_blocks(path):
    text = path.read_text()
    lines = text.split("\n")
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start())
        before = lines[line - 1] if line > 0 else ""
        c = COMMENT.match(before)
        marker = (m.group(3).strip() + " " + (c.group(1).strip() if c else "")).strip()
        yield Block(f"{path.relative_to(REPO)}:{line + 1}", LANGS.get(m.group(2), m.group(2) or "unlabeled"),
                    textwrap.dedent(m.group(4)), marker)


def roff_text(line):
    return line.replace("\\-", "-").replace("\\e", "\\").replace("\\(aq", "'").replace("\\&", "")


def man_blocks(path):
    lines = path.read_text().split("\n")
    section, start, marker = None, None, ""
    for i, line in enumerate(lines):
        if line.startswith(".SH"):
            section = line[3:].strip().strip('"')
        elif section == "EXAMPLES" and line == ".nf":
            start = i
            prev = lines[i - 1] if i else ""
            marker = prev.split("snippet:", 1)[1].strip() if prev.startswith('.\\" snippet:') else ""
        elif start is not None and line == ".fi":
            code = "\n".join(roff_text(x) for x in lines[start + 1:i] if not x.startswith("."))
            yield Block(f"{path.relative_to(REPO)}:{start + 1}", "sh", code + "\n", marker)
            start = None


def all_blocks():
    # bindings/crate/README.md is a link to README.md (the crate the packages build), not a README.
    docs = [REPO / "README.md"] + sorted(p for p in REPO.glob("bindings/*/README*.md") if not p.is_symlink())
    found = [b for d in docs for b in markdown_blocks(d)]
    for man in sorted(REPO.glob("bindings/*/*.1")):
        found.extend(man_blocks(man))
    return found


# ----------------------------------------------------------------------------------------------
# The scratch directory and the clients


class Scratch:
    """A fresh directory: run/ ($XDG_RUNTIME_DIR, $TMPDIR), srv/run, work/ (the cwd), bin/."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="usock-snippet-"))
        self.run = self.root / "run"
        self.run.mkdir(mode=0o700)
        self.srv = self.root / "srv" / "run"
        self.srv.mkdir(parents=True)
        self.work = self.root / "work"
        self.work.mkdir()
        self.bin = self.root / "bin"
        self.bin.mkdir()
        self.clients = []
        self._stop = threading.Event()
        self._seen = set()

    def env(self, extra_path=()):
        env = dict(os.environ, XDG_RUNTIME_DIR=str(self.run), TMPDIR=str(self.run))
        env["PATH"] = os.pathsep.join([str(self.bin), *map(str, extra_path), env["PATH"]])
        return env

    def localize(self, code):
        """The docs' example paths, pointed into the scratch directory."""
        return code.replace("/run/user/1000", str(self.run)).replace("/srv/run", str(self.srv))

    def __enter__(self):
        threading.Thread(target=self._connect_to_each_socket, daemon=True).start()
        return self

    def _connect_to_each_socket(self):
        while not self._stop.is_set():
            for root, _, files in os.walk(self.run):
                for name in files:
                    path = os.path.join(root, name)
                    try:
                        if path in self._seen or not stat.S_ISSOCK(os.lstat(path).st_mode):
                            continue
                    except OSError:
                        continue
                    self._seen.add(path)
                    self.clients.append(subprocess.Popen(
                        [sys.executable, "-c", CLIENT, path], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, extra_groups=[EXAMPLE_GROUP] if IS_ROOT else None))
            time.sleep(0.05)

    def left(self):
        """What is left in run/ and srv/run but lock files."""
        out = []
        for top in (self.run, self.srv):
            for root, dirs, files in os.walk(top):
                out += [os.path.join(root, n) for n in dirs + files if not n.endswith(".lock")]
        return sorted(out)

    def __exit__(self, *exc):
        self._stop.set()
        for c in self.clients:
            c.kill()
            c.wait()
        shutil.rmtree(self.root, ignore_errors=True)


# A client: connects (stream, else datagram), says ping, holds the connection for a while.
CLIENT = """
import socket, sys, time
for kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET, socket.SOCK_DGRAM):
    try:
        s = socket.socket(socket.AF_UNIX, kind)
        s.connect(sys.argv[1])
        s.send(b"ping\\n")
        break
    except OSError:
        s.close()
# Reads what the server says, so that closing leaves nothing unread (a server would see a reset).
s.settimeout(0.2)
end = time.monotonic() + 30
while time.monotonic() < end:
    try:
        if s.recv(4096) == b"" and s.type != socket.SOCK_DGRAM:
            break
    except (socket.timeout, BlockingIOError):
        pass
    except OSError:
        break
time.sleep(max(0, end - time.monotonic()))
"""


def run(cmd, scratch):
    """Runs cmd in its own session; stops what it left running. (rc, stdout, stderr)"""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, cwd=scratch.work, env=scratch.env(), text=True,
                             stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=TIMEOUT)
            late = ""
        except subprocess.TimeoutExpired:
            rc, late = 124, f"\n(timed out after {TIMEOUT} s)"
        stop_session(p.pid)
        p.wait()
        out.seek(0)
        err.seek(0)
        return rc, out.read(), err.read() + late


def stop_session(sid):
    """SIGTERM to what the example left running in its session, SIGKILL after 5 s."""
    def members():
        if not Path("/proc/self").exists():     # no /proc: the session's first process group
            try:
                os.killpg(sid, 0)
                return [-sid]
            except OSError:
                return []
        pids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if os.getsid(int(d.name)) == sid:
                        pids.append(int(d.name))
                except OSError:
                    pass
        return pids
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 1)):
        pids = members()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.time() + wait
        while time.time() < deadline and members():
            time.sleep(0.05)


# ----------------------------------------------------------------------------------------------
# C

C_PRELUDE = """#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <usock.h>
"""
C_GIVEN = {
    "listen_fd": ("""
    usock_dir *given_dir;
    int listen_fd;
    if (usock_create_dir(NULL, 0, &given_dir) != USOCK_OK ||
        usock_bind(given_dir, "given", SOCK_STREAM, 0, &listen_fd) != USOCK_OK ||
        fcntl(listen_fd, F_SETFL, O_NONBLOCK) != 0) {
        fprintf(stderr, "harness: %s\\n", usock_last_error());
        return 99;
    }
    sleep(1);   /* the harness's client connects */
""", """
    close(listen_fd);
    usock_cleanup(given_dir);
"""),
}


def c_source(block):
    mode = block.mode or ("program" if re.search(r"\bmain\s*\(", block.code) else "fragment")
    if mode == "program":
        return block.code, True
    if mode == "declarations":
        return C_PRELUDE + block.code, False
    if mode != "fragment":
        raise ValueError(f"unknown C mode {mode}")
    includes = [x for x in block.code.splitlines() if x.startswith("#include")]
    body = "\n".join(x for x in block.code.splitlines() if not x.startswith("#include"))
    before = "".join(C_GIVEN[g][0] for g in block.args)
    after = "".join(C_GIVEN[g][1] for g in reversed(block.args))
    return (C_PRELUDE + "\n".join(includes) + "\n\nint main(void) {\n" + before + "{\n"
            + textwrap.indent(body, "    ") + "\n}\n" + after + "    return 0;\n}\n"), True


def run_c(block, scratch):
    source, runs = c_source(block)
    src = scratch.work / "snippet.c"
    src.write_text(scratch.localize(source))
    rel = LIBDIR
    exe = scratch.work / "snippet"
    cmd = [os.environ.get("CC", "cc"), "-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
           f"-I{REPO / 'include'}", "-o", str(exe), str(src), f"-L{rel}", "-lusock",
           f"-Wl,-rpath,{rel}"]
    if not runs:
        cmd[cmd.index("-o"):cmd.index("-o") + 2] = ["-c", "-o", os.devnull]
    rc, out, err = run(cmd, scratch)
    if rc != 0:
        return f"does not compile:\n{err}\n--- as compiled:\n{numbered(source)}"
    if not runs:
        return missing_functions(block)
    rc, out, err = run([str(exe)], scratch)
    if rc != 0 or err:
        return f"exit {rc}, stderr:\n{err}\n--- as compiled:\n{numbered(source)}"
    return None


def missing_functions(block):
    """For `declarations complete`: the header's functions the block does not declare."""
    if "complete" not in block.args:
        return None
    header = (REPO / "include" / "usock.h").read_text()
    functions = set(re.findall(r"^[\w ]+?\**\b(usock_\w+)\(", header, re.M))
    missing = sorted(f for f in functions if not re.search(rf"\b{f}\(", block.code))
    return f"the header's {', '.join(missing)} not listed" if missing else None


# ----------------------------------------------------------------------------------------------
# Prolog

PROLOG_HARNESS = r"""
:- module(snippet_harness, [run_queries/1]).
% Each ?- query of a toplevel transcript, once, in order, as the toplevel would: in module
% user, $Var standing for Var's binding in an earlier query.

run_queries(File) :-
    setup_call_cleanup(open(File, read, In), read_queries(In, Qs), close(In)),
    foldl(run_query, Qs, [], _).

read_queries(In, Qs) :-
    read_term(In, T, [variable_names(Bs), module(user)]),
    (   T == end_of_file
    ->  Qs = []
    ;   Qs = [T-Bs|Rest], read_queries(In, Rest)
    ).

run_query(Q0-Bs, Vars0, Vars) :-
    toplevel_vars(Q0, Bs, Vars0, Q),
    format("?- ~W.~n", [Q, [variable_names(Bs), quoted(true)]]),
    (   catch(user:Q, E, (print_message(error, E), halt(1)))
    ->  true
    ;   format(user_error, "ERROR: the query failed~n", []), halt(1)
    ),
    forall(member(N=V, Bs), format("   ~w = ~q~n", [N, V])),
    append(Bs, Vars0, Vars).

toplevel_vars(T, _, _, T) :- var(T), !.
toplevel_vars($(V), Bs, Vars, Value) :-
    var(V), member(N=V0, Bs), V0 == V, !,
    (   memberchk(N=Value, Vars) -> true
    ;   format(user_error, "ERROR: $~w was not bound by a previous query~n", [N]), halt(1)
    ).
toplevel_vars(T0, Bs, Vars, T) :-
    compound(T0), !,
    T0 =.. [F|As0], maplist([A0, A]>>toplevel_vars(A0, Bs, Vars, A), As0, As), T =.. [F|As].
toplevel_vars(T, _, _, T).
"""
PROLOG_GIVEN = {
    "listener": ("usock_create_dir(GivenDir, []), usock_bind(GivenDir, Listener, [path(Path)])",
                 "tcp_close_socket(Listener), usock_cleanup(GivenDir)"),
    "refused": ("usock_create_dir(Dir, []), usock_bind(Dir, Gone, [path(Path)]), "
                "tcp_close_socket(Gone)",
                "usock_cleanup(Dir)"),
}
PROLOG_GIVEN_CLAUSES = {
    "refused": "retry_later.\npick_another_name.\n",
}


def prolog_queries(code):
    """The ?- queries of a transcript, each up to its full stop; answer lines dropped."""
    queries, current = [], None
    for line in code.splitlines():
        if line.startswith("?-"):
            current = [line[2:]]
        elif current is not None and line[:1].isspace():
            current.append(line)
        elif current is not None:
            current = None
            continue
        else:
            continue
        if re.search(r"\.\s*(%.*)?$", line):
            queries.append("\n".join(current))
            current = None
    return queries


def dots(code):
    """`...` for the reader's goals: alone on a line it is a goal followed by a comma."""
    code = re.sub(r"(?m)^(\s*)\.\.\.,?(\s*(%.*)?)$", r"\1true,\2", code)
    return re.sub(r"(?<![\w.'])\.\.\.(?![\w.'])", "true", code)


def run_prolog(block, scratch):
    mode = block.mode or ("toplevel" if block.code.lstrip().startswith("?-") else "file")
    code = scratch.localize(dots(block.code))
    lib = REPO / "bindings" / "prolog" / "prolog"
    swipl = ["swipl", "-q", "--no-packs", "-p", f"library={lib}"]
    if mode == "toplevel":
        queries = prolog_queries(code)
        if not queries:
            return "no ?- query in this block"
        (scratch.work / "queries.pl").write_text("\n".join(queries) + "\n")
        (scratch.work / "harness.pl").write_text(PROLOG_HARNESS)
        cmd = swipl + ["-g", "use_module(harness)", "-g", "run_queries('queries.pl')", "-t", "halt"]
    elif mode == "file":
        (scratch.work / "snippet.pl").write_text(code)
        goal = " ".join(block.args) or "true"
        cmd = swipl + ["-g", "load_files('snippet.pl', [])", "-g", goal, "-t", "halt"]
    elif mode == "fragment":
        body = code.strip().rstrip(".")
        given = [PROLOG_GIVEN[g] for g in block.args]
        goals = [g[0] for g in given] + [f"(\n{body}\n)"] + [g[1] for g in reversed(given)]
        clauses = "".join(PROLOG_GIVEN_CLAUSES.get(g, "") for g in block.args)
        (scratch.work / "snippet.pl").write_text(
            ":- use_module(library(usock)).\n:- use_module(library(socket)).\n"
            ":- style_check(-singleton).\n" + clauses + "snippet :-\n    "
            + ",\n    ".join(goals) + ".\n")
        cmd = swipl + ["-g", "load_files('snippet.pl', [])", "-g", "snippet", "-t", "halt"]
    else:
        return f"unknown Prolog mode {mode}"
    rc, out, err = run(cmd, scratch)
    bad = [x for x in err.splitlines() if x.startswith(("Warning:", "ERROR:"))]
    if rc != 0 or bad:
        shown = "".join(f"{p.name}:\n{numbered(p.read_text())}" for p in
                        sorted(scratch.work.glob("*.pl")) if p.name != "harness.pl")
        return f"exit {rc}\n{out}{err}\n--- as run:\n{shown}"
    return None


# ----------------------------------------------------------------------------------------------
# Shell

STAND_INS = {
    # my-server --listen PATH: binds PATH, answers every client until my-client came, exits (the
    # scratch's own client may come first).
    "my-server": """
import socket, sys
assert sys.argv[1] == "--listen", sys.argv
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[2])
s.listen()
while True:
    c, _ = s.accept()
    said = c.recv(100)
    c.sendall(b"hello\\n")
    c.close()
    if said.startswith(b"my-client"):
        break
""",
    # my-client --connect PATH: waits up to 10 s for a server there, prints its reply.
    "my-client": """
import socket, sys, time
assert sys.argv[1] == "--connect", sys.argv
for _ in range(100):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[2])
        break
    except OSError:
        s.close()
        time.sleep(0.1)
else:
    sys.exit(f"my-client: nobody answers at {sys.argv[2]}")
s.sendall(b"my-client\\n")
print(s.recv(100).decode(), end="")
""",
}
# gunicorn and uvicorn: the socket-activation protocol checked, HTTP served on 3 until SIGTERM.
HTTP_SERVER = """
import os, signal, socket, sys
if "--fd" in sys.argv:
    fd = int(sys.argv[sys.argv.index("--fd") + 1])
else:
    assert os.environ.get("LISTEN_PID") == str(os.getpid()), "LISTEN_PID is not mine"
    assert os.environ.get("LISTEN_FDS") == "1", "LISTEN_FDS is not 1"
    fd = 3
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # not sys.exit: SIGTERM may land in shutdown
s = socket.socket(fileno=fd)
assert s.family == socket.AF_UNIX
while True:
    c, _ = s.accept()
    c.recv(4096)
    c.sendall(b"HTTP/1.0 200 OK\\r\\ncontent-length: 6\\r\\n\\r\\nhello\\n")
    c.close()
"""
STAND_INS["gunicorn"] = STAND_INS["uvicorn"] = HTTP_SERVER
# curl, as typed a moment later on a terminal: it waits up to 10 s for --unix-socket's path (the
# docs start the server in the background just before) and shows no progress meter.
CURL = """
import os, subprocess, sys, time
args = sys.argv[1:]
if "--unix-socket" in args:
    path = args[args.index("--unix-socket") + 1]
    for _ in range(100):
        if os.path.exists(path):
            break
        time.sleep(0.1)
os.execv({curl!r}, [{curl!r}, "--silent", "--show-error", *args])
"""


def run_sh(block, scratch):
    cli = Path(os.environ.get("USOCK_CLI", REPO / "target" / "release" / "usock"))
    if not cli.exists():
        return f"{cli} is not built (make cli)"
    (scratch.bin / "usock").symlink_to(cli.resolve())
    curl = shutil.which("curl")
    if not curl:
        return "curl is not installed (tools/ensure-deps.sh cli)"
    for name, code in [*STAND_INS.items(), ("curl", CURL.replace("{curl!r}", repr(curl)))]:
        (scratch.bin / name).write_text(f"#!{sys.executable}\n{code}")
        (scratch.bin / name).chmod(0o755)
    script = scratch.localize(block.code)
    (scratch.work / "snippet.sh").write_text(script)
    rc, out, err = run(["bash", "-e", "snippet.sh"], scratch)
    if rc != 0 or err:
        return f"exit {rc}, stdout:\n{out}stderr:\n{err}\n--- as run:\n{numbered(script)}"
    return None


# ----------------------------------------------------------------------------------------------
# Rust


def run_rust(block, scratch):
    body = scratch.localize(re.sub(r"(?m)^\s*\.\.\.\s*$", "", block.code))
    mode = block.mode or ("program" if re.search(r"\bfn main\s*\(", body) else "fragment")
    if mode == "program":
        source = body
    elif mode == "fragment":
        source = ("#[allow(unused_variables)]\n"
                  "fn main() -> Result<(), Box<dyn std::error::Error>> {\n"
                  + textwrap.indent(body, "    ") + "    Ok(())\n}\n")
    else:
        return f"unknown Rust mode {mode}"
    src = scratch.work / "snippet.rs"
    src.write_text(source)
    rel = LIBDIR
    exe = scratch.work / "snippet"
    rc, out, err = run(["rustc", "--edition", "2021", "-D", "warnings", "-o", str(exe),
                        "--extern", f"usock={rel / 'libusock.rlib'}", "-L", f"dependency={rel / 'deps'}",
                        str(src)], scratch)
    if rc != 0:
        return f"does not compile:\n{err}\n--- as compiled:\n{numbered(source)}"
    rc, out, err = run([str(exe)], scratch)
    if rc != 0 or err:
        return f"exit {rc}, stderr:\n{err}\n--- as compiled:\n{numbered(source)}"
    return None


RUNNERS = {"c": run_c, "prolog": run_prolog, "sh": run_sh, "rust": run_rust}


# ----------------------------------------------------------------------------------------------


def numbered(text):
    return "".join(f"{i:4}  {line}\n" for i, line in enumerate(text.splitlines(), 1))


def skip_reason(block):
    if block.lang in ELSEWHERE:
        return None
    if block.lang not in RUNNERS:
        return f"no runner for ```{block.lang}"
    if block.mode == "skip":
        return " ".join(block.args) or "marked skip (no reason given)"
    if block.root and not IS_ROOT:
        return "needs root"
    return None


def main(argv):
    blocks = all_blocks()
    if argv == ["--list"]:
        for b in blocks:
            if b.lang in ELSEWHERE:
                how = f"run by {ELSEWHERE[b.lang]}"
            elif skip_reason(b):
                how = f"skipped: {skip_reason(b)}"
            else:
                how = f"run: {' '.join([b.mode or 'default', *b.args])}"
            print(f"{b.where:36} {b.lang:7} {how}")
        return 0
    langs = [LANGS.get(a, a) for a in argv]
    unknown = [a for a in langs if a not in RUNNERS]
    if not langs or unknown:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    failed, passed, skipped = [], [], []
    for b in blocks:
        if b.lang not in langs:
            continue
        reason = skip_reason(b)
        if reason:
            skipped.append((b, reason))
            continue
        with Scratch() as scratch:
            try:
                problem = RUNNERS[b.lang](b, scratch)
            except (KeyError, ValueError) as e:
                problem = f"bad marker: {e!r}"
            left = scratch.left()
            if problem is None and left:
                problem = "left behind: " + ", ".join(os.path.relpath(p, scratch.root) for p in left)
        if problem:
            failed.append(b)
            print(f"FAIL {b.where} ({b.lang}): {problem}")
        else:
            passed.append(b)
            print(f"ok   {b.where} ({b.lang}{', ' + b.mode if b.mode else ''})")
    for b, reason in skipped:
        print(f"skip {b.where} ({b.lang}): {reason}")
    if os.environ.get("USOCK_SKIPPED"):
        with open(os.environ["USOCK_SKIPPED"], "a") as f:
            for b, reason in skipped:
                if reason == "needs root":
                    f.write(f"Docs: the example {b.where} ({b.lang}): it needs root\n")
    print(f"doc examples ({', '.join(langs)}): {len(passed)} passed, {len(failed)} failed, "
          f"{len(skipped)} skipped")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
