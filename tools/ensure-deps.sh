#!/usr/bin/env bash
# Makes sure the tools a make target needs are here. As root on Debian it installs what is
# missing with apt-get; otherwise it stops with the exact command to run.
#   tools/ensure-deps.sh c        # C compiler, C++ compiler, pkg-config, binutils
#   tools/ensure-deps.sh prolog   # SWI-Prolog (swipl, swipl-ld, headers)
#   tools/ensure-deps.sh python   # python3 -m venv
#   tools/ensure-deps.sh bench    # strace, to count system calls
#   tools/ensure-deps.sh ports    # Debian's packaged Rust with std sources and clippy (check-ports)
#   tools/ensure-deps.sh cli      # curl, which the usock command's tests query a server with,
#                                 # and man, which renders its man page in a test
#   tools/ensure-deps.sh python-systemd  # python3-systemd for /usr/bin/python3 (optional: a test skips)
#   tools/ensure-deps.sh oracle   # systemd-socket-activate, the oracle of usock run's tests
set -euo pipefail

missing=()
need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}

command -v cargo >/dev/null 2>&1 || {
  echo "usock: cargo is missing: install Rust from https://rustup.rs (or: apt-get install cargo)" >&2
  exit 1
}
for what in "$@"; do
  case "$what" in
    c)      need cc gcc; need c++ g++; need pkg-config pkg-config; need nm binutils ;;
    prolog) need swipl swi-prolog-nox ;;
    python) python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv) ;;
    bench)  need strace strace ;;
    cli)    need curl curl; need man man-db ;;
    python-systemd) /usr/bin/python3 -c 'import systemd.daemon' 2>/dev/null || missing+=(python3-systemd) ;;
    oracle) need systemd-socket-activate systemd ;;
    ports)  for p in rustc-web cargo-web rust-web-src rust-web-clippy; do
              dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
            done ;;
    *) echo "ensure-deps: unknown group $what" >&2; exit 2 ;;
  esac
done
[ ${#missing[@]} -eq 0 ] && exit 0

# Unique, in order.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "usock: installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/usock-apt.log 2>&1; then
    apt-get update -qq >>/tmp/usock-apt.log 2>&1
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/usock-apt.log 2>&1 || {
      echo "usock: '$cmd' failed; see /tmp/usock-apt.log" >&2
      exit 1
    }
  fi
else
  echo "usock: missing ${missing[*]}; run: sudo $cmd" >&2
  exit 1
fi
