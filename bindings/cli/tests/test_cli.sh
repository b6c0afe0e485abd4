#!/usr/bin/env bash
# Tests of the usock command with real programs: a shell script with a server that binds at
# `usock path`, gunicorn started by `usock run` and queried with curl, servers that exit, crash
# or are stopped with SIGTERM, the child's pid, signal mask and descriptors, `usock clean` and
# `usock check`, and the man page. Prints "N passed, N failed, N skipped".
#   tests/test_cli.sh /path/to/usock /path/to/venv
# With $USOCK_SKIPPED naming a file (make sets it), each skip appends its reason there.
set -uo pipefail
USOCK=$1
VENV=$2
PY=$VENV/bin/python
passed=0 failed=0 skipped=0
work=$(mktemp -d /tmp/usock-cli-test-XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

# The checks that are guarantees of SECURITY.md: kind, what was tried, and how often. When
# $USOCK_FIGURES names a file (make test sets it), each of them that held writes its row there.
declare -A FIGURE=(
  [usock_sweep_keeps_what_usock_dir_and_path_printed]=$'attack\tusock dir and usock path outputs (a subshell gone at once), swept with grace 0: kept\t2'
  [usock_dir_and_path_that_cannot_print_leave_nothing]=$'fault\tusock path with standard output closed, usock dir into a pipe whose reader is gone: an error, the directory removed, never kept unknown\t2'
  [usock_clean_refuses_a_directory_where_a_server_answers]=$'fault\tusock clean, without --force, of a directory usock path printed while a plain server listens there: refused, socket left; removed once the server is gone\t1'
  [usock_clean_refuses_a_held_directory_without_force]=$'fault\tusock clean of a directory a live process holds (the sweep lock), without --force: refused, socket left\t1'
  [usock_run_keeps_the_status_when_sigchld_is_inherited_ignored]=$'fault\tusock run started with SIGCHLD ignored (inherited across exec): the command\'s status kept, no hang\t1'
  [usock_run_leaves_nothing_when_sigterm_or_sighup_arrives_during_setup]=$'fault\tusock run sent SIGTERM or SIGHUP over and over from a random moment of its setup, 150 runs: nothing left\t150'
  [usock_run_killed_by_sigkill_takes_its_server_with_it]=$'fault\tusock run killed with SIGKILL: its server does not outlive it (parent-death signal)\t1'
  [usock_run_passes_sigint_from_a_process_to_the_server_once]=$'fault\tSIGINT sent to usock run by a process: the server gets it once, the directory is removed\t1'
  [usock_run_ctrl_c_in_a_terminal_reaches_the_server_once]=$'fault\tCtrl-C in usock run\'s terminal (reaches runner and server): the server gets SIGINT once\t1'
  [usock_run_refuses_a_name_systemd_would_not_accept]=$'attack\tusock run --name with a colon, a tab, a newline, DEL, UTF-8, 256 bytes: refused (status 2) before anything is made, LISTEN_FDNAMES never corrupted\t6'
  [usock_check_agrees_with_usock_dir_on_a_link_in_a_sticky_world_writable_directory]=$'attack\tusock check on a symbolic link in a sticky world-writable directory: the verdict, reason and status of usock dir --parent (refused)\t1'
)
ok() {
  passed=$((passed + 1)); echo "ok   $1"
  if [ -n "${USOCK_FIGURES:-}" ] && [ -n "${FIGURE[$1]:-}" ]; then
    local kind what n; IFS=$'\t' read -r kind what n <<<"${FIGURE[$1]}"
    printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$what" "$n" "$n" "bindings/cli/tests/test_cli.sh::$1" >> "$USOCK_FIGURES"
  fi
}
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
skip() { # skip NAME REASON
  skipped=$((skipped + 1)); echo "skip $1: $2"
  [ -n "${USOCK_SKIPPED:-}" ] && echo "CLI: test_cli.sh $1: $2" >>"$USOCK_SKIPPED"
}
check() { # check NAME CONDITION-COMMAND...
  local name=$1; shift
  if "$@"; then ok "$name"; else fail "$name" "$*"; fi
}
wait_for() { # wait_for PATH: until a socket is there (10 s)
  for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1
}

# 1. A shell script: a directory for a server that binds by itself, a client, cleanup.
t=shell_script_with_usock_path
sock=$("$USOCK" path --name api.sock --parent "$work")
dir=$(dirname "$sock")
"$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen()
c, _ = s.accept(); c.sendall(b"pong"); c.close()' "$sock" &
server=$!
wait_for "$sock"
reply=$("$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(s.recv(4).decode())' "$sock")
wait $server
mode=$(stat -c %a "$dir")
"$USOCK" clean "$dir"; rc=$?
if [ "$reply" = pong ] && [ "$mode" = 700 ] && [ $rc -eq 0 ] && [ ! -e "$dir" ]; then ok $t
else fail $t "reply=$reply mode=$mode rc=$rc exists=$([ -e "$dir" ] && echo yes)"; fi

t=usock_dir_then_clean
d=$("$USOCK" dir --parent "$work")
check $t test -d "$d" -a "$(stat -c %a "$d")" = 700
"$USOCK" clean "$d" && [ ! -e "$d" ] && ok usock_clean_removes_it || fail usock_clean_removes_it "$d"

# 2. usock clean refuses what usock did not make; usock check explains.
mkdir -p "$work/plain" && chmod 700 "$work/plain"
"$USOCK" clean "$work/plain" 2>"$work/err"; rc=$?
if [ $rc -eq 13 ] && [ -d "$work/plain" ] && grep -q "not a name usock makes" "$work/err"; then ok usock_clean_refuses_a_foreign_directory
else fail usock_clean_refuses_a_foreign_directory "rc=$rc $(cat "$work/err")"; fi
"$USOCK" check "$work" >"$work/out"; rc=$?
# (and says it leaves room for a socket path, as the man page promises; it said nothing)
if [ $rc -eq 0 ] && grep -q "passes usock's parent checks" "$work/out" && grep -q "^/: directory" "$work/out" \
   && grep -qx "it leaves room in sun_path for a private directory and a socket in it" "$work/out"; then ok usock_check_a_safe_parent
else fail usock_check_a_safe_parent "rc=$rc $(cat "$work/out")"; fi
mkdir -p "$work/open" && chmod 777 "$work/open"
"$USOCK" check "$work/open/app.sock" >"$work/out"; rc=$?
if [ $rc -eq 13 ] && grep -q "$work/open: directory, owner uid $(id -u), mode 0777: REFUSED" "$work/out"; then ok usock_check_an_unsafe_parent
else fail usock_check_an_unsafe_parent "rc=$rc $(cat "$work/out")"; fi

# 3. usock run: the protocol, as the child sees it.
# The descriptors listed into a file, not a pipe: the shell holds a pipe's end while it starts
# the command on the other side. bash, not dash: dash keeps a copy of the descriptor it redirects.
out=$("$USOCK" run --parent "$work" -- bash -c 'echo "$$ $LISTEN_PID $LISTEN_FDS $LISTEN_FDNAMES"; ls /proc/$$/fd >"$0"; [ -S "$USOCK_PATH" ] && echo socket; echo "$USOCK_DIR"' "$work/fds")
read -r pid listen_pid fds names <<<"$(sed -n 1p <<<"$out")"
fdlist=$(tr '\n' ' ' <"$work/fds")
if [ "$pid" = "$listen_pid" ] && [ "$fds" = 1 ] && [ "$names" = sock ] && [ "$fdlist" = "0 1 2 3 " ] \
   && [ "$(sed -n 2p <<<"$out")" = socket ] && [ ! -e "$(sed -n 3p <<<"$out")" ]; then
  ok usock_run_sets_listen_pid_to_the_command_and_passes_only_0_to_3
else fail usock_run_sets_listen_pid_to_the_command_and_passes_only_0_to_3 "$out / $fdlist"; fi
mask=$( (trap '' TERM HUP; "$USOCK" run --parent "$work" -- grep -E '^Sig(Blk|Ign)' /proc/self/status) | awk '{print $2}' | tr '\n' ' ')
check usock_run_child_has_an_empty_signal_mask test "$mask" = "0000000000000000 0000000000000000 "
"$USOCK" run --parent "$work" -- sh -c 'exit 7'; rc=$?
check usock_run_exits_with_the_commands_status test $rc -eq 7
"$USOCK" run --parent "$work" -- no-such-command-here 2>/dev/null; rc=$?
check usock_run_command_not_found_is_127 test $rc -eq 127
# A mistyped option is bad usage, not a command: nothing is run (the README's newcomer got 127).
"$USOCK" run --parent "$work" --paht x -- touch "$work/ran" 2>/dev/null; rc=$?
check usock_run_mistyped_option_is_bad_usage test $rc -eq 2 -a ! -e "$work/ran"
"$USOCK" run --parent "$work" sh -c 'test "$1$2" = "-b--c"' sh -b --c; rc=$?
check usock_run_command_keeps_its_own_options test $rc -eq 0
# The man page's table of differences from systemd-socket-activate: `-l /tmp/x.sock` (a
# directory others may write to, even sticky) is refused with 13 and runs nothing; a well-known
# path leaves PATH.lock (0600) beside it and removes the socket.
mkdir -m 1777 "$work/ww"
"$USOCK" run -l "$work/ww/x.sock" --now -- touch "$work/ran-ww" 2>/dev/null; rc=$?
check usock_run_listen_in_a_world_writable_directory_is_13 \
  test $rc -eq 13 -a ! -e "$work/ran-ww" -a -z "$(ls -A "$work/ww")"
mkdir -m 700 "$work/own"
"$USOCK" run -l "$work/own/x.sock" --now -- test -S "$work/own/x.sock"; rc=$?
check usock_run_listen_leaves_only_the_lock_file \
  test $rc -eq 0 -a "$(ls -A "$work/own")" = x.sock.lock -a "$(stat -c %a "$work/own/x.sock.lock")" = 600
# A live server at the path: refused with 15, and the message names the option (--replace), not
# the library's "replace mode"; the live server's socket is left in place.
"$USOCK" run --path "$work/own/live.sock" -- sleep 30 & live=$!
wait_for "$work/own/live.sock"
err=$("$USOCK" run --path "$work/own/live.sock" -- touch "$work/ran-live" 2>&1); rc=$?
kill $live; wait $live 2>/dev/null
check usock_run_live_server_at_the_path_names_the_replace_option \
  test $rc -eq 15 -a ! -e "$work/ran-live" -a -n "$(grep -e '--replace' <<<"$err")" \
    -a -z "$(grep -e 'replace mode' <<<"$err")" -a -n "$(grep -e 'it was left in place' <<<"$err")"

# 4. gunicorn by socket activation (it takes descriptor 3 from LISTEN_FDS and LISTEN_PID by
#    itself), queried with curl; stopped with SIGTERM to usock run.
cat >"$work/app.py" <<'PYEOF'
import os
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hello from {os.getpid()}\n".encode()]
PYEOF
wk=$work/run && mkdir -m 755 "$wk"
"$USOCK" run --path "$wk/app.sock" -- "$VENV/bin/gunicorn" --chdir "$work" --workers 1 app:app >"$work/gunicorn.log" 2>&1 &
runner=$!
wait_for "$wk/app.sock"
body=$(curl -s --max-time 10 --unix-socket "$wk/app.sock" http://localhost/)
mode=$(stat -c %a "$wk/app.sock")
kill -TERM $runner; wait $runner; rc=$?
if [[ "$body" == "hello from "* ]] && [ "$mode" = 600 ] && [ $rc -eq 0 ] && [ ! -e "$wk/app.sock" ]; then
  ok usock_run_gunicorn_curl_and_sigterm_cleans_up
else fail usock_run_gunicorn_curl_and_sigterm_cleans_up "body=$body mode=$mode rc=$rc $(tail -5 "$work/gunicorn.log")"; fi

# 5. Cleanup after the server exits by itself, and after it crashes.
"$USOCK" run --path "$wk/exit.sock" -- sh -c 'exit 0'; rc=$?
check usock_run_cleans_up_after_the_server_exits test $rc -eq 0 -a ! -e "$wk/exit.sock"
"$USOCK" run --path "$wk/crash.sock" -- sh -c 'kill -9 $$'; rc=$?
check usock_run_cleans_up_after_the_server_crashes test $rc -eq 137 -a ! -e "$wk/crash.sock"
before=$(ls "$work" | grep -c '^usock-' || true)
"$USOCK" run --parent "$work" -- sh -c 'kill -SEGV $$'; rc=$?
after=$(ls "$work" | grep -c '^usock-' || true)
check usock_run_private_directory_removed_after_a_crash test $rc -eq 139 -a "$before" = "$after"

# 6. What `usock dir` and `usock path` print is held by nothing, yet every sweep keeps it for a
# day (any grace period); `usock clean` removes it without --force, but refuses without --force
# a directory that a live process holds.
d=$("$USOCK" dir --parent "$work")
p=$("$USOCK" path --parent "$work")
pd=$(dirname "$p")
"$USOCK" sweep "$work" --grace 0 >"$work/out"
if [ -d "$d" ] && [ -d "$pd" ] && grep -q "kept $pd: marked" "$work/out" && grep -q "kept $d: marked" "$work/out"; then
  ok usock_sweep_keeps_what_usock_dir_and_path_printed
else fail usock_sweep_keeps_what_usock_dir_and_path_printed "$(cat "$work/out")"; fi
"$USOCK" clean "$pd" && "$USOCK" clean "$d"; rc=$?
check usock_clean_removes_them_without_force test $rc -eq 0 -a ! -e "$d" -a ! -e "$pd"
rm -f "$work/held"
"$USOCK" run --parent "$work" -- sh -c "echo \"\$USOCK_DIR\" >'$work/held'; exec sleep 30" 2>"$work/run.err" &
runner=$!
for _ in $(seq 100); do [ -s "$work/held" ] && break; sleep 0.1; done
held=$(cat "$work/held")
"$USOCK" clean "$held" 2>"$work/err"; rc=$?
if [ $rc -eq 15 ] && [ -S "$held/sock" ] && grep -q -- "--force" "$work/err"; then ok usock_clean_refuses_a_held_directory_without_force
else fail usock_clean_refuses_a_held_directory_without_force "rc=$rc $(cat "$work/err")"; fi
"$USOCK" clean --force "$held"; rc=$?
check usock_clean_force_removes_a_held_directory test $rc -eq 0 -a ! -e "$held"
kill -TERM $runner; wait $runner 2>/dev/null

# A directory that nothing holds but where a server still answers (a plain server at what
# `usock path` printed): clean refuses it without --force, and removes it once the server is gone.
sock=$("$USOCK" path --parent "$work" --name live.sock)
"$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(60)' "$sock" &
server=$!
wait_for "$sock"
"$USOCK" clean "$(dirname "$sock")" 2>"$work/err"; rc=$?
kill $server; wait $server 2>/dev/null
"$USOCK" clean "$(dirname "$sock")"; after_rc=$?
if [ $rc -eq 15 ] && grep -q "a server answers at $sock" "$work/err" && [ $after_rc -eq 0 ] && [ ! -e "$sock" ]; then
  ok usock_clean_refuses_a_directory_where_a_server_answers
else fail usock_clean_refuses_a_directory_where_a_server_answers "rc=$rc after=$after_rc $(cat "$work/err")"; fi

# A path that cannot be delivered (standard output closed, or a pipe whose reader is gone) is
# an error, and the directory is removed rather than kept from every sweep, known to nobody.
mkdir -m 700 "$work/undelivered"
"$USOCK" path --parent "$work/undelivered" >&- 2>"$work/err"; closed_rc=$?
"$PY" -c '
import os, subprocess, sys
r, w = os.pipe(); os.close(r)          # a reader that is gone before the path is written
sys.exit(subprocess.run(sys.argv[1:], stdout=w, stderr=open(sys.argv[-1] + "/../err2", "w")).returncode)' \
  "$USOCK" dir --parent "$work/undelivered"; piped_rc=$?
cat "$work/err2" >>"$work/err" 2>/dev/null
left=$(ls -A "$work/undelivered")
if [ $closed_rc -eq 18 ] && [ $piped_rc -eq 18 ] && [ -z "$left" ] && grep -q "would reach nobody" "$work/err" && grep -q "Broken pipe" "$work/err"; then ok usock_dir_and_path_that_cannot_print_leave_nothing
else fail usock_dir_and_path_that_cannot_print_leave_nothing "closed rc=$closed_rc piped rc=$piped_rc left=$left $(cat "$work/err")"; fi

# 9. usock run and signals: SIGCHLD inherited ignored; SIGTERM and SIGHUP during setup; SIGKILL
#    of the runner; SIGINT from a process and from a terminal.
t=usock_run_keeps_the_status_when_sigchld_is_inherited_ignored
timeout 10 "$PY" -c '
import os, signal, sys
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])' "$USOCK" run --parent "$work" -- sh -c 'exit 7'; rc=$?
check $t test $rc -eq 7

t=usock_run_leaves_nothing_when_sigterm_or_sighup_arrives_during_setup
mkdir -m 755 "$work/setup"
out=$(timeout 120 "$PY" - "$USOCK" "$work/setup" 150 <<'PYEOF'
# Each run gets SIGTERM (or SIGHUP) again and again from a random moment in its first 6 ms
# until it exits: whenever the first one lands, nothing may be left in the parent.
import os, random, signal, subprocess, sys, time
usock, parent, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(runs):
    sig = signal.SIGTERM if i % 2 == 0 else signal.SIGHUP
    p = subprocess.Popen([usock, "run", "--parent", parent, "--", "sleep", "30"])
    time.sleep(random.uniform(0, 0.006))
    deadline = time.monotonic() + 5
    while p.poll() is None and time.monotonic() < deadline:
        os.kill(p.pid, sig)
        time.sleep(0.0002)
    if p.poll() is None:
        p.kill(); p.wait()
        print(f"run {i}: still running 5 s after {sig.name}")
    left = os.listdir(parent)
    if left:
        print(f"run {i} ({sig.name}, status {p.returncode}): left {left}")
        subprocess.run([usock, "sweep", parent, "--grace", "0"], stdout=subprocess.DEVNULL)
PYEOF
)
check $t test -z "$out"

t=usock_run_killed_by_sigkill_takes_its_server_with_it
mkdir -m 755 "$work/k9"
"$USOCK" run --parent "$work/k9" -- sh -c 'echo $$ >"$0.tmp"; mv "$0.tmp" "$0"; exec sleep 60' "$work/k9.pid" &
runner=$!
for _ in $(seq 100); do [ -s "$work/k9.pid" ] && break; sleep 0.05; done
server=$(cat "$work/k9.pid" 2>/dev/null)
kill -KILL $runner; wait $runner 2>/dev/null
state=alive
for _ in $(seq 100); do # gone, or a zombie nobody reaps here, within 5 s
  s=$(awk '{print $3}' "/proc/$server/stat" 2>/dev/null)
  if [ -z "$s" ] || [ "$s" = Z ]; then state=gone; break; fi
  sleep 0.05
done
[ -n "$server" ] && [ $state = alive ] && kill -KILL "$server" 2>/dev/null
check $t test -n "$server" -a $state = gone

# A server that counts the SIGINTs it gets for half a second after the first, writes the count
# and where it was, and exits with status 3. Counted by the byte the C-level handler writes to
# the wakeup descriptor on each delivery: Python runs its own handler once for two that come
# close together.
cat >"$work/count_int.py" <<'PYEOF'
import os, select, signal, sys, time
r, w = os.pipe()
os.set_blocking(w, False)
signal.signal(signal.SIGINT, lambda sig, frame: None)
signal.set_wakeup_fd(w)
open(sys.argv[1] + ".ready", "w").close()
count, until = 0, time.monotonic() + 10
while time.monotonic() < until:
    if select.select([r], [], [], max(0, until - time.monotonic()))[0]:
        got = os.read(r, 64).count(signal.SIGINT)
        if got and count == 0:
            until = time.monotonic() + 0.5
        count += got
with open(sys.argv[1], "w") as f:
    f.write(f"{count} {os.environ['USOCK_DIR']}\n")
sys.exit(3)
PYEOF

t=usock_run_passes_sigint_from_a_process_to_the_server_once
rm -f "$work/int" "$work/int.ready"
# Not under timeout(1), which would pass the signal to its whole process group: the server
# ends by itself within 11 s.
"$USOCK" run --parent "$work" -- "$PY" "$work/count_int.py" "$work/int" &
runner=$!
for _ in $(seq 200); do [ -e "$work/int.ready" ] && break; sleep 0.05; done
kill -INT $runner; wait $runner; rc=$?
read -r count dir <"$work/int" 2>/dev/null
if [ $rc -eq 3 ] && [ "$count" = 1 ] && [ -n "$dir" ] && [ ! -e "$dir" ]; then ok $t
else fail $t "rc=$rc count=$count dir=$dir"; fi

t=usock_run_ctrl_c_in_a_terminal_reaches_the_server_once
rm -f "$work/int" "$work/int.ready"
rc=$(timeout 20 "$PY" - "$USOCK" "$work" "$PY" "$work/count_int.py" "$work/int" <<'PYEOF'
# The runner in a new session whose controlling terminal is a pty; Ctrl-C typed on it.
import os, pty, sys, time
usock, parent, py, server, out = sys.argv[1:]
pid, master = pty.fork()
if pid == 0:
    os.execv(usock, [usock, "run", "--parent", parent, "--", py, server, out])
deadline = time.monotonic() + 10
while not os.path.exists(out + ".ready") and time.monotonic() < deadline:
    time.sleep(0.05)
os.write(master, b"\x03")
while True:
    try:
        if not os.read(master, 1024):
            break
    except OSError:
        break
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
PYEOF
)
read -r count dir <"$work/int" 2>/dev/null
if [ "$rc" = 3 ] && [ "$count" = 1 ] && [ -n "$dir" ] && [ ! -e "$dir" ]; then ok $t
else fail $t "rc=$rc count=$count dir=$dir"; fi

# 10. LISTEN_FDNAMES takes only what systemd allows in a descriptor name: printable ASCII
#     without ':', at most 255 bytes. Anything else is refused before anything is made.
mkdir -m 755 "$work/fdn"
long=$(printf 'n%.0s' $(seq 256))
for bad in 'a:b' $'a\tb' $'a\nb' $'a\x7fb' $'caf\xc3\xa9' "$long"; do
  "$USOCK" run --parent "$work/fdn" --name "$bad" -- true 2>"$work/err"; rc=$?
  if [ $rc -eq 2 ] && head -c 7 "$work/err" | grep -q '^usock: ' && [ -z "$(ls -A "$work/fdn")" ]; then :
  else fail usock_run_refuses_a_name_systemd_would_not_accept "name=$(printf %q "$bad") rc=$rc $(head -c 200 "$work/err")"; bad_name=1; fi
done
[ -z "${bad_name:-}" ] && ok usock_run_refuses_a_name_systemd_would_not_accept
names=$("$USOCK" run --parent "$work/fdn" --name 'my sock!' -- sh -c 'echo "$LISTEN_FDNAMES"')
check usock_run_passes_a_name_with_a_space_verbatim test "$names" = 'my sock!'

# 11. usock check gives a symbolic link the verdict that creating there would get.
mkdir -m 1777 "$work/sticky"
mkdir -m 700 "$work/target"
ln -s "$work/target" "$work/sticky/link"
ln -s "$work/target" "$work/link"
for where in sticky_world_writable root_owned_0755; do
  t=usock_check_agrees_with_usock_dir_on_a_link_in_a_${where}_directory
  link=$work/link; [ $where = root_owned_0755 ] || link=$work/sticky/link
  made=$("$USOCK" dir --parent "$link" 2>"$work/err"); made_rc=$?
  [ $made_rc -eq 0 ] && "$USOCK" clean "$made"
  "$USOCK" check "$link" >"$work/out"; check_rc=$?
  reason=$(sed -n 's/^usock: //p' "$work/err")
  if [ $made_rc -eq $check_rc ] && { [ $made_rc -eq 0 ] || grep -qxF "refused: $reason" "$work/out"; }; then ok "$t"
  else fail "$t" "dir: rc=$made_rc $(cat "$work/err") / check: rc=$check_rc $(cat "$work/out")"; fi
done
"$USOCK" dir --parent "$work/sticky/link" >/dev/null 2>&1; rc=$?
check usock_dir_refuses_a_link_in_a_sticky_world_writable_directory test $rc -eq 13

# 12. usock sweep takes --parent as usock dir and usock run do (the positional form too; both
#     is a usage error).
mkdir -m 755 "$work/swp"
d=$("$USOCK" dir --parent "$work/swp")
"$USOCK" sweep --parent "$work/swp" --grace 0 >"$work/out"; rc=$?
if [ $rc -eq 0 ] && grep -q "kept $d: marked" "$work/out" && grep -q "^0 removed, 1 kept" "$work/out"; then ok usock_sweep_takes_parent_as_an_option
else fail usock_sweep_takes_parent_as_an_option "rc=$rc $(cat "$work/out")"; fi
"$USOCK" sweep "$work/swp" --parent "$work/swp" >"$work/out" 2>"$work/err"; rc=$?
if [ $rc -eq 2 ] && [ ! -s "$work/out" ] && grep -q -- "--parent" "$work/err"; then ok usock_sweep_with_both_parents_is_a_usage_error
else fail usock_sweep_with_both_parents_is_a_usage_error "rc=$rc $(cat "$work/out" "$work/err")"; fi
"$USOCK" clean "$d"

# 13. usock check on a parent too deep for sun_path says that long paths exist and how to ask.
deep=$work/$(printf 'd%.0s' $(seq 90))
mkdir -m 700 "$deep"
"$USOCK" check "$deep" >"$work/out"; rc=$?
if [ $rc -eq 12 ] && grep -q "^but: .*the limit here is 107" "$work/out" \
   && grep -q "^long socket paths: .*DirOptions::long_paths, C USOCK_LONG_PATHS" "$work/out"; then
  ok usock_check_on_a_deep_parent_names_long_paths
else fail usock_check_on_a_deep_parent_names_long_paths "rc=$rc $(cat "$work/out")"; fi
# A socket path too long for sun_path in a parent that passes is 12 (the man page said the parent
# checks' status alone), and the hint does not claim that no usock command reaches such a path.
long=$work/$(printf 'x%.0s' $(seq 110)).sock
"$USOCK" check "$long" >"$work/out"; rc=$?
if [ $rc -eq 12 ] && grep -q "^$work: passes usock's parent checks" "$work/out" \
   && grep -q "^but $long is [0-9]* bytes, longer than sun_path allows" "$work/out" \
   && grep -q "usock dir, path and run do not make them (usock connect connects to them)" "$work/out"; then
  ok usock_check_of_a_socket_path_too_long_is_12_and_says_who_reaches_it
else fail usock_check_of_a_socket_path_too_long_is_12_and_says_who_reaches_it "rc=$rc $(cat "$work/out")"; fi
# ... and 12 in a parent that is refused too (it was the parent's status, 13): a path that cannot
# fit is refused whatever its parent, as the man page and SECURITY.md say.
mkdir -m 777 "$work/open12"
long=$work/open12/$(printf 'x%.0s' $(seq 110)).sock
"$USOCK" check "$long" >"$work/out"; rc=$?
if [ $rc -eq 12 ] && grep -q "^refused: " "$work/out" \
   && grep -q "^and $long is [0-9]* bytes, longer than sun_path allows" "$work/out"; then
  ok usock_check_of_a_socket_path_too_long_in_a_refused_parent_is_12
else fail usock_check_of_a_socket_path_too_long_in_a_refused_parent_is_12 "rc=$rc $(cat "$work/out")"; fi

# 14. An unusable $XDG_RUNTIME_DIR: dir, path and run (without --parent) say on stderr, in one
#     line, why they fell back; usock check without a path explains each candidate in turn.
mkdir -m 700 "$work/tmpd"
t=usock_says_why_it_fell_back_from_xdg_runtime_dir
bad=""
for sub in "dir" "path" "run -- true"; do
  # shellcheck disable=SC2086
  out=$(XDG_RUNTIME_DIR=$work/open TMPDIR=$work/tmpd "$USOCK" $sub 2>"$work/err"); rc=$?
  [ "$sub" = "run -- true" ] || "$USOCK" clean "$(dirname "${out%/sock}/x")" 2>/dev/null
  if [ $rc -ne 0 ] || [ "$(wc -l <"$work/err")" -ne 1 ] \
     || ! grep -qF "usock: \$XDG_RUNTIME_DIR ($work/open) not used, falling back: cannot use $work/open as a parent: directory $work/open has mode 0777" "$work/err" \
     || { [ "$sub" != "run -- true" ] && [[ "$out" != "$work/tmpd/usock-"* ]]; }; then
    bad="$bad [$sub: rc=$rc out=$out err=$(cat "$work/err")]"
  fi
done
[ -z "$(ls -A "$work/tmpd")" ] || bad="$bad [left: $(ls -A "$work/tmpd")]"
out=$(XDG_RUNTIME_DIR=$work/tmpd "$USOCK" dir 2>"$work/err") && "$USOCK" clean "$out"
[ -s "$work/err" ] && bad="$bad [a usable one: $(cat "$work/err")]"
out=$(env -u XDG_RUNTIME_DIR TMPDIR=$work/tmpd "$USOCK" dir 2>"$work/err") && "$USOCK" clean "$out"
[ -s "$work/err" ] && bad="$bad [unset: $(cat "$work/err")]"
check $t test -z "$bad"

t=usock_check_without_a_path_explains_each_automatic_candidate
XDG_RUNTIME_DIR=$work/open TMPDIR=$work/none "$USOCK" check >"$work/out"; rc=$?
made=$(XDG_RUNTIME_DIR=$work/open TMPDIR=$work/none "$USOCK" dir 2>/dev/null) && "$USOCK" clean "$made"
if [ $rc -eq 0 ] && [ "$(wc -l <"$work/out")" -eq 3 ] \
   && sed -n 1p "$work/out" | grep -qF "\$XDG_RUNTIME_DIR ($work/open): skipped: cannot use $work/open as a parent: directory $work/open has mode 0777" \
   && sed -n 2p "$work/out" | grep -qF "\$TMPDIR ($work/none): skipped: cannot use $work/none as a parent: $work/none does not exist" \
   && sed -n 3p "$work/out" | grep -qxF "/tmp: taken: private directories go in /tmp" \
   && [ "$(dirname "$made")" = /tmp ]; then ok $t
else fail $t "rc=$rc made=$made $(cat "$work/out")"; fi
XDG_RUNTIME_DIR=relative TMPDIR=$work/tmpd "$USOCK" check >"$work/out"; rc=$?
if [ $rc -eq 0 ] && grep -qxF '$XDG_RUNTIME_DIR (relative): skipped: not an absolute path' "$work/out" \
   && grep -qxF "\$TMPDIR ($work/tmpd): taken: private directories go in $work/tmpd" "$work/out"; then
  ok usock_check_without_a_path_stops_at_the_one_taken
else fail usock_check_without_a_path_stops_at_the_one_taken "rc=$rc $(cat "$work/out")"; fi

# 6b. Messages in the user's words: clean says clean (not the library's "take over"), check says
# a path does not exist, and a negative --grace or --linger is named as such (clap took it for
# an option and suggested "-- -5", which then failed too).
mkdir -p "$work/notusock/par"; chmod 700 "$work/notusock"
"$USOCK" clean "$work/notusock/par" 2>"$work/err"; rc=$?
if [ $rc -eq 13 ] && grep -qF "usock: cannot clean $work/notusock/par: \"par\" is not a name usock makes" "$work/err" \
   && ! grep -q "take over" "$work/err" && [ -d "$work/notusock/par" ]; then ok usock_clean_speaks_of_cleaning
else fail usock_clean_speaks_of_cleaning "rc=$rc $(cat "$work/err")"; fi
"$USOCK" check "$work/missing/x/y" >"$work/out" 2>&1
if sed -n 1p "$work/out" | grep -qxF "$work/missing/x/y does not exist: checking its parent"; then
  ok usock_check_says_a_missing_path_does_not_exist
else fail usock_check_says_a_missing_path_does_not_exist "$(cat "$work/out")"; fi
"$USOCK" sweep --grace -5 "$work" >/dev/null 2>"$work/err"; rc=$?
"$USOCK" connect --linger -1 "$work/x.sock" </dev/null >/dev/null 2>"$work/err2"; rc2=$?
if [ $rc -eq 2 ] && grep -qF -- "-5 is negative: a grace period is 0 seconds or more" "$work/err" \
   && [ $rc2 -eq 2 ] && grep -qF -- "-1 is negative" "$work/err2"; then ok negative_seconds_are_named_as_such
else fail negative_seconds_are_named_as_such "rc=$rc rc2=$rc2 $(cat "$work/err" "$work/err2")"; fi

# usock path prints one line: a name with a newline or a tab is refused (status 2), nothing made.
mkdir -p "$work/pp"
"$USOCK" path --parent "$work/pp" --name $'a\nb' >"$work/out" 2>"$work/err"; rc=$?
"$USOCK" path --parent "$work/pp" --name $'a\tb' >>"$work/out" 2>>"$work/err"; rc2=$?
# The message is two lines, one per call, each starting "usock: ": the name is quoted with its
# control characters escaped (clap's own message echoed the newline).
if [ $rc -eq 2 ] && [ $rc2 -eq 2 ] && [ ! -s "$work/out" ] && grep -qF "the path printed would not be one line" "$work/err" \
   && [ "$(wc -l <"$work/err")" -eq 2 ] && [ "$(grep -c '^usock: --name "a\\[nt]b" contains a control character' "$work/err")" -eq 2 ] \
   && [ -z "$(ls -A "$work/pp")" ]; then ok usock_path_refuses_a_name_that_would_break_its_line
else fail usock_path_refuses_a_name_that_would_break_its_line "rc=$rc rc2=$rc2 $(ls -A "$work/pp") $(cat "$work/out" "$work/err")"; fi

# A --path that does not end in a name (d/, d/.) is refused (11) before anything is made: the
# command rebuilt it from its components, bound at d (15, "it is a directory") and left d.lock.
mkdir -p "$work/slash/d"; chmod 700 "$work/slash"
"$USOCK" run --path "$work/slash/d/" -- true 2>"$work/err"; rc=$?
"$USOCK" run --path "$work/slash/d/." -- true 2>>"$work/err"; rc2=$?
if [ $rc -eq 11 ] && [ $rc2 -eq 11 ] && grep -qF "$work/slash/d/ does not end in a file name" "$work/err" \
   && [ "$(ls -A "$work/slash")" = d ]; then ok usock_run_path_that_names_no_file_is_refused_before_anything_is_made
else fail usock_run_path_that_names_no_file_is_refused_before_anything_is_made "rc=$rc rc2=$rc2 $(ls -A "$work/slash") $(cat "$work/err")"; fi

# --fdname with more names than sockets: a warning in plain English ("for 1 descriptors" before).
"$USOCK" run --parent "$work" --name s --fdname a:b -- true 2>"$work/err"; rc=$?
if [ $rc -eq 0 ] && grep -qxF "usock: 2 names given with --fdname for 1 descriptor" "$work/err"; then
  ok fdname_count_warning_reads_well
else fail fdname_count_warning_reads_well "rc=$rc $(cat "$work/err")"; fi

# A well-known path in a directory of someone else's (root's): the lock file cannot be made,
# and the message says why in the user's terms, not only "Permission denied".
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  mkdir -p "$work/rootsdir"; chmod 755 "$work/rootsdir"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$USOCK" run --path "$work/rootsdir/x.sock" -- true 2>"$work/err"; rc=$?
  if [ $rc -eq 18 ] && grep -qF "(you cannot create files in $work/rootsdir: use a directory of your own" "$work/err" \
     && [ -z "$(ls -A "$work/rootsdir")" ]; then ok a_path_in_a_directory_of_someone_else_says_why
  else fail a_path_in_a_directory_of_someone_else_says_why "rc=$rc $(cat "$work/err")"; fi
else skip a_path_in_a_directory_of_someone_else_says_why "needs root to run the command as another user"; fi

# 7. Every subcommand has --help; usage errors are 2.
for sub in dir path clean sweep check run; do
  "$USOCK" "$sub" --help | grep -q "Exit codes" || fail "help_$sub" "no exit code table"
done
ok every_subcommand_has_help_with_the_exit_codes
"$USOCK" run 2>/dev/null; rc=$?
check usage_error_is_2 test $rc -eq 2

# 8. The man page documents the same exit codes as --help, row for row and word for word (the
# library's rows of --help are made from its table of status kinds, so a kind added there and
# not here fails this).
man=$(dirname "$0")/../usock.1
help_rows=$("$USOCK" --help | sed -n '/^Exit codes:/,$p' | awk '
  /^ +[0-9]+ / { if (row != "") print row; code = $1; sub(/^ +[0-9]+ +/, ""); row = code "\t" $0; next }
  /^       +[^ ]/ && row != "" { sub(/^ +/, ""); row = row " " $0 }
  END { if (row != "") print row }')
# (a long row is a tbl text block, T{ and T} around its lines: read as one line)
man_rows=$(sed -n '/^\.SH EXIT STATUS/,/^\.TE/p' "$man" | awk -F '\t' '
  block != "" { if ($0 == "T}") { print block; block = "" } else block = block " " $0; next }
  /^[0-9]+\t/ { if ($2 == "T{") block = $1 "\t" ; else print; }' | sed 's/\t /\t/')
if [ -n "$help_rows" ] && [ "$help_rows" = "$man_rows" ]; then ok man_page_exit_codes_are_the_help_s
else fail man_page_exit_codes_are_the_help_s "$(diff <(echo "$help_rows") <(echo "$man_rows"))"; fi

# 9. The man page renders on an 80-column terminal without a warning (its tables were wider
# than the line, and groff said so at every `man usock`).
if command -v man >/dev/null; then
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$man" 2>&1 >/dev/null | grep -i 'warning')
  if [ -z "$warnings" ]; then ok man_page_renders_in_80_columns_without_warnings
  else fail man_page_renders_in_80_columns_without_warnings "$warnings"; fi
else skip man_page_renders_in_80_columns_without_warnings "man is not installed (apt-get install man-db)"; fi

echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
