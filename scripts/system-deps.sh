#!/bin/sh
# system-deps.sh installs the Debian packages `make demo` or `make test` needs, if any is missing.
#
#   scripts/system-deps.sh demo   # a C compiler and libc headers, python3-venv, graphviz (render's dot)
#   scripts/system-deps.sh test   # the same, chromium (the HTML page is opened in headless chromium),
#                                 # Go 1.19 (gctraceres' Go tests) and gdb's gcore (core-file imports)
#
# It checks what each target runs, not package names: a compiler that can build a
# program against libc, `python3 -m venv` with pip (ensurepip), graphviz's `dot`,
# and `chromium`. Nothing missing: it says nothing and exits 0, so the Makefile can
# call it before every demo and test. Something missing: as root it runs apt-get,
# with sudo it runs `sudo apt-get`; otherwise it prints the one command to run and
# exits 1. On a machine without apt-get it names what to install and exits 1.
set -eu

want=${1:-test}
case $want in
  demo|test) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

need=""
add() { need="$need${need:+ }$*"; }

# A compiler alone is not enough: Debian's gcc without libc6-dev cannot find <stdio.h>.
cc_ok() {
  command -v "${CC:-cc}" >/dev/null 2>&1 || return 1
  printf '#include <stdio.h>\nint main(void) { return 0; }\n' | "${CC:-cc}" -x c -o /dev/null - >/dev/null 2>&1
}
cc_ok || add gcc libc6-dev
# Debian splits venv's pip bootstrap (ensurepip) into python3-venv.
"${PYTHON:-python3}" -c 'import venv, ensurepip' >/dev/null 2>&1 || add python3-venv
command -v dot >/dev/null 2>&1 || add graphviz
if [ "$want" = test ]; then
  command -v chromium >/dev/null 2>&1 || add chromium
  [ -x "${GO119:-/usr/lib/go-1.19/bin/go}" ] || add golang-1.19-go
  command -v gcore >/dev/null 2>&1 || add gdb
fi

[ -z "$need" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "gctrace: make $want needs these (Debian package names): $need" >&2
  echo "gctrace: this machine has no apt-get: install them with its package manager, then run make $want again" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif command -v sudo >/dev/null 2>&1; then
  sudo="sudo"
else
  echo "gctrace: make $want needs Debian packages that are not installed: $need" >&2
  echo "gctrace: run this as root, then make $want again:" >&2
  echo "    apt-get update && apt-get install -y --no-install-recommends $need" >&2
  exit 1
fi

echo "gctrace: installing the Debian packages make $want needs: $need" >&2
# shellcheck disable=SC2086  # $need is a list of package names
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need
