#!/usr/bin/env python3
"""`make bench`: usock against the bare system calls and the recipes people use today.

One cycle = make a private directory, bind and listen on a socket in it, close it, remove
everything. Every contender runs on the same parent directory in the same run; the rounds
interleave the contenders so that a slow moment of the machine hits all of them alike. The
result is written to BENCHMARKS.md (path given as the only argument).

Run from the repository root after the Makefile has built the pieces (`make bench` does).
"""

import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
C_CYCLES = os.path.join(ROOT, "target/c/cycles")
# The same program linked against the library built with --cfg usock_portable (the path macOS
# and the BSDs take).
C_CYCLES_PORTABLE = os.path.join(ROOT, "target/portable/c/cycles")
C_CALIBRATE = os.path.join(ROOT, "target/c/calibrate")
RUST = os.path.join(ROOT, "target/bench-release/usock-bench")
PYTHON = os.path.join(ROOT, ".venv/bin/python")
ROUNDS = int(os.environ.get("USOCK_BENCH_ROUNDS", "7"))


def run(cmd, **kw):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, **kw)
    return out.stdout.strip()


def contenders(parent):
    """(key, label, command giving µs per cycle) for one parent directory."""
    py, pl = PYTHON, "swipl"
    return [
        ("limit", "C, bare system calls, no checks (the limit)", [C_CYCLES, "limit", parent, "3000"]),
        ("usock_c", "usock from C (the C ABI)", [C_CYCLES, "usock", parent, "3000"]),
        ("usock_c_portable", "usock from C, the portable path (macOS and the BSDs; `--cfg usock_portable`)",
         [C_CYCLES_PORTABLE, "usock", parent, "3000"]),
        ("usock_rust", "usock from Rust (`PrivateDir`)", [RUST, "cycles", "usock", parent, "3000"]),
        ("tempfile", "Rust `tempfile` `Builder::make_in` + `UnixListener` (no private directory)",
         [RUST, "cycles", "tempfile", parent, "3000"]),
        ("py_usock", "Python: `usock.listen()`", [py, "bench/python/cycles.py", "usock", parent, "2000"]),
        ("py_mkdtemp", "Python: `tempfile.mkdtemp` + `bind` + `shutil.rmtree` (multiprocessing's recipe)",
         [py, "bench/python/cycles.py", "mkdtemp", parent, "2000"]),
        ("pl_usock", "SWI-Prolog: `usock_create_dir/2` + `usock_bind/3`", [pl, "bench/prolog/cycles.pl", "usock", parent, "2000"]),
        ("pl_mqi", "SWI-Prolog: MQI's shipped recipe (`tmp_file`, `make_directory`, `chmod`, `tmp_file_stream`, `tcp_bind`, `delete_directory_and_contents`)",
         [pl, "bench/prolog/cycles.pl", "mqi", parent, "2000"]),
        ("pl_shell", "SWI-Prolog: shelling out to `mkdir -m 700` per socket", [pl, "bench/prolog/cycles.pl", "shell", parent, "40"]),
    ]


def measure(parent):
    rows = contenders(parent)
    samples = {key: [] for key, _, _ in rows}
    for _ in range(ROUNDS):
        for key, _, cmd in rows:
            samples[key].append(float(run(cmd)))
    return [(key, label, samples[key]) for key, label, _ in rows]


def syscalls(parent, mode, program=C_CYCLES):
    """System calls per cycle: strace -c -f of 1000 cycles less that of 0 (start-up, warm-up)."""
    def total(n):
        with tempfile.NamedTemporaryFile("r") as f:
            run(["strace", "-f", "-c", "-o", f.name, program, mode, parent, str(n)])
            text = f.read()
        counts = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
                counts[parts[-1]] = int(parts[3])
        return counts
    base, full = total(0), total(1000)
    per = {k: (full.get(k, 0) - base.get(k, 0)) / 1000 for k in full}
    return {k: v for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.5}


COLD_USOCK = "import usock; usock.listen().close()"
COLD_MKDTEMP = ("import os, shutil, socket, tempfile\n"
                "d = tempfile.mkdtemp(); s = socket.socket(socket.AF_UNIX)\n"
                "s.bind(os.path.join(d, 'sock')); s.listen(); s.close(); shutil.rmtree(d)")


def cold_start(pairs=30):
    """Whole Python processes, interleaved pairs: import usock and make one listener, against
    the same with tempfile.mkdtemp + socket + shutil.rmtree. Returns (usock ms, recipe ms,
    median of per-pair ratios)."""
    import time

    def once(code):
        start = time.perf_counter()
        subprocess.run([PYTHON, "-c", code], check=True, cwd="/")
        return (time.perf_counter() - start) * 1000

    once(COLD_USOCK), once(COLD_MKDTEMP)  # warm the page cache and the .pyc files
    usock_ms, recipe_ms = [], []
    for _ in range(pairs):
        usock_ms.append(once(COLD_USOCK))
        recipe_ms.append(once(COLD_MKDTEMP))
    ratio = statistics.median(u / r for u, r in zip(usock_ms, recipe_ms))
    return statistics.median(usock_ms), statistics.median(recipe_ms), ratio


def interleaved(parent):
    """The private-directory cycle and the well-known-path cycle against their bare recipes,
    all four in turn in one process (`cycles interleaved`), ROUNDS runs: per run the median of
    per-round ratios and the µs per cycle of each side; plus the system calls per cycle."""
    wk_parent = tempfile.mkdtemp(prefix="usock-bench-wk-", dir=parent)  # 0700: a well-known path's directory
    try:
        runs = {"private": [], "well-known": []}
        for _ in range(ROUNDS):
            for line in run([C_CYCLES, "interleaved", parent, wk_parent, "3000"]).splitlines():
                pair, ratio, usock_us, bare_us = line.split()
                runs[pair].append((float(ratio), float(usock_us), float(bare_us)))
        calls = {
            "private": (syscalls(parent, "usock"), syscalls(parent, "limit")),
            "well-known": (syscalls(wk_parent, "wk-usock"), syscalls(wk_parent, "wk-limit")),
        }
        return runs, calls
    finally:
        shutil.rmtree(wk_parent)


# Calls of today's cycles that could go without dropping a check (bench/NOTES.md says which and
# why): per cycle, (calibration entry, count). The private and well-known cycles have none left:
# the second directory `fstat` and the socket's `newfstatat` went, and `getpid` is a check (a
# `vfork` or `clone(CLONE_VM)` child shares the wipe-on-fork token). The lock's release would go
# only by leaving it to `close`, which a child forked while the lock is held defeats.
REMOVABLE = {
    "private": [],
    "well-known": [],
    "well-known, with the lock's release left to close": [("flock(LOCK_UN) before close", 2)],
}


def removable_lines(runs, calib):
    lines = ["Calls that could go without dropping a check (see the notes at the end), at their "
             "cost measured here (`calibrate`), against the usock cycle above:", ""]
    for what, calls in REMOVABLE.items():
        pair = "private" if what == "private" else "well-known"
        usock_us = statistics.median(u for _, u, _ in runs[pair])
        if not calls:
            lines.append(f"- {what}: none")
            continue
        cost = sum(float(calib[k]) * n for k, n in calls)
        names = " + ".join(f"`{k}` ×{n}" for k, n in calls)
        lines.append(f"- {what}: {names}: {cost:.2f} µs, {100 * cost / usock_us:.1f}% of {usock_us:.1f} µs")
    return lines + [""]


def interleaved_lines(title, runs, calls):
    labels = {
        "private": ("one private-directory cycle (`usock_create_dir`, `usock_bind`, `close`, `usock_cleanup`)",
                    "the bare recipe (random name, `mkdir` 0700, `socket`, `bind`, `listen`, `close`, `unlink`, `rmdir`)",
                    1.3),
        "well-known": ("one well-known-path cycle (`socket`, `usock_bind_path`, `usock_unbind_path`, `close`)",
                       "`unlink`, `socket`, `bind`, `listen`, `close`, `unlink`",
                       1.8),
    }
    lines = [f"## usock against the bare recipe, interleaved in one process on {title}", "",
             "`target/c/cycles interleaved`: the four cycles in turn, one each, 3000 times in one process; "
             f"the ratio is the median over rounds of 100 turns; {ROUNDS} such runs (median, min and max of "
             "their ratios). System calls per cycle: `strace -c -f` of 1000 cycles less that of none.", "",
             "| cycle | against | ratio (median) | min | max | µs usock | µs bare | system calls usock | bare | goal | |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for pair, (what, against, goal) in labels.items():
        ratios = [r for r, _, _ in runs[pair]]
        med = statistics.median(ratios)
        usock_us = statistics.median(u for _, u, _ in runs[pair])
        bare_us = statistics.median(b for _, _, b in runs[pair])
        usock_calls, bare_calls = (sum(c.values()) for c in calls[pair])
        lines.append(f"| {what} | {against} | {med:.2f}× | {min(ratios):.2f}× | {max(ratios):.2f}× "
                     f"| {usock_us:.1f} | {bare_us:.1f} | {usock_calls:.0f} | {bare_calls:.0f} | ≤ {goal}× "
                     f"| {'met' if med <= goal else '**missed**'} |")
    lines += ["", "| system call | private: usock | private: bare | well-known: usock | well-known: bare |",
              "|---|---:|---:|---:|---:|"]
    (pu, pb), (wu, wb) = calls["private"], calls["well-known"]
    names = set(pu) | set(pb) | set(wu) | set(wb)
    for name in sorted(names, key=lambda n: (-pu.get(n, 0) - wu.get(n, 0), n)):
        lines.append(f"| `{name}` | {pu.get(name, 0):.0f} | {pb.get(name, 0):.0f} | {wu.get(name, 0):.0f} "
                     f"| {wb.get(name, 0):.0f} |")
    lines.append(f"| **total** | **{sum(pu.values()):.0f}** | **{sum(pb.values()):.0f}** "
                 f"| **{sum(wu.values()):.0f}** | **{sum(wb.values()):.0f}** |")
    return lines + [""]


def commit():
    try:
        rev = run(["git", "rev-parse", "--short", "HEAD"])
        dirty = run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "Cargo.toml", "build.rs"])
        return rev + (" with uncommitted changes to the library" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


LOAD_AT_START = " ".join(open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "unknown"


def stats(values):
    return statistics.median(values), min(values), max(values)


def main():
    if len(sys.argv) != 2 or not sys.argv[1].endswith(".md"):
        sys.exit("usage: bench/run.py BENCHMARKS.md   (run by `make bench`, which builds the pieces first)")
    out_path = sys.argv[1]
    parents = []
    if os.path.isdir("/dev/shm"):
        parents.append(("/dev/shm", "tmpfs (`/dev/shm`)"))

    # usock against the bare recipes, in one process: `USOCK_BENCH_ONLY=interleaved` prints
    # this part alone (the C `cycles` program is all it needs).
    print(f"bench: interleaved cycles on {parents[0][0]} ({ROUNDS} runs)", flush=True)
    mixed = interleaved(parents[0][0])
    if os.environ.get("USOCK_BENCH_ONLY") == "interleaved":
        calib = dict(line.split("\t") for line in run([C_CALIBRATE, parents[0][0]]).splitlines())
        print("\n".join(interleaved_lines(parents[0][1], *mixed) + removable_lines(mixed[0], calib)))
        return

    auto = run([PYTHON, "-c", "import usock, os\nwith usock.private_dir() as d: print(os.path.dirname(d.path))"])
    parents.append((auto, f"the default location (`{auto}`, usock's automatic choice here)"))

    results = {}
    for parent, _ in parents:
        print(f"bench: {parent} ({ROUNDS} rounds)", flush=True)
        results[parent] = measure(parent)

    print("bench: system calls", flush=True)
    sys_limit = syscalls(parents[0][0], "limit")
    sys_usock = syscalls(parents[0][0], "usock")
    sys_portable = syscalls(parents[0][0], "usock", C_CYCLES_PORTABLE)
    calib = dict(line.split("\t") for line in run([C_CALIBRATE, parents[0][0]]).splitlines())

    print("bench: Python cold start", flush=True)
    cold = cold_start()

    print("bench: scale", flush=True)
    p0 = parents[0][0]
    threads = {t: float(run([RUST, "threads", str(t), p0, "1500"])) for t in (1, 2, 8)}
    cleanup = {}
    for k in (1, 100, 10000):
        reps = "3" if k >= 10000 else "20"
        usock_us, bare_us = [], []
        for _ in range(3):
            usock_us.append(float(run([RUST, "cleanup", str(k), p0, reps])))
            bare_us.append(float(run([RUST, "cleanup-bare", str(k), p0, reps])))
        cleanup[k] = (statistics.median(usock_us), statistics.median(bare_us))
    accepts = {"plain": [], "checked": []}
    for _ in range(ROUNDS):
        for kind in accepts:
            accepts[kind].append(float(run([RUST, "accept", kind, "20000", p0])))
    sweeps = {}
    for kind in ("sweep-others", "sweep-dead"):
        sweeps[kind] = statistics.median(float(run([RUST, kind, "10000", p0])) for _ in range(3))
    crowded_dir = tempfile.mkdtemp(prefix="usock-bench-crowded-", dir=p0)
    os.chmod(crowded_dir, 0o755)
    for i in range(100000):
        open(os.path.join(crowded_dir, f"f{i:06d}"), "w").close()
    crowded = {"usock": [], "limit": []}
    for _ in range(ROUNDS):
        for key in crowded:
            crowded[key].append(float(run([C_CYCLES, key, crowded_dir, "2000"])))
    shutil.rmtree(crowded_dir)

    write(out_path, parents, results, sys_limit, sys_usock, sys_portable, calib, threads, cleanup, crowded, cold, sweeps, accepts, mixed)
    print(f"bench: wrote {out_path}")


def write(out_path, parents, results, sys_limit, sys_usock, sys_portable, calib, threads, cleanup, crowded, cold, sweeps, accepts, mixed):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.*)", f.read()).group(1)
    except (OSError, AttributeError):
        pass
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run.py`); do not edit by hand.",
        "",
        f"- Date: {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {cpu}, {os.cpu_count()} cores, Linux {platform.release()}",
        f"- Library built from commit {commit()}; load average at the start {LOAD_AT_START}",
        f"- Rounds: {ROUNDS} per contender, interleaved; each round times thousands of cycles "
        "(40 for the shell recipe) after a warm-up, and reports µs per cycle.",
        "",
        "One cycle = make a private directory, bind and listen on a socket in it, close it, remove",
        "everything. All contenders use the same parent directory in the same run.",
        "",
    ]
    lines += interleaved_lines(parents[0][1], *mixed)
    lines += removable_lines(mixed[0], calib)
    medians = {}
    for parent, title in parents:
        lines += [f"## µs per cycle on {title}", "",
                  "| contender | median | min | max | vs. limit (median of per-round ratios) |",
                  "|---|---:|---:|---:|---:|"]
        rows = results[parent]
        limit = dict((k, v) for k, _, v in rows)["limit"]
        for key, label, values in rows:
            med, lo, hi = stats(values)
            medians[(parent, key)] = med
            r = statistics.median(x / y for x, y in zip(values, limit))
            lines.append(f"| {label} | {med:.1f} | {lo:.1f} | {hi:.1f} | {r:.2f}× |")
        lines.append("")

    p0 = parents[0][0]
    m = lambda key, parent=p0: medians[(parent, key)]

    def ratio(a, b, parent):
        """Median over rounds of a/b, each round's two measurements taken moments apart, so
        that the machine's drift in speed between rounds cancels out."""
        samples = {k: v for k, _, v in results[parent]}
        return statistics.median(x / y for x, y in zip(samples[a], samples[b]))
    total_limit, total_usock = sum(sys_limit.values()), sum(sys_usock.values())
    total_portable = sum(sys_portable.values())

    def target(name, value, ok, goal):
        return f"| {name} | {value} | {goal} | {'met' if ok else '**missed**'} |"

    lines += ["## Targets", "", "| target | measured | goal | |", "|---|---:|---:|---|"]
    for parent, title in parents:
        r = ratio("usock_c", "limit", parent)
        lines.append(target(f"usock from C vs. the limit, {title}", f"{r:.2f}×", r <= 1.3, "≤ 1.3×"))
        r = ratio("usock_c_portable", "limit", parent)
        lines.append(f"| (the portable path from C vs. the limit, {title}) | {r:.2f}× | | |")
    r = total_usock / total_limit
    lines.append(target("system calls per cycle, usock vs. the limit", f"{total_usock:.0f} vs. {total_limit:.0f} ({r:.1f}×)", r <= 2, "≤ 2×"))
    for parent, title in parents:
        r = ratio("py_usock", "py_mkdtemp", parent)
        lines.append(target(f"Python binding vs. the mkdtemp recipe, {title}", f"{r:.2f}×", r <= 1.0, "≤ 1×"))
        r = ratio("pl_usock", "pl_mqi", parent)
        lines.append(target(f"Prolog binding vs. MQI's recipe, {title}", f"{r:.2f}×", r <= 0.5, "≤ 0.5×"))
        r = ratio("pl_shell", "pl_usock", parent)
        lines.append(target(f"Prolog binding vs. shelling out, {title}", f"{r:.0f}× faster", r >= 100, "≥ 100× faster"))
        r = ratio("pl_shell", "limit", parent)
        lines.append(f"| (for scale: the bare C limit vs. shelling out, {title}) | {r:.0f}× faster | | |")
        r = ratio("pl_shell", "usock_c", parent)
        lines.append(f"| (for scale: usock from C vs. shelling out, {title}) | {r:.0f}× faster | | |")
    cold_usock, cold_recipe, cold_ratio = cold
    lines.append(target("Python cold start: a process that imports usock and makes one listener, vs. "
                        "one using `tempfile.mkdtemp` + `socket` + `shutil.rmtree` (median of 30 interleaved pairs)",
                        f"{cold_ratio:.2f}× ({cold_usock:.0f} vs. {cold_recipe:.0f} ms)", cold_ratio <= 1.2, "≤ 1.2×"))
    flocks = sys_usock.get("flock", 0)
    lock_cost = next((float(v) for k, v in calib.items() if k.startswith("flock")), 0.0)
    lines.append(target("system calls the sweep lock adds to a create-bind-cleanup cycle (`flock`)",
                        f"{flocks:.0f} ({lock_cost:.2f} µs with its release)", flocks <= 1, "≤ 1"))
    lines.append("")

    lines += ["## System calls per cycle (strace -c, on " + p0 + ")", "",
              "| system call | limit | usock | usock, portable path |", "|---|---:|---:|---:|"]
    names = set(sys_limit) | set(sys_usock) | set(sys_portable)
    for name in sorted(names, key=lambda n: (-sys_usock.get(n, 0), -sys_portable.get(n, 0), n)):
        lines.append(f"| `{name}` | {sys_limit.get(name, 0):.0f} | {sys_usock.get(name, 0):.0f} "
                     f"| {sys_portable.get(name, 0):.0f} |")
    lines.append(f"| **total** | **{total_limit:.0f}** | **{total_usock:.0f}** | **{total_portable:.0f}** |")
    lines += ["", "Measured cost of the cheap calls usock adds, on this machine (µs per call):", ""]
    lines += [f"- {k}: {float(v):.2f}" for k, v in calib.items()]
    lines.append("")

    lines += ["## Scale (usock from Rust, on " + p0 + ")", "",
              "| threads | cycles per second | per thread |", "|---:|---:|---:|"]
    for t, rate in threads.items():
        lines.append(f"| {t} | {rate:.0f} | {rate / t:.0f} |")
    lines += ["", "| sockets in the directory | usock cleanup µs | µs per socket | bare `lstat` + `unlink` per socket |",
              "|---:|---:|---:|---:|"]
    for k, (us, bare) in cleanup.items():
        lines.append(f"| {k} | {us:.1f} | {us / k:.2f} | {bare / k:.2f} |")
    accept_ratio = statistics.median(c / p for c, p in zip(accepts["checked"], accepts["plain"]))
    lines += ["", "A checked accept (`AcceptPolicy::accept`: `accept4` and the peer's credentials, "
              "`SO_PEERCRED`) against a plain `accept()`, each with the client's `connect` and both "
              f"closes, median of {ROUNDS} rounds of 20 000: "
              f"{statistics.median(accepts['checked']):.2f} µs vs. {statistics.median(accepts['plain']):.2f} µs "
              f"({accept_ratio:.2f}×)."]
    lines += ["", "The crash sweep of a parent holding 10 000 entries (`usock::sweep`, grace 0, median of 3):", "",
              f"- 10 000 entries that are not usock's (a busy `/tmp`): {sweeps['sweep-others']:.1f} ms, nothing removed",
              f"- 10 000 usock directories left by dead processes, a stale socket in each: {sweeps['sweep-dead']:.1f} ms "
              f"to examine, probe and remove them all ({sweeps['sweep-dead'] * 1000 / 10000:.0f} µs each)"]
    crowded_ratio = statistics.median(u / l for u, l in zip(crowded["usock"], crowded["limit"]))
    lines += ["", f"A parent already holding 100 000 entries: usock from C {statistics.median(crowded['usock']):.1f} µs "
              f"per cycle, the limit {statistics.median(crowded['limit']):.1f} µs, a ratio of {crowded_ratio:.2f}× "
              f"(in the empty parent above: {ratio('usock_c', 'limit', p0):.2f}×).", ""]
    with open(os.path.join(ROOT, "bench/NOTES.md"), encoding="utf-8") as f:
        lines.append(f.read().rstrip() + "\n")
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    main()
