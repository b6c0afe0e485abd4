#!/usr/bin/env bash
# Checks the built shared library as a packager would: the soname, that only usock_* symbols
# are exported, and that `make install PREFIX=...` gives a header, library and usock.pc with
# which a program builds through pkg-config and runs.
#   check-library.sh target/release/libusock.so VERSION
set -euo pipefail
lib=$1 version=$2
passed=0 failed=0
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then echo "ok   $what"; passed=$((passed + 1)); else echo "FAIL $what"; failed=$((failed + 1)); fi
}

soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
check "soname is libusock.so.0 (got '$soname')" test "$soname" = "libusock.so.${version%%.*}"

others=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^usock_' || true)
check "only usock_* symbols exported${others:+ (also: $others)}" test -z "$others"
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort | tr '\n' ' ')
declared=$(grep -o 'usock_[a-z_]*(' include/usock.h | tr -d '(' | sort -u | tr '\n' ' ')
check "exported symbols are the header's functions" test "$exported" = "$declared"

prefix=$(mktemp -d /tmp/usock-install.XXXXXX)
trap 'rm -rf "$prefix"' EXIT
notes=$(make --no-print-directory -s install PREFIX="$prefix")
check "install puts the versioned library, links, header and usock.pc in place" \
  test -f "$prefix/lib/libusock.so.$version" -a -L "$prefix/lib/libusock.so.0" -a -L "$prefix/lib/libusock.so" \
       -a -f "$prefix/include/usock.h" -a -f "$prefix/lib/pkgconfig/usock.pc"
check "install puts the usock command and its man page in place" \
  test -x "$prefix/bin/usock" -a -f "$prefix/share/man/man1/usock.1"
check "the installed command runs" sh -c "'$prefix/bin/usock' --version | grep -q '^usock '"
check "the installed libraries carry no debug information" \
  sh -c "! readelf -S '$prefix/lib/libusock.so.$version' '$prefix/lib/libusock.a' | grep -q debug_info"
check "usock.pc names its directories relative to \${prefix}" \
  grep -qx 'libdir=${prefix}/lib' "$prefix/lib/pkgconfig/usock.pc"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
check "pkg-config knows usock $version" test "$(pkg-config --modversion usock)" = "$version"
# shellcheck disable=SC2046
build() { cc -std=c11 -Wall -Werror -o "$prefix/server" bindings/c/examples/server.c $(pkg-config --cflags --libs usock) -Wl,-rpath,"$prefix/lib"; }
check "a program builds with \`pkg-config --cflags --libs usock\`" build
needed=$(readelf -d "$prefix/server" | sed -n 's/.*Shared library: \[\(libusock[^]]*\)\]/\1/p')
check "it needs libusock.so.0 (got '$needed')" test "$needed" = "libusock.so.0"
check "it runs against the installed library" "$prefix/server" "$PWD/target/c/usock-client"
# The loader and pkg-config search neither $prefix/lib nor its pkgconfig: install printed the
# lines to follow. Followed literally, with nothing else set: a program builds and runs.
line() { sed -n "s/^  \($1.*\)/\1/p" <<<"$notes"; }
pc_line=$(line PKG_CONFIG_PATH=) ld_line=$(line LD_LIBRARY_PATH=) rpath_flag=$(line -Wl,-rpath,)
check "install into a directory pkg-config does not search prints PKG_CONFIG_PATH=$prefix/lib/pkgconfig" \
  test "$pc_line" = "PKG_CONFIG_PATH=$prefix/lib/pkgconfig"
check "install into a directory the loader does not search prints LD_LIBRARY_PATH=$prefix/lib" \
  test "$ld_line" = "LD_LIBRARY_PATH=$prefix/lib"
check "... and the rpath flag -Wl,-rpath,$prefix/lib" test "$rpath_flag" = "-Wl,-rpath,$prefix/lib"
cat >"$prefix/tiny.c" <<'CEOF'
#include <stdio.h>
#include <usock.h>
int main(void) {
    usock_dir *dir;
    if (usock_create_dir(NULL, 0, &dir) != USOCK_OK) return 1;
    if (usock_cleanup(dir) != USOCK_OK) return 1;
    printf("usock %s runs\n", usock_version());
    return 0;
}
CEOF
unset PKG_CONFIG_PATH LD_LIBRARY_PATH
# shellcheck disable=SC2046
ldconfig -p 2>/dev/null | grep -q "libusock.so.${version%%.*} " ||  # none installed system-wide
check "without those lines, the first run fails as the user would see it" \
  sh -c "cc -o '$prefix/tiny0' '$prefix/tiny.c' -I'$prefix/include' -L'$prefix/lib' -lusock && ! '$prefix/tiny0' 2>/dev/null"
tiny_flags=$(env "$pc_line" pkg-config --cflags --libs usock)
# shellcheck disable=SC2086
check "with the printed PKG_CONFIG_PATH, pkg-config gives the flags and a program builds" \
  cc -std=c11 -Wall -Werror -o "$prefix/tiny" "$prefix/tiny.c" $tiny_flags
check "it runs with the printed LD_LIBRARY_PATH" \
  sh -c "env '$ld_line' '$prefix/tiny' | grep -qx 'usock $version runs'"
# shellcheck disable=SC2086
check "linked with the printed rpath flag, it runs with nothing set" \
  sh -c "cc -std=c11 -o '$prefix/tiny-rpath' '$prefix/tiny.c' $tiny_flags $rpath_flag && '$prefix/tiny-rpath' | grep -qx 'usock $version runs'"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
