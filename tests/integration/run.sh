#!/bin/sh
# The integration layer as one automake test: runs pytest over
# tests/integration (the fault-server protocol cases, the command-line tests,
# the Postfix tests) and prints TAP on stdout, one line per pytest test.
# pytest's own report goes to stderr, i.e. into the test's .log file.
#
# Environment: top_srcdir (make check sets it; default: two levels up),
# MAILCAR (the binary; default $top_srcdir/mailcar, see conftest.py),
# PYTEST_ARGS (extra pytest arguments, e.g. PYTEST_ARGS='-k 0001 -x'),
# PYTHON (default /usr/bin/python3, Debian's, which has python3-pytest),
# MAILCAR_SKIP_INTEGRATION (a reason: skip the layer, e.g. inside distcheck),
# MAILCAR_IT_TIMEOUT (seconds for the whole layer, default 1500: a hung test
# must fail the run, never stall CI).

here=$(cd "$(dirname "$0")" && pwd) || exit 99
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
PYTHON=${PYTHON:-/usr/bin/python3}

if [ -n "${MAILCAR_SKIP_INTEGRATION:-}" ]; then
    echo "1..0 # SKIP $MAILCAR_SKIP_INTEGRATION"
    exit 0
fi
if ! "$PYTHON" -c 'import pytest' >/dev/null 2>&1; then
    echo "1..0 # SKIP $PYTHON cannot import pytest (apt-get install python3-pytest)"
    exit 0
fi

tapfile=$(mktemp "${TMPDIR:-/tmp}/mailcar-tap.XXXXXX") || exit 99
trap 'rm -f "$tapfile"' EXIT
trap 'exit 130' INT TERM

cd "$top_srcdir" || exit 99
# PYTEST_ARGS is read with shell quoting: PYTEST_ARGS="-k '0001 or 0002'".
eval "set -- ${PYTEST_ARGS:-}"
# No bytecode or cache files: the source tree is read-only under distcheck.
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" \
    timeout --kill-after=30 "${MAILCAR_IT_TIMEOUT:-1500}" \
    "$PYTHON" -m pytest -q -rfEs -p no:cacheprovider -p tap --tap-file="$tapfile" \
    tests/integration "$@" 1>&2
rc=$?

if grep -q '^1\.\.' "$tapfile"; then
    cat "$tapfile"
    exit 0
fi
# pytest stopped before the end (usage error, crash, interrupt): keep what
# was reported and say so.
cat "$tapfile"
n=$(grep -c '^\(not \)\{0,1\}ok ' "$tapfile")
n=$((n + 1))
echo "not ok $n - pytest exited with status $rc before finishing (see the log)"
echo "1..$n"
exit 0
