#!/usr/bin/env bash
# The whole test suite, from a bare Debian 12 machine (as root) to a verdict:
#   installs what is missing, then builds and runs `make check` twice
#   (gcc -Werror; clang -Werror with ASan+UBSan), the message unit tests
#   under ThreadSanitizer, the unit tests of a build that links OpenSSL
#   (--disable-openssl-dlopen), then `make distcheck`,
#   the man-page lint, cppcheck + clang-tidy (tests/lint.sh), the protocol and
#   attack tests once under valgrind (tests/valgrind.sh) and a short run of
#   every fuzz target.
# Ends with "N passed, N failed, N skipped" summed over every layer and exits
# non-zero when anything failed.  .ci/run runs exactly this.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=${JOBS:-2}
passed=0 failed=0 skipped=0
failures=()

step() {   # step NAME COMMAND...: one pass/fail item with its log
    local name=$1; shift
    local log="$top/_build/logs/$name.log"
    mkdir -p "$top/_build/logs"
    echo "== $name"
    if "$@" >"$log" 2>&1; then
        return 0
    fi
    echo "   FAILED: $name (last lines of $log follow)"
    tail -n 40 "$log" | sed 's/^/   | /'
    return 1
}

count_suite() {   # add a build's automake test-suite.log totals
    local log=$1 p f s
    if [ ! -f "$log" ]; then
        failed=$((failed + 1)); failures+=("$log missing"); return
    fi
    p=$(sed -n 's/^# PASS: *//p' "$log"); f=$(sed -n 's/^# FAIL: *//p' "$log")
    s=$(sed -n 's/^# SKIP: *//p' "$log")
    local e; e=$(sed -n 's/^# ERROR: *//p' "$log")
    local xp; xp=$(sed -n 's/^# XPASS: *//p' "$log")
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0} + ${xp:-0}))
    skipped=$((skipped + ${s:-0}))
    grep -E '^(FAIL|ERROR|XPASS):' "$log" | sed 's/^/   /' || true
}

item() {   # a single pass/fail check that is not a TAP suite
    local name=$1; shift
    if step "$name" "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$name"); fi
}

bash tests/setup-debian.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
item autogen ./autogen.sh

build() {   # build DIR CC CFLAGS [CONFIGURE-ARG...] (in a subshell: the caller stays at the top)
    local dir=$1 cc=$2 cflags=$3
    shift 3
    (rm -rf "$dir" && mkdir -p "$dir" && cd "$dir" &&
        "$top/configure" --enable-werror CC="$cc" CFLAGS="$cflags" "$@" &&
        make -j"$jobs")
}

gcc_dir=$top/_build/gcc
asan_dir=$top/_build/clang-asan
asan_flags="-g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"

item build-gcc build "$gcc_dir" gcc "-g -O2"
(cd "$gcc_dir" && step check-gcc make -j"$jobs" check) || true
count_suite "$gcc_dir/test-suite.log"

item build-clang-asan build "$asan_dir" clang "$asan_flags"
(cd "$asan_dir" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 step check-clang-asan make -j"$jobs" check) || true
count_suite "$asan_dir/test-suite.log"

# The one threaded path (msg.c checks a large message file on two cores),
# its unit tests under ThreadSanitizer.
tsan_dir=$top/_build/clang-tsan
item tsan-msg sh -c "rm -rf '$tsan_dir' && mkdir -p '$tsan_dir' && cd '$tsan_dir' &&
    '$top/configure' --enable-werror CC=clang CFLAGS='-g -O1 -fsanitize=thread' &&
    make -j$jobs tests/unit/test_msg && TSAN_OPTIONS=halt_on_error=1 ./tests/unit/test_msg"

# OpenSSL linked the usual way (--disable-openssl-dlopen): it builds, links
# libssl, and passes the unit layer.
linked_dir=$top/_build/gcc-linked
item build-linked build "$linked_dir" gcc "-g -O2" --disable-openssl-dlopen
item check-linked sh -c "cd '$linked_dir' && ldd mailcar | grep -q libssl &&
    MAILCAR_SKIP_INTEGRATION='the linked build runs the unit layer only' make -j$jobs check"

item distcheck sh -c "cd '$gcc_dir' && MAILCAR_SKIP_INTEGRATION='distcheck runs the unit layer only; the integration layer ran above' make -j$jobs distcheck"
item man-lint sh -c "mandoc -Tlint -Wwarning man/*.[0-9]"
item lint bash tests/lint.sh
item valgrind bash tests/valgrind.sh "$gcc_dir/mailcar"
# On CI (a disposable machine) the packages are also installed, used and purged.
item package env MAILCAR_PACKAGE_INSTALL="${CI:+1}" bash tests/package.sh
item install bash tests/install.sh
item soak /usr/bin/python3 tests/soak.py --quick --mailcar "$gcc_dir/mailcar"
if [ -x tests/fuzz/run.sh ]; then
    item fuzz-smoke bash tests/fuzz/run.sh "${FUZZ_SECONDS:-20}"
fi

echo
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
