#!/usr/bin/env bash
# Tests of `usock connect` against real servers: Python echo servers (stream, half-close,
# seqpacket, datagram, a path longer than sun_path), every failure status, a server of another
# user (real uids, as root), and servers started by `usock run`: gunicorn, uvicorn, one using
# python-systemd's listen_fds(), and the README's shell snippet. Prints "N passed, N failed".
#   tests/test_connect.sh /path/to/usock /path/to/venv
# With $USOCK_SKIPPED naming a file (make sets it), each skip appends its reason there.
set -uo pipefail
USOCK=$1
VENV=$2
PY=$VENV/bin/python
SYSPY=/usr/bin/python3 # the system's Python: python3-systemd, and readable by any uid
passed=0 failed=0 skipped=0
work=$(mktemp -d /tmp/usock-connect-test-XXXXXX)
chmod 755 "$work"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT

# The checks that are guarantees of SECURITY.md: kind, what was tried, and how often. When
# $USOCK_FIGURES names a file (make test sets it), each of them that held writes its row there.
declare -A FIGURE=(
  [connect_refuses_a_server_of_another_user]=$'attack\tusock connect to a server of another uid (real uids; the client root, then a third user; the socket 0777 so only the uid check stands): refused, status 13, the uid named, no reply read\t2'
  [connect_refuses_a_server_running_as_the_overflow_uid]=$'attack\tusock connect to a server running as the overflow uid: refused, status 13; naming that uid (by number or as nobody) is bad usage, 2\t3'
  [connect_server_closing_early_is_status_24_with_sigpipe_default]=$'fault\tusock connect to a server that closes with input unread (SIGPIPE default): status 24, a message, no panic\t1'
  [connect_server_closing_early_is_status_24_with_sigpipe_ignored]=$'fault\tusock connect to a server that closes with input unread (SIGPIPE inherited ignored): status 24, a message, no panic\t1'
  [connect_server_closing_cleanly_with_input_left_is_status_24]=$'fault\tusock connect to a server that reads part of the input and closes cleanly: status 24, never 0 with input unsent\t1'
  [connect_datagram_stopped_by_a_signal_leaves_nothing]=$'fault\tusock connect --datagram stopped by SIGTERM, SIGINT or SIGHUP: its reply directory removed, the status 128+n\t3'
)
ok() {
  passed=$((passed + 1)); echo "ok   $1"
  if [ -n "${USOCK_FIGURES:-}" ] && [ -n "${FIGURE[$1]:-}" ]; then
    local kind what n; IFS=$'\t' read -r kind what n <<<"${FIGURE[$1]}"
    printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$what" "$n" "$n" "bindings/cli/tests/test_connect.sh::$1" >> "$USOCK_FIGURES"
  fi
}
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
skip() { # skip NAME REASON
  skipped=$((skipped + 1)); echo "skip $1: $2"
  [ -n "${USOCK_SKIPPED:-}" ] && echo "CLI: test_connect.sh $1: $2" >>"$USOCK_SKIPPED"
}
wait_for() { # wait_for PATH: until a socket listens there, or is bound for datagrams (10 s)
  # Not only until the file is there: a server binds, then listens, and a connection between
  # the two is refused. Flags 00010000 in /proc/net/unix: listening.
  local path=$1; [[ "$path" = /* ]] || path=$PWD/$path
  for _ in $(seq 100); do
    [ -S "$1" ] && awk -v p="$path" -v b="${path##*/}" '($8 == p || (length(p) > 107 && $8 == b)) && ($4 == "00010000" || $5 == "0002") {f = 1} END {exit !f}' /proc/net/unix && return 0
    sleep 0.1
  done; return 1
}
wait_exit() { # wait_exit PID: its status, after SIGTERM if it still runs after 10 s
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$1" 2>/dev/null; wait "$1"
}

# A Python server for each socket type; each connection (or datagram) is answered as the mode
# says, then the next is taken.
cat >"$work/server.py" <<'PYEOF'
import os, socket, sys, time
mode, path = sys.argv[1], sys.argv[2]
kind = {"dgram": socket.SOCK_DGRAM, "seqpacket": socket.SOCK_SEQPACKET}.get(mode, socket.SOCK_STREAM)
s = socket.socket(socket.AF_UNIX, kind)
os.chdir(os.path.dirname(path))
if len(path) > 107:                    # a path longer than sun_path binds by its name
    path = os.path.basename(path)
s.bind(path)
if len(sys.argv) > 3:
    os.chmod(path, int(sys.argv[3], 8))
if mode == "dgram":
    while True:
        data, addr = s.recvfrom(65536)
        s.sendto(b"echo:" + data, addr)
s.listen()
def answer(c):
    if mode == "echo":                 # echo each piece as it comes, until EOF
        while data := c.recv(65536):
            c.sendall(data)
    elif mode == "eof":                # read to EOF, then one reply: needs the half-close
        data = b""
        while chunk := c.recv(65536):
            data += chunk
        c.sendall(b"%d bytes, last %r, uid %d\n" % (len(data), data[-6:], os.getuid()))
    elif mode == "seqpacket":          # each packet answered as one packet, in brackets
        while data := c.recv(65536):
            c.sendall(b"[" + data + b"]")
    elif mode == "close":              # closes with input unread
        c.recv(1)
        time.sleep(0.2)
    elif mode == "drain":              # takes what has come so far, then closes cleanly
        time.sleep(0.5)
        c.setblocking(False)
        try:
            while c.recv(1 << 20):
                pass
        except BlockingIOError:
            pass
while True:
    c, _ = s.accept()
    try:
        answer(c)
    except OSError:                    # a client that went away (a refused one does)
        pass
    c.close()
PYEOF
server() { # server MODE PATH [MODE-BITS]
  "$PY" "$work/server.py" "$@" & pids+=($!)
  wait_for "$2"
}

# 1. Round trip, half-close, the reply after EOF.
server echo "$work/echo.sock"
out=$(printf 'hello\nworld\n' | "$USOCK" connect "$work/echo.sock" 2>"$work/err"); rc=$?
if [ $rc -eq 0 ] && [ "$out" = $'hello\nworld' ] && [ ! -s "$work/err" ]; then ok connect_round_trip_with_an_echo_server
else fail connect_round_trip_with_an_echo_server "rc=$rc out=$out $(cat "$work/err")"; fi

server eof "$work/eof.sock"
out=$(head -c 300000 /dev/zero | tr '\0' x | { cat; printf 'the end'; } | timeout 10 "$USOCK" connect "$work/eof.sock"); rc=$?
if [ $rc -eq 0 ] && [ "$out" = "300007 bytes, last b'he end', uid $(id -u)" ]; then
  ok connect_half_close_server_reads_to_eof_then_replies
else fail connect_half_close_server_reads_to_eof_then_replies "rc=$rc out=$out"; fi
out=$(timeout 10 "$USOCK" connect "$work/eof.sock" </dev/null); rc=$?
if [ $rc -eq 0 ] && [[ "$out" == "0 bytes"* ]]; then ok connect_empty_input_is_a_half_close_at_once
else fail connect_empty_input_is_a_half_close_at_once "rc=$rc out=$out"; fi

# Standard output closed, or a pipe whose reader is gone: no panic, a status.
timeout 10 "$USOCK" connect "$work/eof.sock" </dev/null >&- 2>"$work/err"; rc=$?
if [ $rc -eq 0 ] && [ ! -s "$work/err" ]; then ok connect_with_standard_output_closed
else fail connect_with_standard_output_closed "rc=$rc $(cat "$work/err")"; fi
rc=$("$PY" - "$USOCK" "$work/eof.sock" "$work/err" <<'PYEOF'
import os, subprocess, sys
r, w = os.pipe(); os.close(r)          # nobody reads standard output
p = subprocess.run([sys.argv[1], "connect", sys.argv[2]], stdin=subprocess.DEVNULL, stdout=w,
                   stderr=open(sys.argv[3], "w"), timeout=10)
print(p.returncode)
PYEOF
)
if [ "$rc" = 18 ] && grep -q "cannot write to standard output: Broken pipe" "$work/err" && ! grep -q panick "$work/err"; then
  ok connect_into_a_pipe_nobody_reads_is_status_18
else fail connect_into_a_pipe_nobody_reads_is_status_18 "rc=$rc $(cat "$work/err")"; fi

# 2. A server that closes early: status 24, no panic, whatever SIGPIPE's disposition.
server close "$work/close.sock"
for disposition in default ignored; do
  t=connect_server_closing_early_is_status_24_with_sigpipe_$disposition
  trapcmd=:; [ $disposition = ignored ] && trapcmd="trap '' PIPE"
  bash -c "$trapcmd; head -c 5000000 /dev/zero 2>/dev/null | timeout 10 '$USOCK' connect '$work/close.sock' >'$work/out' 2>'$work/err'; echo \$? >'$work/rc'"
  rc=$(cat "$work/rc")
  if [ "$rc" = 24 ] && grep -q "closed the connection before it took all of standard input" "$work/err" && ! grep -q panick "$work/err"; then ok $t
  else fail $t "rc=$rc $(cat "$work/err")"; fi
done

# A server that takes only what has come so far and closes cleanly (no reset: nothing was left
# unread in its socket), with input still pending: status 24 too, never 0 (it was 0, the rest of
# standard input silently dropped).
server drain "$work/drain.sock"
head -c 3000000 /dev/zero | timeout 10 "$USOCK" connect "$work/drain.sock" >"$work/out" 2>"$work/err"; rc=${PIPESTATUS[1]}
if [ "$rc" = 24 ] && grep -q "closed the connection before it took all of standard input" "$work/err"; then
  ok connect_server_closing_cleanly_with_input_left_is_status_24
else fail connect_server_closing_cleanly_with_input_left_is_status_24 "rc=$rc $(cat "$work/err")"; fi

# 3. Seqpacket and datagram.
server seqpacket "$work/seq.sock"
out=$(printf 'one' | timeout 10 "$USOCK" connect --seqpacket "$work/seq.sock"); rc=$?
check_seq=$([ $rc -eq 0 ] && [ "$out" = "[one]" ] && echo yes)
timeout 10 "$USOCK" connect "$work/seq.sock" </dev/null 2>"$work/err"; rc=$?
if [ -n "$check_seq" ] && [ $rc -eq 18 ] && grep -q "not of type SOCK_STREAM" "$work/err"; then ok connect_seqpacket_keeps_packets
else fail connect_seqpacket_keeps_packets "out=$out rc=$rc $(cat "$work/err")"; fi

server dgram "$work/dg.sock"
mkdir -m 700 "$work/dgtmp"
out=$( { printf 'ping'; sleep 0.3; printf 'pong'; } | TMPDIR=$work/dgtmp XDG_RUNTIME_DIR= timeout 10 "$USOCK" connect --datagram --server-uid any --linger 0.5 "$work/dg.sock"); rc=$?
left=$(ls -A "$work/dgtmp")
if [ $rc -eq 0 ] && [ "$out" = "echo:pingecho:pong" ] && [ -z "$left" ]; then ok connect_datagram_each_read_one_datagram_replies_printed_nothing_left
else fail connect_datagram_each_read_one_datagram_replies_printed_nothing_left "rc=$rc out=$out left=$left"; fi
printf x | timeout 10 "$USOCK" connect --datagram "$work/dg.sock" 2>"$work/err"; rc=$?
if [ $rc -eq 2 ] && grep -q -- "--server-uid any" "$work/err"; then ok connect_datagram_without_server_uid_any_is_refused
else fail connect_datagram_without_server_uid_any_is_refused "rc=$rc $(cat "$work/err")"; fi

# A datagram client ended by SIGTERM, SIGINT or SIGHUP while it waits removes its reply
# directory first (it was left behind), and still ends by that signal. Standard input is a
# FIFO held open, so it waits; SIGINT set back to default (a background job ignores it).
mkfifo "$work/hold"
exec 8<>"$work/hold"
stopped_why=
for sig in TERM INT HUP; do
  mkdir -m 700 "$work/sigtmp"
  TMPDIR=$work/sigtmp XDG_RUNTIME_DIR= env --default-signal=INT "$USOCK" connect -d --server-uid any "$work/dg.sock" <&8 &
  upid=$!
  for _ in $(seq 100); do [ -n "$(ls -A "$work/sigtmp")" ] && break; sleep 0.05; done
  made=$(ls -A "$work/sigtmp")
  kill -"$sig" "$upid"
  { wait "$upid"; } 2>/dev/null; rc=$?
  left=$(ls -A "$work/sigtmp")
  if [ -z "$made" ] || [ -n "$left" ] || [ $rc -ne $((128 + $(kill -l "$sig"))) ]; then
    stopped_why="$stopped_why SIG$sig: made=$made rc=$rc left=$left"
  fi
  rm -rf "$work/sigtmp"
done
exec 8<&-
if [ -z "$stopped_why" ]; then ok connect_datagram_stopped_by_a_signal_leaves_nothing
else fail connect_datagram_stopped_by_a_signal_leaves_nothing "$stopped_why"; fi

# 4. A path longer than sun_path (108 bytes), stream and datagram.
long=$work/$(printf 'l%.0s' $(seq 100))
mkdir -m 700 "$long"
server eof "$long/s.sock"
server dgram "$long/d.sock"
out=$(printf abc | timeout 10 "$USOCK" connect "$long/s.sock"); rc=$?
out2=$(printf abc | TMPDIR=$work/dgtmp XDG_RUNTIME_DIR= timeout 10 "$USOCK" connect -d --server-uid any --linger 0.3 "$long/d.sock"); rc2=$?
if [ ${#long} -gt 108 ] && [ $rc -eq 0 ] && [[ "$out" == "3 bytes"* ]] && [ $rc2 -eq 0 ] && [ "$out2" = echo:abc ]; then
  ok connect_a_path_longer_than_sun_path
else fail connect_a_path_longer_than_sun_path "len=${#long} rc=$rc out=$out rc2=$rc2 out2=$out2"; fi

# 5. Every failure status, each with its message.
status_is() { # status_is NAME CODE MESSAGE-PART -- COMMAND...
  local name=$1 code=$2 msg=$3; shift 4
  "$@" </dev/null >/dev/null 2>"$work/err"; local rc=$?
  if [ $rc -eq "$code" ] && grep -qF -- "$msg" "$work/err"; then ok "$name"
  else fail "$name" "rc=$rc $(cat "$work/err")"; fi
}
status_is connect_nothing_there_is_21 21 "$work/none.sock: nothing is there" -- "$USOCK" connect "$work/none.sock"
"$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$work/stale.sock"
status_is connect_stale_socket_is_22 22 "nobody is listening there" -- "$USOCK" connect "$work/stale.sock"
touch "$work/plain"
status_is connect_a_regular_file_is_22 22 "it is a regular file, not a socket" -- "$USOCK" connect "$work/plain"
status_is connect_bad_server_uid_is_usage_2 2 "not self, root, any, a user name or a uid" -- "$USOCK" connect --server-uid no-such-user-here "$work/echo.sock"

# 6. Real users (root only): a server of another user is refused by the uid check, whether the
#    client is root or a third user; --server-uid names the one to accept.
if [ "$(id -u)" -ne 0 ]; then
  skip connect_refuses_a_server_of_another_user "needs root to run a server and clients as other uids"
else
  srv=4242 other=4343
  cp "$USOCK" "$work/usock" && chmod 755 "$work/usock"
  mkdir -m 755 "$work/users" && chown $srv:$srv "$work/users"
  # The server as uid 4242, its socket 0777 so that uid 4343 may connect: a refusal can then
  # only come from the uid check.
  setpriv --reuid $srv --regid $srv --clear-groups "$SYSPY" "$work/server.py" eof "$work/users/s.sock" 777 & pids+=($!)
  wait_for "$work/users/s.sock"
  as() { local uid=$1; shift; setpriv --reuid "$uid" --regid "$uid" --clear-groups "$@"; }
  printf data | "$work/usock" connect "$work/users/s.sock" >"$work/out" 2>"$work/err"; rc_root=$?
  err_root=$(cat "$work/err")
  printf data | as $other "$work/usock" connect "$work/users/s.sock" >"$work/out2" 2>"$work/err"; rc_other=$?
  err_other=$(cat "$work/err")
  if [ $rc_root -eq 13 ] && [ ! -s "$work/out" ] && [ $rc_other -eq 13 ] && [ ! -s "$work/out2" ] \
     && [[ "$err_root" == *"the server at $work/users/s.sock runs as uid $srv, not root (uid 0); the connection was closed"* ]] \
     && [[ "$err_other" == *"runs as uid $srv, not uid $other or root"* ]]; then
    ok connect_refuses_a_server_of_another_user
  else fail connect_refuses_a_server_of_another_user "root: rc=$rc_root $err_root / uid $other: rc=$rc_other $err_other"; fi
  out=$(printf data | "$work/usock" connect --server-uid $srv "$work/users/s.sock"); rc=$?
  out2=$(printf data | as $other "$work/usock" connect --server-uid $srv "$work/users/s.sock"); rc2=$?
  out3=$(printf data | as $srv "$work/usock" connect --server-uid self "$work/users/s.sock"); rc3=$?
  want="4 bytes, last b'data', uid $srv"
  if [ $rc -eq 0 ] && [ "$out" = "$want" ] && [ $rc2 -eq 0 ] && [ "$out2" = "$want" ] && [ $rc3 -eq 0 ] && [ "$out3" = "$want" ]; then
    ok connect_server_uid_n_accepts_that_server
  else fail connect_server_uid_n_accepts_that_server "rc=$rc $out / rc2=$rc2 $out2 / rc3=$rc3 $out3"; fi
  status_is connect_server_uid_root_refuses_a_user_server 13 "not uid 0;" -- "$work/usock" connect --server-uid root "$work/users/s.sock"
  # A server running as the overflow uid proves nothing: refused; and naming that uid (by number
  # or as nobody) is bad usage, as --allow uid:65534 is for usock run.
  mkdir -m 755 "$work/nobody" && chown 65534:65534 "$work/nobody"
  setpriv --reuid 65534 --regid 65534 --clear-groups "$SYSPY" "$work/server.py" eof "$work/nobody/s.sock" & pids+=($!)
  wait_for "$work/nobody/s.sock"
  rc_default=0; printf x | "$work/usock" connect "$work/nobody/s.sock" >/dev/null 2>"$work/err" || rc_default=$?
  err_default=$(cat "$work/err")
  rc_number=0; printf x | "$work/usock" connect --server-uid 65534 "$work/nobody/s.sock" >/dev/null 2>"$work/err" || rc_number=$?
  err_number=$(cat "$work/err")
  rc_name=0; printf x | "$work/usock" connect --server-uid nobody "$work/nobody/s.sock" >/dev/null 2>"$work/err" || rc_name=$?
  err_name=$(cat "$work/err")
  if [ $rc_default -eq 13 ] && [[ "$err_default" == *"runs as uid 65534, the overflow uid"* ]] \
     && [ $rc_number -eq 2 ] && [[ "$err_number" == *"the overflow uid"* ]] \
     && [ $rc_name -eq 2 ] && [[ "$err_name" == *"is uid 65534, the overflow uid"* ]]; then
    ok connect_refuses_a_server_running_as_the_overflow_uid
  else fail connect_refuses_a_server_running_as_the_overflow_uid "default: $rc_default $err_default / 65534: $rc_number $err_number / nobody: $rc_name $err_name"; fi
  # --server-uid takes a user name: uid 1's (daemon on Debian) against the uid 4242 server.
  uid1=$(getent passwd 1 | cut -d: -f1)
  if [ -n "$uid1" ]; then
    status_is connect_server_uid_takes_a_user_name 13 "runs as uid $srv, not uid 1;" -- \
      "$work/usock" connect --server-uid "$uid1" "$work/users/s.sock"
  else skip connect_server_uid_takes_a_user_name "no user with uid 1 in the user database"; fi
  # The socket 0700 to a client of a third uid: permission denied, before any uid check.
  chmod 700 "$work/users/s.sock"
  status_is connect_permission_denied_is_23 23 "permission denied" -- as $other "$work/usock" connect --server-uid any "$work/users/s.sock"
fi

# 7. Servers started by `usock run`, reached with `usock connect` (HTTP through standard input).
cat >"$work/app.py" <<'PYEOF'
import os
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hello from {os.getpid()}\n".encode()]
async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello from uvicorn\n"})
PYEOF
request=$'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
web() { # web NAME PATH BODY-PATTERN -- SERVER...: usock run the server at PATH, ask it, stop it
  local name=$1 sock=$2 want=$3; shift 4
  "$USOCK" run --path "$sock" -- "$@" >"$work/$name.log" 2>&1 &
  local runner=$!
  wait_for "$sock"
  local out; out=$(printf '%s' "$request" | timeout 20 "$USOCK" connect "$sock" 2>&1); local rc=$?
  kill -TERM $runner; wait $runner 2>/dev/null
  if [ $rc -eq 0 ] && [[ "$out" == "HTTP/1."?" 200 OK"* ]] && [[ "$out" == *$want* ]] && [ ! -e "$sock" ]; then ok "$name"
  else fail "$name" "rc=$rc out=$out $(tail -5 "$work/$name.log")"; fi
}
mkdir -m 755 "$work/web"
if [ -x "$VENV/bin/gunicorn" ]; then
  web connect_to_gunicorn_by_listen_fds "$work/web/g1.sock" "hello from " -- \
    "$VENV/bin/gunicorn" --chdir "$work" --workers 1 app:app
  # gunicorn's --bind fd://3 adds descriptor 3 to those LISTEN_FDS names, and then fails on the
  # second: with --bind fd://3, take the socket-activation variables away.
  web connect_to_gunicorn_bind_fd_3 "$work/web/g2.sock" "hello from " -- \
    env -u LISTEN_FDS -u LISTEN_PID -u LISTEN_FDNAMES "$VENV/bin/gunicorn" --chdir "$work" --bind fd://3 --workers 1 app:app
else skip connect_to_gunicorn "gunicorn is not installed in $VENV"; fi
if [ -x "$VENV/bin/uvicorn" ]; then
  web connect_to_uvicorn_fd_3 "$work/web/u.sock" "hello from uvicorn" -- \
    "$VENV/bin/uvicorn" --app-dir "$work" --fd 3 app:asgi
else skip connect_to_uvicorn "uvicorn is not installed in $VENV"; fi

# A server on python-systemd's listen_fds() (Debian's python3-systemd, for /usr/bin/python3).
if "$SYSPY" -c 'import systemd.daemon' 2>/dev/null; then
  cat >"$work/sd.py" <<'PYEOF'
import socket
from systemd.daemon import listen_fds, is_socket_unix
fds = listen_fds()
assert fds == [3] and is_socket_unix(3, socket.SOCK_STREAM, listening=True), fds
server = socket.socket(fileno=fds[0])
conn, _ = server.accept()
data = b""
while chunk := conn.recv(4096):
    data += chunk
conn.sendall(b"listen_fds %r, got %r\n" % (fds, data))
PYEOF
  "$USOCK" run --path "$work/web/sd.sock" -- "$SYSPY" "$work/sd.py" 2>"$work/sd.log" &
  runner=$!
  wait_for "$work/web/sd.sock"
  out=$(echo hi | timeout 10 "$USOCK" connect "$work/web/sd.sock"); rc=$?
  wait_exit $runner; runner_rc=$?
  if [ $rc -eq 0 ] && [ "$out" = "listen_fds [3], got b'hi\n'" ] && [ $runner_rc -eq 0 ] && [ ! -e "$work/web/sd.sock" ]; then
    ok connect_to_a_python_systemd_listen_fds_server
  else fail connect_to_a_python_systemd_listen_fds_server "rc=$rc runner=$runner_rc out=$out $(cat "$work/sd.log")"; fi
else skip connect_to_a_python_systemd_listen_fds_server "python3-systemd is not installed for $SYSPY"; fi

# 8. The README's shell snippet (the block after the marker), run as written: server and client
#    with usock run and usock connect, no socat or nc.
readme=$(dirname "$0")/../../../README.md
snippet=$(sed -n '/^<!-- tested by bindings\/cli\/tests\/test_connect.sh -->$/,/^```$/p' "$readme" | sed '1,2d;$d')
if [ -x "$VENV/bin/uvicorn" ] && [ -n "$snippet" ]; then
  mkdir -m 700 "$work/xdg" "$work/readme"
  printf 'from app import asgi as app\n' >"$work/readme/main.py"
  out=$(cd "$work/readme" && PYTHONPATH=$work XDG_RUNTIME_DIR=$work/xdg PATH=$(dirname "$USOCK"):$VENV/bin:$PATH timeout 30 bash -c "$snippet
kill %1; wait" 2>"$work/err"); rc=$?
  if [ $rc -eq 0 ] && [[ "$out" == *"HTTP/1.1 200 OK"* ]] && [[ "$out" == *"hello from uvicorn"* ]] && [ -z "$(ls -A "$work/xdg" | grep -v '\.lock$')" ]; then
    ok readme_shell_server_and_client_snippet_works
  else fail readme_shell_server_and_client_snippet_works "rc=$rc out=$out $(tail -5 "$work/err")"; fi
else fail readme_shell_server_and_client_snippet_works "no snippet found in $readme, or no uvicorn"; fi

# 9. --help has the exit statuses of connect.
"$USOCK" connect --help >"$work/out"
if grep -q "^  21 .*nothing at the path" "$work/out" && grep -q -- "--server-uid" "$work/out"; then ok connect_help_lists_its_exit_codes
else fail connect_help_lists_its_exit_codes "$(cat "$work/out")"; fi

echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
