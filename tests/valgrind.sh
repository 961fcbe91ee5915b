#!/usr/bin/env bash
# The integration layer's client under valgrind memcheck, once: the protocol
# cases (tests/integration/cases, smuggling included) and the attack
# catalogue's STARTTLS, hostile-server and AUTH-loop tests, with MAILCAR
# pointing at a wrapper that runs the real binary under
#   valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
# Any memcheck error or definite leak fails the run: the client exits 99 (so
# the test fails) and the per-run logs are scanned as well.  Left out, to fit
# the CI budget (memcheck costs about a second per client run, mostly
# OpenSSL's start-up) and because its slowness would fake failures: the timing
# tests (deadline, drip, stalls measured in seconds), the 100 MB message, the
# big-input and argv/config refusal tests, the real-Postfix tests.  The ASan
# build runs all of them.  About 60 s on 2 cores.
#
#   bash tests/valgrind.sh [BINARY]      default: $MAILCAR, else _build/gcc/mailcar,
#                                        else ./mailcar
# PYTEST_ARGS adds pytest arguments.  Logs: _build/valgrind/.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
bin=${1:-${MAILCAR:-}}
if [ -z "$bin" ]; then
    bin=$top/_build/gcc/mailcar
    [ -x "$bin" ] || bin=$top/mailcar
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
[ -x "$bin" ] || { echo "valgrind.sh: no binary at $bin (build first)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 1; }

out=$top/_build/valgrind
rm -rf "$out" && mkdir -p "$out/logs" || exit 1
wrapper=$out/mailcar
cat >"$wrapper" <<EOF
#!/bin/sh
# valgrind.sh: the client under memcheck; its report goes to a log, not stderr.
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \\
    --show-leak-kinds=definite --track-fds=no --num-callers=30 \\
    --log-file="$out/logs/vg.%p.log" "$bin" "\$@"
EOF
chmod 755 "$wrapper"

# Protocol cases whose point is a time measurement are left to the other builds.
timing='stall or slow or drip or deadline or 0028 or 0029 or 0030 or 0031 or 0032 or 0033 or 0037'
attacks='starttls or downgrade or handshake or hostile_server_script or 334'
echo "valgrind.sh: $bin under memcheck"
eval "set -- ${PYTEST_ARGS:-}"
# Two pytest processes side by side (memcheck is single-threaded; CI has 2 cores).
run() {   # run FILE SELECTION LOG
    MAILCAR=$wrapper MAILCAR_TEST_TIMEOUT=40 PYTHONDONTWRITEBYTECODE=1 \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider -rfE "$1" -k "$2" "${@:4}" >"$3" 2>&1
}
run tests/integration/test_cases.py "not ($timing)" "$out/cases.log" "$@" & p1=$!
run tests/integration/test_attacks.py "$attacks" "$out/attacks.log" "$@" & p2=$!
rc=0
wait $p1 || rc=1
wait $p2 || rc=1
cat "$out/cases.log" "$out/attacks.log"

runs=$(ls "$out"/logs/ | wc -l)
bad=$(grep -l . "$out"/logs/*.log 2>/dev/null)
if [ -n "$bad" ]; then
    echo "valgrind.sh: memcheck reports in:"
    for f in $bad; do echo "--- $f"; head -n 60 "$f"; done
    rc=1
fi
echo "valgrind.sh: $runs client runs under memcheck, $(echo $bad | wc -w) with reports"
exit $rc
