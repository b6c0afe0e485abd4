#!/usr/bin/env bash
# Type-checks usock (the library, its tests, the usock command) for macOS and the BSDs on this
# Linux machine, with warnings denied:
#   tools/check-ports.sh [TARGET...]
# Needs Debian's rustc-web, cargo-web, rust-web-src and rust-web-clippy (tools/ensure-deps.sh
# ports installs them): rustup cannot fetch these targets' std here, so std is built from the
# packaged sources (-Zbuild-std, allowed on a stable compiler by RUSTC_BOOTSTRAP=1). Nothing
# runs: this proves the code compiles and passes clippy for each target, not that it works there.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(
  x86_64-apple-darwin aarch64-apple-darwin
  x86_64-unknown-freebsd x86_64-unknown-openbsd x86_64-unknown-netbsd
)

# The packaged toolchain only: rustup's proxies in ~/.cargo/bin would pick its own toolchain,
# whose std sources are not here. cargo-clippy is run directly, since cargo looks for
# subcommands in ~/.cargo/bin first.
export PATH=/usr/bin:/bin:/usr/local/bin RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo RUSTC_BOOTSTRAP=1
# One target directory for all of them: the host's build scripts and crates build once, and a
# second run reuses each target's std.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_PORTS:-target/ports}"
unset RUSTFLAGS

# C: the examples, the C tests, the C++ header check and the Prolog glue, compiled (not linked)
# for each system with zig's clang and the C library headers it ships ($ZIG: "zig" or
# "python -m ziglang"). SWI-Prolog.h is the same on every system.
zig_target() {
  case $1 in
    x86_64-apple-darwin) echo x86_64-macos ;;
    aarch64-apple-darwin) echo aarch64-macos ;;
    x86_64-unknown-freebsd) echo x86_64-freebsd ;;
    x86_64-unknown-openbsd) echo x86_64-openbsd ;;
    x86_64-unknown-netbsd) echo x86_64-netbsd ;;
  esac
}
swi_include=$(swipl --dump-runtime-variables 2>/dev/null | sed -n 's/^PLBASE="\(.*\)";/\1/p')/include
obj=$(mktemp -d)
trap 'rm -rf "$obj"' EXIT

failed=0
for target in "${targets[@]}"; do
  echo "== check-ports: $target: Rust library and tests (clippy -D warnings)"
  for what in --lib --tests; do
    if ! /usr/bin/cargo-clippy clippy --quiet -Zbuild-std=std,panic_abort --target "$target" \
         "$what" -- -D warnings; then
      echo "check-ports: $target ($what) failed" >&2
      failed=1
    fi
  done
  echo "== check-ports: $target: the usock command (clippy -D warnings)"
  if ! /usr/bin/cargo-clippy clippy --quiet -Zbuild-std=std,panic_abort --target "$target" \
       --manifest-path bindings/cli/Cargo.toml -- -D warnings; then
    echo "check-ports: $target (the usock command) failed" >&2
    failed=1
  fi
  zt=$(zig_target "$target")
  [ -n "${ZIG:-}" ] && [ -n "$zt" ] || continue
  echo "== check-ports: $target: C examples, C tests, C++ header, Prolog glue (zig cc -target $zt)"
  strict=(-target "$zt" -Wall -Wextra -Wpedantic -Werror -Iinclude -c)
  for c in bindings/c/examples/server.c bindings/c/examples/client.c \
           bindings/c/tests/test_usock.c bindings/c/tests/test_lifetimes.c; do
    $ZIG cc "${strict[@]}" -std=c11 -o "$obj/x.o" "$c" || { echo "check-ports: $c for $zt failed" >&2; failed=1; }
  done
  $ZIG c++ "${strict[@]}" -std=c++11 -o "$obj/x.o" bindings/c/tests/header_cxx.cpp \
    || { echo "check-ports: header_cxx.cpp for $zt failed" >&2; failed=1; }
  $ZIG cc -target "$zt" -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -fPIC \
      -I"$swi_include" -Iinclude -c -o "$obj/x.o" bindings/prolog/c/usock4pl.c \
    || { echo "check-ports: usock4pl.c for $zt failed" >&2; failed=1; }
done
exit $failed
