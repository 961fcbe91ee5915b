#!/usr/bin/env bash
# Build every libFuzzer target in tests/fuzz with clang (ASan+UBSan) and run
# each for SECONDS (default 20) on a scratch copy of its seed corpus.
# `make fuzz` runs it longer.  A crash fails the run; its input is kept in
# _build/fuzz/<target>/ to be added to the corpus as a regression seed.
set -u
seconds=${1:-20}
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/_build/fuzz
mkdir -p "$out"
lib_srcs=$(ls "$top"/src/*.c | grep -v '/main.c$')
status=0
[ -f "$top/config.h" ] || [ -f "$top/_build/gcc/config.h" ] || { echo "run configure first"; exit 1; }
inc=$top; [ -f "$top/config.h" ] || inc=$top/_build/gcc
cflags="-g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -DSYSCONFDIR=\"/etc\" -I$inc -I$top/src"
# The library once, instrumented for coverage; each target links against it.
rm -f "$out"/*.o "$out/libfuzz.a"
for s in $lib_srcs; do
    clang $cflags -fsanitize=fuzzer-no-link -c "$s" -o "$out/$(basename "$s" .c).o" || exit 1
done
ar rcs "$out/libfuzz.a" "$out"/*.o
for src in "$top"/tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    short=${name#fuzz_}
    bin=$out/$name
    clang $cflags -fsanitize=fuzzer "$src" "$out/libfuzz.a" -lssl -lcrypto -lresolv -o "$bin" ||
        { status=1; continue; }
    work=$out/$short
    rm -rf "$work" && mkdir -p "$work/corpus"
    [ -d "$top/tests/fuzz/corpus/$short" ] && cp -r "$top/tests/fuzz/corpus/$short/." "$work/corpus/"
    echo "fuzzing $name for ${seconds}s"
    if ! (cd "$work" && "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=0 corpus >"$work/log" 2>&1); then
        echo "$name: crash; see $work/log and $work/crash-*"
        tail -n 30 "$work/log"
        status=1
    fi
done
exit $status
