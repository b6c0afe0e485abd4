#!/bin/sh
# Run by `make install` (not into a staging DESTDIR): makes programs find what was installed,
# or prints the lines a user needs to follow, so that the first run does not fail with
# "libusock.so.0: cannot open shared object file" or pkg-config with "Package usock was not found".
#   tools/install-notes.sh LIBDIR SONAME
# The loader searches LIBDIR when ldconfig lists it (its configuration, /etc/ld.so.conf*, and
# its built-in directories); pkg-config searches LIBDIR/pkgconfig when its pc_path names it.
set -u
libdir=$1 soname=$2
real() { (cd "$1" 2>/dev/null && pwd -P) || printf '%s\n' "$1"; }
libdir_real=$(real "$libdir")

loader_searches() {
  [ "$(uname -s)" = Darwin ] && return 1     # the install name is @rpath/...: an rpath is needed
  if command -v ldconfig >/dev/null 2>&1 || [ -x /sbin/ldconfig ]; then
    dirs=$( (ldconfig -v -N 2>/dev/null || /sbin/ldconfig -v -N 2>/dev/null) | sed -n 's|^\(/[^:]*\):.*|\1|p')
  fi
  # No ldconfig, or one that lists nothing this way (the BSDs): the usual system directories.
  [ -n "${dirs:-}" ] || dirs="/lib /usr/lib /lib64 /usr/lib64 /usr/local/lib"
  for d in $dirs; do
    [ "$(real "$d")" = "$libdir_real" ] && return 0
  done
  return 1
}

pkg_config_searches() {
  path=$(pkg-config --variable pc_path pkg-config 2>/dev/null) || return 1
  old_ifs=$IFS; IFS=:
  for d in $path; do
    [ "$(real "$d")" = "$(real "$libdir/pkgconfig")" ] && { IFS=$old_ifs; return 0; }
  done
  IFS=$old_ifs
  return 1
}

if loader_searches; then
  if [ "$(uname -s)" = Linux ] && [ "$(id -u)" -eq 0 ]; then
    ldconfig && echo "usock: ran ldconfig, so programs find $soname in $libdir"
  elif [ "$(uname -s)" = Linux ]; then
    echo "usock: programs will not find $soname in $libdir until the loader's cache is refreshed: run sudo ldconfig"
  fi
else
  var=LD_LIBRARY_PATH
  [ "$(uname -s)" = Darwin ] && var=DYLD_LIBRARY_PATH
  echo "usock: the loader does not search $libdir: run programs with"
  echo "  $var=$libdir"
  echo "or link them with"
  echo "  -Wl,-rpath,$libdir"
fi
if ! pkg_config_searches; then
  echo "usock: pkg-config does not search $libdir/pkgconfig: build with"
  echo "  PKG_CONFIG_PATH=$libdir/pkgconfig"
fi
