#!/bin/sh
# mailcar - Copyright (c) 2026 The mailcar authors. ISC license, see LICENSE.
#
# bench/run.sh PATH-TO-MAILCAR: mailcar and msmtp side by side against the
# same sink (bench/sink.c), same messages, runs alternating.  Writes
# RESULTS.md and throughput.png next to this script (QUICK=1: a smoke run
# with few iterations, written to $BENCH_OUT or /tmp/mailcar-bench-quick).
# Installs what it lacks with apt when run as root.  Never part of check;
# it measures, it asserts nothing about time.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: QUICK=0|1 $0 PATH-TO-MAILCAR" >&2; exit 2; }
MAILCAR_GIVEN=$(readlink -f "$1")
[ -x "$MAILCAR_GIVEN" ] || { echo "run.sh: $1: not an executable" >&2; exit 2; }
BENCH=$(cd "$(dirname "$0")" && pwd)
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    OUT=${BENCH_OUT:-/tmp/mailcar-bench-quick}
    N_SMALL=5 N_1M=2 N_10M=2 N_100M=1 N_T=1 N_RCPT=3 N_CRON=20 N_VER=5 N_WAN=2 N_QUEUE=100
else
    OUT=${BENCH_OUT:-$BENCH}
    N_SMALL=31 N_1M=9 N_10M=7 N_100M=5 N_T=3 N_RCPT=15 N_CRON=200 N_VER=31 N_WAN=7 N_QUEUE=1000
fi
DELAY_MS=25 # one way, so the round trip is 50 ms
RCPT=rcpt@example.test
T_START=$(date +%s)
LOAD_BEFORE=$(cat /proc/loadavg)
# What to say in RESULTS.md when the load average was above 2 (others on the machine).
BENCH_LOAD_NOTE=${BENCH_LOAD_NOTE:-machine shared with other work}

say() { printf '[bench %4ss] %s\n' $(($(date +%s) - T_START)) "$*" >&2; LOADS+=("$(cut -d ' ' -f 1 /proc/loadavg)"); }
LOADS=("$(cut -d ' ' -f 1 < /proc/loadavg)") # 1-minute load averages sampled at every step

# ---- what the benchmarks need --------------------------------------------
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd msmtp || need+=(msmtp)
have_cmd gnuplot || need+=(gnuplot-nox)
have_cmd valgrind || need+=(valgrind)
have_cmd strace || need+=(strace)
have_cmd ip && have_cmd tc || need+=(iproute2)
have_cmd cc || need+=(gcc libc6-dev)
have_cmd openssl || need+=(openssl)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "run.sh: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
        exit 1
    fi
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
MSMTP=$(command -v msmtp)

# ---- work area, helpers ----------------------------------------------------
W=$(mktemp -d /tmp/mailcar-bench.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$W" # nothing lands in the caller's directory
R=$W/r
# A copy, so that a rebuild in the work tree during the run changes nothing.
cp "$MAILCAR_GIVEN" "$W/mailcar"
MAILCAR=$W/mailcar
mkdir -p "$R" "$W/conf" "$W/tls" "$W/xdg" "$W/home"
export XDG_CACHE_HOME=$W/xdg HOME=$W/home LC_ALL=C
: > "$W/failures"

say "building the sink, the delay relay and runstat"
for p in sink delay runstat; do
    ${CC:-cc} -O2 -Wall -Wextra -o "$W/$p" "$BENCH/$p.c" -lssl -lcrypto -lpthread
done

# Lines of FILE that are there: wait (5 s at most) until there are N.
wait_lines() {
    local i=0
    while [ "$(wc -l < "$1")" -lt "$2" ]; do
        i=$((i + 1))
        [ $i -le 500 ] || return 1
        sleep 0.01
    done
}

fail() { echo "$*" >> "$W/failures"; say "PROBLEM: $*"; }

# one LABEL INPUT [--wan] COMMAND...: one measured run; its runstat line goes
# to $R/LABEL.run, the sink's line to $R/LABEL.sink, the relay's to .wan.
one() {
    local label=$1 input=$2 wan=0 sb db st line
    shift 2
    if [ "$1" = --wan ]; then wan=1; shift; fi
    sb=$(wc -l < "$W/sink.log") db=$(wc -l < "$W/delay.log")
    "$W/runstat" -t 120 -i "$input" -- "$@" >> "$R/$label.run" 2> "$R/$label.last-err" || true
    st=$(tail -n 1 "$R/$label.run" | awk '{print $5}')
    if [ "$st" != 0 ]; then
        fail "$label: exit status $st: $* < $(basename "$input") ($(head -n 1 "$R/$label.last-err"))"
        return 0
    fi
    if ! wait_lines "$W/sink.log" $((sb + 1)); then
        fail "$label: the sink logged no connection: $*"
        return 0
    fi
    line=$(tail -n 1 "$W/sink.log")
    echo "$line" >> "$R/$label.sink"
    case "$line" in *" msgs=1 "*) ;; *) fail "$label: the sink did not get one message: $line" ;; esac
    if [ $wan = 1 ]; then
        if wait_lines "$W/delay.log" $((db + 1)); then
            tail -n 1 "$W/delay.log" >> "$R/$label.wan"
        else
            fail "$label: the relay logged no connection: $*"
        fi
    fi
}

# Numbers on stdin -> "median min max" (n/a when there are none).
stat3() {
    sort -g | awk '{a[NR] = $1} END {
        if (NR == 0) { print "n/a n/a n/a"; exit }
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        print m, a[1], a[NR] }'
}
# col FILE 'AWK-EXPR' [SCALE]: one number per line of FILE.
col() { [ -f "$1" ] && awk "{ print ($2) * ${3:-1} }" "$1" || true; }
# field FILE NAME: the NAME=value numbers of a sink or relay log.
field() {
    [ -f "$1" ] && awk -v k="$2" '{ for (i = 1; i <= NF; i++) { split($i, a, "=");
        if (a[1] == k) print a[2] } }' "$1" || true
}
# "median min max" -> "median (min–max)" with DEC decimals.
fmt() {
    awk -v d="$1" '{ if ($1 == "n/a") { print "n/a"; exit }
        m = sprintf("%." d "f", $1); lo = sprintf("%." d "f", $2); hi = sprintf("%." d "f", $3)
        print (lo == hi ? m : m " (" lo "–" hi ")") }'
}
med() { stat3 | awk '{print $1}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "n/a" || b == "n/a" || b == 0) print "n/a";
    else printf "%.2f\n", a / b }'; }
count() { [ -f "$1" ] && wc -l < "$1" || echo 0; }

# ---- certificates, messages, configurations ---------------------------------
say "certificates and messages"
(
    cd "$W/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key \
        -out ca.pem -days 7 -subj /CN=mailcar-bench-ca 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key \
        -out server.csr -subj /CN=localhost 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 \
        -extfile ext.cnf -out server.pem 2>/dev/null
)

# gen BYTES FILE: a complete message of about BYTES bytes: the headers and
# base64 lines of 76 characters (a typical attachment), the same every time.
gen() {
    local hdr="From: Bench <bench@example.test>
To: <$RCPT>
Subject: mailcar benchmark $1
Date: Thu, 01 Jan 2026 00:00:00 +0000
Message-ID: <bench-$1@example.test>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii
"
    {
        printf '%s\n' "$hdr"
        head -c $((($1 - ${#hdr} - 1) * 57 / 77)) /dev/zero |
            openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f \
                -iv 00000000000000000000000000000000 | base64 -w 76
    } > "$2"
}
M2K=$W/msg-2k.eml
gen 2048 "$M2K"
for s in 1 10 100; do gen $((s * 1000000)) "$W/msg-${s}m.eml"; done
size() { stat -c %s "$1"; }

: > "$W/sink.log"
: > "$W/delay.log"
# start NAME COMMAND...: start a server that prints "ready PORT..." and wait for it.
start() {
    local name=$1 i=0
    shift
    "$@" > "$W/$name.ready" 2> "$W/$name.err" &
    PIDS+=($!)
    until [ -s "$W/$name.ready" ]; do
        i=$((i + 1))
        [ $i -le 500 ] || { echo "run.sh: $name did not start: $(cat "$W/$name.err")" >&2; exit 1; }
        sleep 0.01
    done
}
start sink "$W/sink" -c "$W/tls/server.pem" -k "$W/tls/server.key" -s 0 \
    -u benchuser -w benchpass -L "$W/sink.log"
read -r _ PORT TLSPORT < "$W/sink.ready"
start delay "$W/delay" -t "$PORT" -d $DELAY_MS -L "$W/delay.log"
read -r _ WPORT < "$W/delay.ready"
start delay-tls "$W/delay" -t "$TLSPORT" -d $DELAY_MS -L "$W/delay.log"
read -r _ WTLSPORT < "$W/delay-tls.ready"

# conf NAME PORT MODE [EXTRA-LINE]...: a configuration both clients read.
conf() {
    local name=$1 port=$2 mode=$3
    shift 3
    {
        printf '%s\n' "account default" "host 127.0.0.1" "port $port" "from bench@example.test"
        case $mode in
        plain) printf '%s\n' "tls off" "auth off" ;;
        starttls | implicit)
            printf '%s\n' "tls on" "tls_starttls $([ $mode = starttls ] && echo on || echo off)" \
                "tls_trust_file $W/tls/ca.pem" "auth plain" "user benchuser" "password benchpass"
            ;;
        esac
        [ $# -eq 0 ] || printf '%s\n' "$@"
    } > "$W/conf/$name.conf"
    chmod 600 "$W/conf/$name.conf"
}
conf plain "$PORT" plain
conf starttls "$PORT" starttls
conf starttls-nocache "$PORT" starttls "tls_session_cache off"
conf wan-plain "$WPORT" plain
conf wan-starttls "$WPORT" starttls
conf wan-implicit "$WTLSPORT" implicit
C=$W/conf

MC=("$MAILCAR" -C) # followed by the configuration, then the recipients
MS=("$MSMTP" -C)
# pair N LABEL INPUT CONF [--wan] [RCPT...]: N runs of each client, alternating
# which goes first; labels LABEL-mc and LABEL-ms.
pair() {
    local n=$1 label=$2 input=$3 cf=$4 i
    shift 4
    local wan=()
    if [ "${1:-}" = --wan ]; then wan=(--wan); shift; fi
    for ((i = 1; i <= n; i++)); do
        if ((i % 2)); then
            one "$label-mc" "$input" "${wan[@]}" "${MC[@]}" "$C/$cf.conf" "${@:-$RCPT}"
            one "$label-ms" "$input" "${wan[@]}" "${MS[@]}" "$C/$cf.conf" "${@:-$RCPT}"
        else
            one "$label-ms" "$input" "${wan[@]}" "${MS[@]}" "$C/$cf.conf" "${@:-$RCPT}"
            one "$label-mc" "$input" "${wan[@]}" "${MC[@]}" "$C/$cf.conf" "${@:-$RCPT}"
        fi
    done
}

# ---- 1. one 2 KB message -------------------------------------------------------
say "1: one 2 KB message, $N_SMALL runs per client and mode"
pair "$N_SMALL" small-plain "$M2K" plain
# TLS: mailcar with its cache, without, and msmtp, in rotating order.
for ((i = 0; i < N_SMALL; i++)); do
    for ((k = 0; k < 3; k++)); do
        case $(((i + k) % 3)) in
        0) one small-tls-mc "$M2K" "${MC[@]}" "$C/starttls.conf" "$RCPT" ;;
        1) one small-tls-mcoff "$M2K" "${MC[@]}" "$C/starttls-nocache.conf" "$RCPT" ;;
        2) one small-tls-ms "$M2K" "${MS[@]}" "$C/starttls.conf" "$RCPT" ;;
        esac
    done
done

# ---- 2. throughput and RSS -------------------------------------------------------
say "2: throughput and peak RSS at 1, 10, 100 MB"
for s in 1 10 100; do
    n=N_${s}M
    pair "${!n}" "big${s}-plain" "$W/msg-${s}m.eml" plain
    pair "${!n}" "big${s}-tls" "$W/msg-${s}m.eml" starttls
    # The same with -t (recipients from the header block): memory must not grow either.
    pair "$N_T" "big${s}-plain-t" "$W/msg-${s}m.eml" plain -t
    pair "$N_T" "big${s}-tls-t" "$W/msg-${s}m.eml" starttls -t
done

# Socket writes of one 10 MB send under strace (its own run: strace slows it down).
for m in plain starttls; do
    for cl in mc ms; do
        if [ $cl = mc ]; then cmd=("${MC[@]}"); else cmd=("${MS[@]}"); fi
        strace -f -qq -e trace=write,sendto,sendmsg -o "$R/strace-$m-$cl.txt" \
            "${cmd[@]}" "$C/$m.conf" "$RCPT" < "$W/msg-10m.eml" > /dev/null 2>&1 ||
            fail "strace $m $cl: exit status $?"
    done
done

# ---- 3. 1,000 recipients --------------------------------------------------------
say "3: one message to 1,000 recipients"
RCPTS=()
for ((i = 1; i <= 1000; i++)); do RCPTS+=("rcpt$i@example.test"); done
pair "$N_RCPT" rcpt "$M2K" plain "${RCPTS[@]}"
pair "$N_WAN" wan-rcpt "$M2K" wan-plain --wan "${RCPTS[@]}"

# ---- 4. the cron pattern: one process per message --------------------------------
say "4: $N_CRON messages, one process each"
# cron LABEL COMMAND...: N_CRON runs back to back, then check the sink saw them all.
cron() {
    local label=$1 sb
    shift
    sb=$(wc -l < "$W/sink.log")
    "$W/runstat" -t 120 -n "$N_CRON" -i "$M2K" -- "$@" > "$R/$label.run" 2> "$R/$label.last-err" || true
    awk '$5 != 0 { bad++ } END { exit bad > 0 }' "$R/$label.run" ||
        fail "$label: $(awk '$5 != 0' "$R/$label.run" | wc -l) of $N_CRON runs failed: $* ($(head -n 1 "$R/$label.last-err"))"
    wait_lines "$W/sink.log" $((sb + N_CRON)) || fail "$label: the sink logged fewer than $N_CRON connections"
    tail -n +$((sb + 1)) "$W/sink.log" > "$R/$label.sink"
}
cron cron-plain-mc "${MC[@]}" "$C/plain.conf" "$RCPT"
cron cron-plain-ms "${MS[@]}" "$C/plain.conf" "$RCPT"
rm -rf "$XDG_CACHE_HOME/mailcar" # start with an empty session cache
cron cron-tls-mc "${MC[@]}" "$C/starttls.conf" "$RCPT"
cron cron-tls-mcoff "${MC[@]}" "$C/starttls-nocache.conf" "$RCPT"
cron cron-tls-ms "${MS[@]}" "$C/starttls.conf" "$RCPT"

# ---- 5. queue flush: mailcar -q against msmtpq ----------------------------------------
say "5: queue flush of $N_QUEUE messages: mailcar -q, then msmtpq"
# msmtpq is in Debian's msmtp package (/usr/libexec/msmtp/msmtpq/ in 1.8.23;
# older packages had it under /usr/share/doc/msmtp/examples/msmtpq/).
MSMTPQ= MSMTPQ_WHY=
for f in "$(command -v msmtpq 2>/dev/null || true)" $(dpkg -L msmtp 2>/dev/null | grep '/msmtpq$' || true) \
    /usr/libexec/msmtp/msmtpq/msmtpq /usr/share/doc/msmtp/examples/msmtpq/msmtpq; do
    if [ -n "$f" ] && [ -f "$f" ]; then MSMTPQ=$f; break; fi
done
MQ=()
if [ -z "$MSMTPQ" ]; then
    MSMTPQ_WHY="msmtpq was not found (not on PATH, not in \`dpkg -L msmtp\`)"
elif [ -x "$MSMTPQ" ]; then MQ=("$MSMTPQ"); else MQ=(bash "$MSMTPQ"); fi
# A port where nothing listens: one the kernel gave a sink that is gone.
"$W/sink" -L /dev/null > "$W/dead.ready" 2> /dev/null &
dpid=$!
for ((i = 0; i < 500; i++)); do [ -s "$W/dead.ready" ] && break; sleep 0.01; done
read -r _ DEAD _ < "$W/dead.ready"
kill "$dpid"
wait "$dpid" 2> /dev/null || true
if (exec 3<> "/dev/tcp/127.0.0.1/$DEAD") 2> /dev/null; then fail "5: something listens on port $DEAD, the closed port"; fi
# The same two files, first pointing at the closed port, then at the sink:
# msmtpq keeps "-C FILE RCPT" in its queue and mailcar its account name.
qconf() {
    conf queue-mc "$1" plain "queue on" "queue_dir $W/mcq"
    conf queue-ms "$1" plain
}
qconf "$DEAD"
# msmtpq's settings are environment variables (see the top of the script):
# its queue and log here, no connection test (EMAIL_CONN_TEST=x; the default
# pings debian.org before every send), no chatter.
msmtpq_env() {
    export MSMTPQ_Q=$W/msq MSMTPQ_LOG=$W/msq.log EMAIL_CONN_TEST=x EMAIL_QUEUE_QUIET=t MSMTP
}
qcount() { find "$1" -maxdepth 1 -name "*.$2" 2> /dev/null | wc -l; }
# enq LABEL COMMAND...: N_QUEUE submissions of the 2 KB message to the closed port.
enq() {
    local label=$1
    shift
    "$W/runstat" -t 60 -n "$N_QUEUE" -i "$M2K" -- "$@" > "$R/$label.run" 2> "$R/$label.last-err" || true
    awk '$5 != 0 { bad++ } END { exit bad > 0 }' "$R/$label.run" ||
        fail "$label: $(awk '$5 != 0' "$R/$label.run" | wc -l) of $N_QUEUE submissions exited non-zero: $*"
}
sinkmsgs() { tail -n +$(($1 + 1)) "$W/sink.log" | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^msgs=/) s += substr($i, 6) } END { print s + 0 }'; }
# flush LABEL COMMAND...: one queue run against the sink.
flush() {
    local label=$1 sb st got i
    shift
    sb=$(wc -l < "$W/sink.log")
    "$W/runstat" -t 600 -i /dev/null -- "$@" > "$R/$label.run" 2> "$R/$label.last-err" || true
    st=$(awk '{ print $5 }' "$R/$label.run")
    [ "$st" = 0 ] || fail "$label: exit status $st: $* ($(tail -n 1 "$R/$label.last-err"))"
    # The sink logs a connection as it closes: wait (5 s at most) for them all.
    for ((i = 0; i < 500; i++)); do
        [ "$(sinkmsgs "$sb")" -lt "$N_QUEUE" ] || break
        sleep 0.01
    done
    tail -n +$((sb + 1)) "$W/sink.log" > "$R/$label.sink"
    got=$(sinkmsgs "$sb")
    [ "$got" = "$N_QUEUE" ] || fail "$label: the sink received $got of $N_QUEUE messages"
}
# Each client enqueues and flushes in turn; `sync` first, so neither pays in
# its fsyncs for the other's (or an earlier benchmark's) dirty pages.
sync
enq queue-enq-mc "${MC[@]}" "$C/queue-mc.conf" "$RCPT"
qcount "$W/mcq" env > "$R/queue-enq-mc.queued"
conf queue-mc "$PORT" plain "queue on" "queue_dir $W/mcq"
sync
# mailcar's first retry is due queue_retry (5 min) after the failure:
# MAILCAR_NOW (its testing clock) puts the run an hour later.
(export MAILCAR_NOW=+3600 && flush queue-flush-mc "${MC[@]}" "$C/queue-mc.conf" -q)
qcount "$W/mcq" env > "$R/queue-flush-mc.left"
if [ ${#MQ[@]} -gt 0 ]; then
    sync
    (msmtpq_env && enq queue-enq-ms "${MQ[@]}" -C "$C/queue-ms.conf" "$RCPT")
    qcount "$W/msq" mail > "$R/queue-enq-ms.queued"
    [ "$(cat "$R/queue-enq-ms.queued")" -gt 0 ] ||
        MSMTPQ_WHY="msmtpq queued nothing: $(head -n 3 "$R/queue-enq-ms.last-err" | tr '\n' ' ')"
fi
for f in mc ms; do
    [ ! -f "$R/queue-enq-$f.queued" ] || [ "$(cat "$R/queue-enq-$f.queued")" = "$N_QUEUE" ] ||
        fail "queue-enq-$f: $(cat "$R/queue-enq-$f.queued") of $N_QUEUE messages were queued"
done
if [ ${#MQ[@]} -gt 0 ] && [ -z "$MSMTPQ_WHY" ]; then
    conf queue-ms "$PORT" plain
    sync
    # what `msmtp-queue -r` runs (that wrapper execs "msmtpq --q-mgmt -r" from PATH)
    (msmtpq_env && flush queue-flush-ms "${MQ[@]}" --q-mgmt -r)
    qcount "$W/msq" mail > "$R/queue-flush-ms.left"
fi

# ---- 6. start-up and instruction counts ------------------------------------------
say "6: --version wall, instruction counts"
for ((i = 1; i <= N_VER; i++)); do
    "$W/runstat" -- "$MAILCAR" --version >> "$R/version-mc.run"
    "$W/runstat" -- "$MSMTP" --version >> "$R/version-ms.run"
done
# irefs LABEL INPUT COMMAND...: total instructions (callgrind's "Collected").
irefs() {
    local label=$1 input=$2
    shift 2
    valgrind --tool=callgrind --callgrind-out-file="$R/$label.cg" "$@" < "$input" > /dev/null 2> "$R/$label.vg" || true
    awk '/Collected :/ { print $NF }' "$R/$label.vg" > "$R/$label.ir"
    [ -s "$R/$label.ir" ] || fail "$label: valgrind gave no count: $* ($(tail -n 1 "$R/$label.vg"))"
}
irefs ir-version-mc /dev/null "$MAILCAR" --version
irefs ir-version-ms /dev/null "$MSMTP" --version
irefs ir-plain-mc "$M2K" "${MC[@]}" "$C/plain.conf" "$RCPT"
irefs ir-plain-ms "$M2K" "${MS[@]}" "$C/plain.conf" "$RCPT"
irefs ir-tls-mc "$M2K" "${MC[@]}" "$C/starttls-nocache.conf" "$RCPT"
irefs ir-tls-ms "$M2K" "${MS[@]}" "$C/starttls.conf" "$RCPT"

# ---- 7. simulated WAN -------------------------------------------------------------
say "7: simulated WAN, ${DELAY_MS} ms each way"
NETEM="not tried"
if have_cmd ip && have_cmd tc; then
    ns=mailcar-bench-probe-$$
    if ! err=$(ip netns add "$ns" 2>&1); then
        NETEM="no: \`ip netns add\` failed: $err"
    else
        if err=$(ip netns exec "$ns" tc qdisc add dev lo root netem delay 1ms 2>&1); then
            NETEM="yes"
        else
            NETEM="no: \`tc qdisc add dev lo root netem delay 1ms\` in a new namespace says \"${err%.}\""
            if [ -r /proc/config.gz ] && zcat /proc/config.gz | grep -q '^# CONFIG_NET_SCH_NETEM is not set'; then
                NETEM="$NETEM (the kernel is built without CONFIG_NET_SCH_NETEM and has no modules to load)"
            fi
        fi
        ip netns del "$ns" 2>/dev/null || true
    fi
fi
pair "$N_WAN" wan-plain "$M2K" wan-plain --wan
pair "$N_WAN" wan-starttls "$M2K" wan-starttls --wan
pair "$N_WAN" wan-implicit "$M2K" wan-implicit --wan

# ---- RESULTS.md ---------------------------------------------------------------------
say "writing $OUT/RESULTS.md"
RES=$W/RESULTS.md
MB() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
mib() { awk '$1 == "n/a" { print; next } { printf "%.1f\n", $1 / 1024 }'; }
{
    echo "# mailcar and msmtp side by side"
    echo
    echo "Produced by \`make bench\` (bench/run.sh$([ "$QUICK" = 1 ] && echo ", QUICK=1: a smoke run, too few runs to trust")) on $(date -u '+%Y-%m-%d %H:%M UTC'); every number below comes from that run. Do not edit by hand."
    echo
    echo "## Machine and versions"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| CPU | $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) cores |"
    echo "| memory | $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
    echo "| kernel | $(uname -sr) |"
    echo "| system | Debian $(cat /etc/debian_version 2>/dev/null || echo '?') |"
    echo "| mailcar | $("$MAILCAR" --version | head -n 1), built from $(git -C "$BENCH/.." rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$BENCH/.." diff --quiet HEAD -- src 2>/dev/null || echo ' with uncommitted changes in src/'), binary sha256 $(sha256sum "$MAILCAR" | cut -c 1-12) |"
    echo "| msmtp | $("$MSMTP" --version | head -n 1) ($("$MSMTP" --version | awk -F': ' '/TLS\/SSL library/ { print $2 }')) |"
    echo "| OpenSSL | $(openssl version) |"
    echo "| GnuTLS | $(dpkg-query -W -f '${Version}' libgnutls30 2>/dev/null || echo '?') (msmtp's TLS library) |"
    echo "| compiler (sink) | $(${CC:-cc} --version | head -n 1) |"
    echo "| load average | before: $LOAD_BEFORE; after: $(cat /proc/loadavg); 1-minute, sampled at each step: $(printf '%s\n' "${LOADS[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }')$(printf '%s\n' "${LOADS[@]}" "$(cut -d ' ' -f 1 /proc/loadavg)" | awk '$1 > 2 { busy = 1 } END { exit !busy }' && echo " — above 2 (the benchmark itself keeps up to two processes busy): $BENCH_LOAD_NOTE") |"
    echo
    echo "## How it was measured"
    echo
    echo "- **Sink**: \`bench/sink.c\`, this project's SMTP sink (one thread per connection, TCP_NODELAY; PIPELINING, 8BITMIME, SIZE, STARTTLS, implicit TLS, AUTH PLAIN/LOGIN), on 127.0.0.1 on the same 2 cores as the client. It reads DATA and throws it away; one log line per connection (messages, recipients, bytes, TLS resumed or not, server flights). It takes a raw python client to about 2 GB/s plain, so it is not the bottleneck here. Certificate: ECDSA P-256 signed by a throw-away CA that both clients are given with \`tls_trust_file\`."
    echo "- **runstat**: \`bench/runstat.c\` forks and execs the client with the message on standard input: wall time is CLOCK_MONOTONIC around fork–wait; CPU (user+sys) and peak RSS come from \`wait4\`. Only the client is measured."
    echo "- Both clients read the **same configuration file** (shown below) and get the same message and recipient; mailcar and msmtp runs alternate, swapping which goes first every run. Numbers are medians with (min–max). A ratio is mailcar's median / msmtp's median: below 1 means mailcar is faster or smaller."
    echo "- mailcar's TLS session cache (\`tls_session_cache\`, on by default, \`\$XDG_CACHE_HOME/mailcar/tls\`, here a fresh temporary directory) is left on unless a row says \`cache off\`; msmtp has no session cache between processes."
    echo "- Message sizes: MB = 10^6 bytes. Messages are headers plus 76-character base64 lines, \`LF\` line ends, as a local program hands them to sendmail."
    echo
    echo "Configurations (\`\$W\` is the temporary work directory):"
    echo
    for f in plain starttls; do
        echo "\`$f.conf\`:"
        echo '```'
        sed "s|$W|\$W|g" "$C/$f.conf"
        echo '```'
    done
    echo "\`starttls-nocache.conf\` (mailcar only) adds \`tls_session_cache off\`; \`wan-*.conf\` point at the delay relay instead (\`wan-implicit.conf\`: \`tls_starttls off\` and the sink's implicit-TLS port)."
    echo
    echo "Commands (each run):"
    echo '```'
    echo "\$W/sink -c server.pem -k server.key -s 0 -u benchuser -w benchpass -L sink.log"
    echo "\$W/runstat -t 120 -i MESSAGE -- $MAILCAR_GIVEN -C \$W/conf/CONF.conf $RCPT"
    echo "\$W/runstat -t 120 -i MESSAGE -- $MSMTP -C \$W/conf/CONF.conf $RCPT"
    echo "\$W/runstat -t 120 -n $N_CRON -i msg-2k.eml -- CLIENT -C \$W/conf/CONF.conf $RCPT   # benchmark 4"
    echo "valgrind --tool=callgrind --callgrind-out-file=/dev/null CLIENT ...                  # benchmark 6"
    echo "\$W/delay -t SINKPORT -d $DELAY_MS -L delay.log                                          # benchmark 7"
    echo '```'
    echo

    # 1
    echo "## 1. One 2 KB message ($(size "$M2K") bytes), $N_SMALL runs each"
    echo
    echo "| mode | client | wall ms | CPU ms (user+sys) | peak RSS KiB | TLS resumed | wire bytes |"
    echo "|---|---|---|---|---|---|---|"
    for m in plain tls; do
        mode=$([ $m = plain ] && echo plain || echo "STARTTLS+AUTH PLAIN")
        for cl in mc mcoff ms; do
            l=small-$m-$cl
            [ -f "$R/$l.run" ] || continue
            name=$([ $cl = ms ] && echo msmtp || echo mailcar)
            [ $cl = mcoff ] && name="mailcar (cache off)"
            echo "| $mode | $name | $(col "$R/$l.run" '$1' 1000 | stat3 | fmt 1) | $(col "$R/$l.run" '$2+$3' 1000 | stat3 | fmt 1) | $(col "$R/$l.run" '$4' | stat3 | fmt 0) | $([ $m = plain ] && echo – || echo "$(field "$R/$l.sink" resumed | awk '{ s += $1 } END { print s + 0 }')/$(count "$R/$l.sink")") | $(field "$R/$l.sink" bytes | stat3 | fmt 0) |"
        done
    done
    echo
    echo "| ratio mailcar/msmtp | wall | CPU | peak RSS |"
    echo "|---|---|---|---|"
    for m in plain tls; do
        a=$R/small-$m-mc.run b=$R/small-$m-ms.run
        echo "| $([ $m = plain ] && echo plain || echo STARTTLS+AUTH) | $(ratio "$(col "$a" '$1' | med)" "$(col "$b" '$1' | med)") | $(ratio "$(col "$a" '$2+$3' | med)" "$(col "$b" '$2+$3' | med)") | $(ratio "$(col "$a" '$4' | med)" "$(col "$b" '$4' | med)") |"
    done
    echo

    # 2
    echo "## 2. Throughput and peak RSS: 1 MB ($N_1M runs), 10 MB ($N_10M runs), 100 MB ($N_100M runs)"
    echo
    echo "Throughput is the message file's size / wall time of the whole process (start-up and reading the message included). TLS is STARTTLS+AUTH PLAIN."
    echo
    echo "| size | mode | client | MB/s | wall s | peak RSS MiB | mailcar/msmtp wall |"
    echo "|---|---|---|---|---|---|---|"
    : > "$W/plot.dat"
    for s in 1 10 100; do
        bytes=$(size "$W/msg-${s}m.eml")
        row="$(MB "$bytes")"
        for m in plain tls; do
            for cl in mc ms; do
                l=big$s-$m-$cl
                w=$(col "$R/$l.run" '$1' | stat3)
                tp=$(echo "$w" | awk -v b="$bytes" '$1 == "n/a" { print "n/a n/a n/a"; next } { print b / $1 / 1e6, b / $3 / 1e6, b / $2 / 1e6 }')
                rss=$(col "$R/$l.run" '$4' 1 | stat3)
                r=$([ $cl = mc ] && ratio "$(col "$R/big$s-$m-mc.run" '$1' | med)" "$(col "$R/big$s-$m-ms.run" '$1' | med)" || echo)
                echo "| $(MB "$bytes") MB | $([ $m = plain ] && echo plain || echo TLS) | $([ $cl = mc ] && echo mailcar || echo msmtp) | $(echo "$tp" | fmt 1) | $(echo "$w" | fmt 3) | $(echo "$rss" | awk '$1 != "n/a" { $1 /= 1024; $2 /= 1024; $3 /= 1024 } 1' | fmt 1) | $r |"
                row="$row $(echo "$tp" | awk '{ print $1 }') $(echo "$rss" | awk '{ print ($1 == "n/a" ? "n/a" : $1 / 1024) }')"
            done
        done
        echo "$row" >> "$W/plot.dat"
    done
    echo
    echo "Peak RSS (MiB, median) against message size; the 2 KB column is from benchmark 1:"
    echo
    echo "| client | mode | 2 KB | 1 MB | 10 MB | 100 MB |"
    echo "|---|---|---|---|---|---|"
    for cl in mc ms; do
        for m in plain tls; do
            printf '| %s | %s | %s' "$([ $cl = mc ] && echo mailcar || echo msmtp)" "$([ $m = plain ] && echo plain || echo TLS)" "$(col "$R/small-$m-$cl.run" '$4' | med | mib)"
            for s in 1 10 100; do printf ' | %s' "$(col "$R/big$s-$m-$cl.run" '$4' | med | mib)"; done
            echo " |"
        done
    done
    for cl in mc ms; do
        for m in plain tls; do
            printf '| %s | %s with -t | –' "$([ $cl = mc ] && echo mailcar || echo msmtp)" "$([ $m = plain ] && echo plain || echo TLS)"
            for s in 1 10 100; do printf ' | %s' "$(col "$R/big$s-$m-t-$cl.run" '$4' | med | mib)"; done
            echo " |"
        done
    done
    echo
    echo "The rows with -t ($N_T runs each) take the recipients from the header block (To: of the message) instead of the command line."
    echo
    echo "![throughput and RSS against message size](throughput.png)"
    echo

    echo "Socket writes for one 10 MB message, counted with \`strace -f -e trace=write,sendto,sendmsg\` (writes to standard output and error left out):"
    echo
    echo "| mode | client | writes | median octets per write | octets in writes of 16 KiB or more |"
    echo "|---|---|---|---|---|"
    for m in plain starttls; do
        for cl in mc ms; do
            # "PID call(FD, ...) = N": N for every FD above 2.
            sed -nE 's/^[0-9]+ +(write|sendto|sendmsg)\(([0-9]+),.*= ([0-9]+)$/\2 \3/p' \
                "$R/strace-$m-$cl.txt" 2>/dev/null | awk '$1 > 2 { print $2 }' | sort -n | awk -v m="$([ $m = plain ] && echo plain || echo STARTTLS+AUTH)" \
                    -v c="$([ $cl = mc ] && echo mailcar || echo msmtp)" '
                    { v[NR] = $1; t += $1; if ($1 >= 16384) big += $1 }
                    END { if (NR == 0) { print "| " m " | " c " | n/a | n/a | n/a |"; exit }
                          printf "| %s | %s | %d | %d | %.1f%% |\n", m, c, NR, v[int((NR + 1) / 2)], 100 * big / t }'
        done
    done
    echo

    # 3
    echo "## 3. One message to 1,000 recipients"
    echo
    echo "Loopback: $N_RCPT runs each. Round trips: the same submission through the delay relay of benchmark 7 (50 ms round trip, $N_WAN runs each), counted by the relay as the times the client had to wait for the server. The minimum is 4: greeting, EHLO, MAIL+1,000×RCPT+DATA in one pipelined flight, body+QUIT."
    echo
    echo "| client | wall ms (loopback) | sink flights (loopback) | round trips (50 ms RTT) | wall ms (50 ms RTT) |"
    echo "|---|---|---|---|---|"
    for cl in mc ms; do
        echo "| $([ $cl = mc ] && echo mailcar || echo msmtp) | $(col "$R/rcpt-$cl.run" '$1' 1000 | stat3 | fmt 1) | $(field "$R/rcpt-$cl.sink" flights | stat3 | fmt 0) | $(field "$R/wan-rcpt-$cl.wan" waits | stat3 | fmt 0) | $(col "$R/wan-rcpt-$cl.run" '$1' 1000 | stat3 | fmt 0) |"
    done
    echo
    echo "The sink counts a flight whenever it writes after a read; on loopback it answers a pipelined group early when the client writes the group in many small writes (msmtp writes one per command), so its loopback count overstates the waits. The relay's count at 50 ms is the one to read."
    echo
    echo "Ratio mailcar/msmtp, loopback wall: $(ratio "$(col "$R/rcpt-mc.run" '$1' | med)" "$(col "$R/rcpt-ms.run" '$1' | med)"); at 50 ms RTT: $(ratio "$(col "$R/wan-rcpt-mc.run" '$1' | med)" "$(col "$R/wan-rcpt-ms.run" '$1' | med)")."
    echo

    # 4
    echo "## 4. $N_CRON messages, one process each (the cron pattern)"
    echo
    echo "\`runstat -n $N_CRON\` runs the client $N_CRON times back to back, each with the 2 KB message. TLS is STARTTLS+AUTH PLAIN. mailcar's cache starts empty."
    echo
    echo "| mode | client | total wall s | messages/s | per message wall ms | total CPU s | TLS resumed |"
    echo "|---|---|---|---|---|---|---|"
    for l in plain-mc plain-ms tls-mc tls-mcoff tls-ms; do
        f=$R/cron-$l.run
        case $l in *-mcoff) name="mailcar (cache off)" ;; *-mc) name="mailcar (cache on)" ;; *) name=msmtp ;; esac
        [ "${l%%-*}" = plain ] && name=${name% (cache on)}
        tot=$(col "$f" '$1' | awk '{ s += $1 } END { printf "%.2f", s }')
        echo "| $([ "${l%%-*}" = plain ] && echo plain || echo STARTTLS+AUTH) | $name | $tot | $(awk -v n="$(count "$f")" -v t="$tot" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }') | $(col "$f" '$1' 1000 | stat3 | fmt 1) | $(col "$f" '$2+$3' | awk '{ s += $1 } END { printf "%.2f", s }') | $([ "${l%%-*}" = plain ] && echo – || echo "$(field "$R/cron-$l.sink" resumed | awk '{ s += $1 } END { print s + 0 }')/$(count "$R/cron-$l.sink")") |"
    done
    echo
    tw() { col "$R/cron-$1.run" '$1' | awk '{ s += $1 } END { print s }'; }
    echo "Ratio of total wall, mailcar/msmtp: plain $(ratio "$(tw plain-mc)" "$(tw plain-ms)"), TLS with cache $(ratio "$(tw tls-mc)" "$(tw tls-ms)"), TLS without cache $(ratio "$(tw tls-mcoff)" "$(tw tls-ms)"). Cache on / cache off for mailcar: $(ratio "$(tw tls-mc)" "$(tw tls-mcoff)")."
    echo

    # 5
    echo "## 5. Queue flush: $N_QUEUE queued messages, mailcar -q against msmtpq"
    echo
    echo "Enqueue: each client is run $N_QUEUE times back to back (\`runstat -n $N_QUEUE\`) with the 2 KB message while its configuration points at a 127.0.0.1 port where nothing listens, so every submission fails with \"connection refused\" and is queued. mailcar: \`queue on\`, \`queue_dir \$W/mcq\` (it writes each message durably: fsync of the files and the directory). msmtpq (\`${MSMTPQ:-msmtpq}\`, from Debian's msmtp package): \`MSMTPQ_Q=\$W/msq MSMTPQ_LOG=\$W/msq.log EMAIL_CONN_TEST=x EMAIL_QUEUE_QUIET=t\`; it writes the message and the msmtp arguments to the queue first, then queues when msmtp fails (EMAIL_CONN_TEST=x skips its default connection test, a ping of debian.org before every send, which fails offline). Each client enqueues, then flushes, in turn, after a \`sync\`. Flush: the port is rewritten to the sink's in the same configuration file, then one queue run, measured with \`runstat\` (wall; CPU and peak RSS from \`wait4\`, which include the processes the run starts, RSS being the largest of them):"
    echo
    echo '```'
    echo "MAILCAR_NOW=+3600 $MAILCAR_GIVEN -C \$W/conf/queue-mc.conf -q    # MAILCAR_NOW: the first retry is due 5 min after the failure"
    echo "${MSMTPQ:-msmtpq} --q-mgmt -r    # what \`msmtp-queue -r\` execs: one msmtp process per queued message"
    echo '```'
    echo
    if [ -n "$MSMTPQ_WHY" ]; then
        echo "**msmtpq was not measured**: $MSMTPQ_WHY. mailcar alone below."
        echo
    fi
    echo "| enqueue | client | queued | total wall s | messages/s | per message wall ms | per message CPU ms | peak RSS KiB |"
    echo "|---|---|---|---|---|---|---|---|"
    for cl in mc ms; do
        f=$R/queue-enq-$cl.run
        [ -f "$f" ] || continue
        tot=$(col "$f" '$1' | awk '{ s += $1 } END { printf "%.2f", s }')
        echo "| $N_QUEUE × 2 KB | $([ $cl = mc ] && echo mailcar || echo msmtpq) | $(cat "$R/queue-enq-$cl.queued" 2>/dev/null || echo n/a) | $tot | $(awk -v n="$(count "$f")" -v t="$tot" 'BEGIN { printf "%.0f", (t > 0 ? n / t : 0) }') | $(col "$f" '$1' 1000 | stat3 | fmt 1) | $(col "$f" '$2+$3' 1000 | stat3 | fmt 1) | $(col "$f" '$4' | stat3 | fmt 0) |"
    done
    echo
    echo "| flush | client | wall s | messages/s | connections | messages received | left in queue | CPU s | peak RSS KiB | sink flights per message |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for cl in mc ms; do
        f=$R/queue-flush-$cl.run
        [ -f "$f" ] || continue
        w=$(col "$f" '$1' | med)
        got=$(field "$R/queue-flush-$cl.sink" msgs | awk '{ s += $1 } END { print s + 0 }')
        echo "| $N_QUEUE × 2 KB | $([ $cl = mc ] && echo "mailcar -q" || echo "msmtpq --q-mgmt -r") | $(awk -v w="$w" 'BEGIN { printf "%.3f", w }') | $(awk -v w="$w" -v n="$got" 'BEGIN { printf "%.0f", (w > 0 ? n / w : 0) }') | $(count "$R/queue-flush-$cl.sink") | $got | $(cat "$R/queue-flush-$cl.left" 2>/dev/null || echo n/a) | $(col "$f" '$2+$3' | awk '{ printf "%.2f", $1 }') | $(col "$f" '$4' | med) | $(field "$R/queue-flush-$cl.sink" flights | awk -v n="$got" '{ s += $1 } END { printf "%.1f", (n > 0 ? s / n : 0) }') |"
    done
    echo
    if [ -f "$R/queue-flush-ms.run" ]; then
        a=$(col "$R/queue-flush-mc.run" '$1' | med) b=$(col "$R/queue-flush-ms.run" '$1' | med)
        echo "Ratio mailcar/msmtpq: enqueue total wall $(ratio "$(col "$R/queue-enq-mc.run" '$1' | awk '{ s += $1 } END { print s }')" "$(col "$R/queue-enq-ms.run" '$1' | awk '{ s += $1 } END { print s }')"); flush wall $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'), so mailcar flushes $(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.0f", (a > 0 ? b / a : 0) }')× as many messages per second as msmtpq (target: ≥ 20×); flush peak RSS $(ratio "$(col "$R/queue-flush-mc.run" '$4' | med)" "$(col "$R/queue-flush-ms.run" '$4' | med)")."
        echo
    fi
    echo "The sink's flights count its writes that follow a read, so per message it is at least 2 over a kept connection (after MAIL+RCPT+DATA, after the body) while a connection per message adds the greeting and the reply to EHLO (on loopback the sink also answers early when a client writes a pipelined group in several writes, as in benchmark 3)."
    echo

    # 6
    echo "## 6. Start-up and instruction counts"
    echo
    echo "\`--version\` wall: $N_VER runs each. Instructions: total Ir from \`valgrind --tool=callgrind\` (dynamic loading included), one run each; the TLS row is STARTTLS+AUTH PLAIN with mailcar's cache off, so both make a full handshake."
    echo
    echo "| | mailcar | msmtp | mailcar/msmtp |"
    echo "|---|---|---|---|"
    echo "| \`--version\` wall ms | $(col "$R/version-mc.run" '$1' 1000 | stat3 | fmt 2) | $(col "$R/version-ms.run" '$1' 1000 | stat3 | fmt 2) | $(ratio "$(col "$R/version-mc.run" '$1' | med)" "$(col "$R/version-ms.run" '$1' | med)") |"
    for k in version plain tls; do
        a=$(cat "$R/ir-$k-mc.ir" 2>/dev/null || echo n/a) b=$(cat "$R/ir-$k-ms.ir" 2>/dev/null || echo n/a)
        [ -n "$a" ] || a=n/a
        [ -n "$b" ] || b=n/a
        case $k in version) t="\`--version\`" ;; plain) t="2 KB plain submission" ;; tls) t="2 KB STARTTLS+AUTH submission" ;; esac
        echo "| instructions, $t | $(echo "$a" | awk '$1 != "n/a" { printf "%.2f M", $1 / 1e6; next } 1') | $(echo "$b" | awk '$1 != "n/a" { printf "%.2f M", $1 / 1e6; next } 1') | $(ratio "$a" "$b") |"
    done
    echo
    echo "Where the STARTTLS+AUTH instructions go (inclusive counts of library entry points, from the same callgrind runs; – where the client has no such step):"
    echo
    echo "| step | mailcar (OpenSSL) | msmtp (GnuTLS) |"
    echo "|---|---|---|"
    # incl LABEL FUNCTION: inclusive Ir of FUNCTION in LABEL's callgrind profile, in M.
    incl() {
        [ "$2" != - ] && [ -s "$R/$1.cg" ] || { echo –; return; }
        callgrind_annotate --inclusive=yes --threshold=100 "$R/$1.cg" 2>/dev/null | awk -v f="$2" '
            { for (i = 2; i <= NF; i++) if ($i ~ ("[:]" f "$")) { gsub(",", "", $1); printf "%.2f M", $1 / 1e6; found = 1; exit } }
            END { if (!found) print "n/a" }'
    }
    while IFS='|' read -r what fa fb; do
        echo "| $what | $(incl ir-tls-mc "$fa") | $(incl ir-tls-ms "$fb") |"
    done <<'STEPS'
dynamic loading and relocation at start-up|_dl_start|_dl_start
opening OpenSSL on first use (dlopen; mailcar only)|_dl_open|-
TLS context (SSL_CTX_new)|SSL_CTX_new_ex|-
loading the trust file|SSL_CTX_load_verify_locations|gnutls_certificate_set_x509_trust_file
TLS handshake|SSL_do_handshake|gnutls_handshake
certificate verification after the handshake|-|gnutls_certificate_verify_peers3
STEPS
    echo

    # 7
    echo "## 7. Simulated WAN: round trips at 50 ms RTT"
    echo
    echo "Is netem available? ${NETEM%.}."
    echo
    if [ "$NETEM" != yes ]; then
        echo "So the two-namespace veth pair with \`tc qdisc ... netem delay 25ms\` on both ends could not be built here. Instead \`bench/delay.c\`, a user-space relay on 127.0.0.1, holds every chunk of data $DELAY_MS ms in each direction (RTT 50 ms) between the client and the sink. Differences from netem: the TCP handshake to the relay is not delayed (the count below starts at the greeting, as the minimums do), and TCP's own ACKs (so a Nagle/delayed-ACK stall) travel on undelayed loopback between client and relay."
    else
        echo "netem would have worked here, but this script measures with the user-space relay \`bench/delay.c\` all the same ($DELAY_MS ms each way, RTT 50 ms), so the numbers compare across machines."
    fi
    echo
    echo "Round trips are counted by the relay as the times the client had to wait: a server flight that reached the client after the client last sent something and before it hung up. With the greeting only a one-way trip, wall ≈ (round trips − ½) × 50 ms plus local work. \`sink flights\` is the sink's own count (server writes that follow a read) as a cross-check. $N_WAN runs each."
    echo
    echo "| mode | theoretical minimum | client | round trips | sink flights | wall ms | mailcar/msmtp wall |"
    echo "|---|---|---|---|---|---|---|"
    for m in plain starttls implicit; do
        case $m in
        plain) t="plain" min=4 ;;
        starttls) t="STARTTLS+AUTH PLAIN" min=8 ;;
        implicit) t="implicit TLS+AUTH PLAIN" min=6 ;;
        esac
        for cl in mc ms; do
            echo "| $t | $min | $([ $cl = mc ] && echo mailcar || echo msmtp) | $(field "$R/wan-$m-$cl.wan" waits | stat3 | fmt 0) | $(field "$R/wan-$m-$cl.sink" flights | stat3 | fmt 0) | $(col "$R/wan-$m-$cl.run" '$1' 1000 | stat3 | fmt 0) | $([ $cl = mc ] && ratio "$(col "$R/wan-$m-mc.run" '$1' | med)" "$(col "$R/wan-$m-ms.run" '$1' | med)") |"
        done
    done
    echo
    echo "Minimums (FIELD-NOTES): plain = greeting, EHLO, MAIL+RCPT+DATA pipelined, body+QUIT pipelined = 4. STARTTLS+AUTH adds STARTTLS, the TLS 1.3 handshake, the second EHLO and AUTH PLAIN with an initial response = 8. Implicit TLS saves the first EHLO and STARTTLS = 6."
    echo

    echo "## Problems seen in this run"
    echo
    if [ -s "$W/failures" ]; then
        sed "s|$W/mailcar|$MAILCAR_GIVEN|g; s|$W|\$W|g; s/^/- /" "$W/failures"
    else
        echo "None: every client run exited 0 and the sink received one message per run."
    fi
} > "$RES"

# ---- the plot -----------------------------------------------------------------------
say "plotting"
PNG=$W/throughput.png
if ! awk '{ for (i = 2; i <= NF; i++) if ($i == "n/a") exit 1 }' "$W/plot.dat"; then
    say "some throughput numbers are missing; the plot leaves them out"
fi
term="pngcairo size 1100,450 font 'sans,10'"
gnuplot -e "set terminal $term" -e "quit" 2>/dev/null || term="png size 1100,450"
gnuplot <<EOF
set terminal $term
set output '$PNG'
set datafile missing 'n/a'
set multiplot layout 1,2 title 'mailcar vs msmtp: one message over loopback ($(date -u +%Y-%m-%d), $(nproc) cores)'
set logscale x
set xlabel 'message size (MB)'
set xtics ('1' 1, '10' 10, '100' 100)
set grid
set key top left
set yrange [0:*]
set ylabel 'throughput (MB/s)'
set title 'throughput (whole process)'
plot '$W/plot.dat' u 1:2 w lp lw 2 pt 7 lc rgb '#1f77b4' t 'mailcar plain', \
     '' u 1:6 w lp lw 2 pt 5 lc rgb '#1f77b4' dt 2 t 'mailcar TLS', \
     '' u 1:4 w lp lw 2 pt 7 lc rgb '#d62728' t 'msmtp plain', \
     '' u 1:8 w lp lw 2 pt 5 lc rgb '#d62728' dt 2 t 'msmtp TLS'
set ylabel 'peak RSS (MiB)'
set key bottom right
set title 'peak resident memory'
plot '$W/plot.dat' u 1:3 w lp lw 2 pt 7 lc rgb '#1f77b4' t 'mailcar plain', \
     '' u 1:7 w lp lw 2 pt 5 lc rgb '#1f77b4' dt 2 t 'mailcar TLS', \
     '' u 1:5 w lp lw 2 pt 7 lc rgb '#d62728' t 'msmtp plain', \
     '' u 1:9 w lp lw 2 pt 5 lc rgb '#d62728' dt 2 t 'msmtp TLS'
unset multiplot
EOF

mkdir -p "$OUT"
cp "$RES" "$OUT/RESULTS.md"
cp "$PNG" "$OUT/throughput.png"
say "done: $OUT/RESULTS.md, $OUT/throughput.png"
if [ -s "$W/failures" ]; then
    say "problems were seen (listed in RESULTS.md):"
    cat "$W/failures" >&2
fi
