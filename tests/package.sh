#!/usr/bin/env bash
# Build the Debian packages and check them, without touching the source tree:
#   1. copy the tree (tracked and new files, no build products) to a scratch
#      directory and run `dpkg-buildpackage -us -uc -b` there;
#   2. lintian on the result: no error or warning (informational tags are
#      listed; the overrides in debian/*.lintian-overrides say why);
#   3. the contents of both packages, and their relations;
#   4. the binary from `dpkg -x` sends a message over STARTTLS to a local
#      fault-free server (tests/integration/faultserver.py);
#   5. only with MAILCAR_PACKAGE_INSTALL=1 (a disposable machine, as root):
#      `dpkg -i` both packages, send through /usr/sbin/sendmail, run mailq,
#      then remove them again (MAILCAR_PACKAGE_KEEP=1 keeps them).
# Prints TAP; exits non-zero when a check failed.  Needs dpkg-dev,
# debhelper, lintian and the build dependencies (tests/setup-debian.sh).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
version=$(sed -n '1s/^mailcar (\([^)]*\)).*/\1/p' "$top/debian/changelog")
arch=$(dpkg --print-architecture)
n=0 failed=0

ok() {   # ok DESCRIPTION COMMAND...
    local what=$1; shift
    n=$((n + 1))
    if "$@"; then
        echo "ok $n - $what"
    else
        echo "not ok $n - $what"
        failed=$((failed + 1))
    fi
}
bail() { echo "Bail out! $*"; exit 1; }

for tool in dpkg-buildpackage dh lintian; do
    command -v "$tool" >/dev/null 2>&1 ||
        bail "$tool is missing (apt-get install dpkg-dev debhelper lintian, or tests/setup-debian.sh)"
done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/mailcar-package.XXXXXX") || bail "mktemp"
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. build in a copy ---------------------------------------------------
src=$scratch/mailcar-$version
mkdir -p "$src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$top" && git ls-files -z --cached --others --exclude-standard |
        grep -zv -e '^_build/' -e '~$' | xargs -0 cp --parents -t "$src" 2>/dev/null) ||
        bail "copying the tree"
else
    tar -C "$top" --exclude=./_build --exclude='*.o' --exclude='*.a' -cf - . | tar -C "$src" -xf - ||
        bail "copying the tree"
    (cd "$src" && { [ ! -f Makefile ] || make -s distclean >/dev/null 2>&1; })
fi
# Build products stay in the scratch tree: the build starts from sources only.
rm -rf "$src/debian/.debhelper" "$src/debian/tmp" "$src/debian/mailcar" "$src/debian/mailcar-mta"

echo "# building in $src"
ok "dpkg-buildpackage -us -uc -b" \
    sh -c "cd '$src' && dpkg-buildpackage -us -uc -b >'$scratch/build.log' 2>&1" ||
    { tail -n 40 "$scratch/build.log" | sed 's/^/# /'; }
deb=$scratch/mailcar_${version}_$arch.deb
mta=$scratch/mailcar-mta_${version}_all.deb
[ -f "$deb" ] && [ -f "$mta" ] || bail "no packages were built"
ok "the build ran the unit tests" grep -q '^# FAIL: *0' "$scratch/build.log"

# --- 2. lintian -------------------------------------------------------------
lintian --allow-root --pedantic -I "$scratch/mailcar_${version}_$arch.changes" \
    >"$scratch/lintian.log" 2>&1
sed 's/^/# lintian: /' "$scratch/lintian.log"
ok "lintian: no errors or warnings" \
    sh -c "! grep -E '^(E|W): ' '$scratch/lintian.log'"

# --- 3. contents ------------------------------------------------------------
root=$scratch/root
dpkg -x "$deb" "$root"
has() { [ -e "$root/$1" ]; }
ok "mailcar: the binary" test -x "$root/usr/bin/mailcar"
for f in usr/share/man/man1/mailcar.1.gz usr/share/man/man5/mailcar.conf.5.gz \
         usr/share/bash-completion/completions/mailcar usr/share/zsh/vendor-completions/_mailcar \
         usr/share/fish/vendor_completions.d/mailcar.fish usr/share/doc/mailcar/copyright; do
    ok "mailcar: $f" has "$f"
done
ok "mailcar: no sendmail links" sh -c "! dpkg -c '$deb' | grep -E 'sbin/sendmail|lib/sendmail'"
ok "mailcar: --version from the package" sh -c "'$root/usr/bin/mailcar' --version | grep -q '^mailcar $version'"
ok "mailcar: system configuration is /etc/mailcar.conf" \
    sh -c "'$root/usr/bin/mailcar' --version | grep -q 'system configuration: /etc/mailcar.conf'"

mtalist=$(dpkg -c "$mta")
link_to() {   # link_to PATH TARGET: the package has PATH as a link to TARGET
    printf '%s\n' "$mtalist" | grep -q -- "\\./$1 -> $2\$"
}
ok "mailcar-mta: /usr/sbin/sendmail" link_to usr/sbin/sendmail ../bin/mailcar
ok "mailcar-mta: /usr/lib/sendmail" link_to usr/lib/sendmail ../bin/mailcar
ok "mailcar-mta: /usr/sbin/send-mail" link_to usr/sbin/send-mail ../bin/mailcar
ok "mailcar-mta: /usr/bin/mailq" link_to usr/bin/mailq mailcar
ok "mailcar-mta: /usr/bin/newaliases" link_to usr/bin/newaliases mailcar
ok "mailcar-mta: sendmail(8)" link_to usr/share/man/man8/sendmail.8.gz ../man1/mailcar.1.gz
field() { dpkg-deb -f "$mta" "$1"; }
ok "mailcar-mta: Provides mail-transport-agent" sh -c "[ '$(field Provides)' = mail-transport-agent ]"
ok "mailcar-mta: Conflicts and Replaces mail-transport-agent" \
    sh -c "[ '$(field Conflicts)' = mail-transport-agent ] && [ '$(field Replaces)' = mail-transport-agent ]"
ok "mailcar-mta: Depends on this mailcar" \
    sh -c "dpkg-deb -f '$mta' Depends | grep -q 'mailcar (>= $version)'"

# --- 4. a message through the packaged binary ------------------------------
start_server() {   # a fault-free responder with STARTTLS, for one connection
    printf 'caps: PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES, STARTTLS\n' >"$scratch/responder"
    rm -f "$scratch/server.out"
    PYTHONDONTWRITEBYTECODE=1 "$PYTHON" "$top/tests/integration/faultserver.py" \
        --responder "$scratch/responder" --tls-dir "$scratch/tls" --connections 1 \
        >"$scratch/server.out" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        port=$(sed -n 's/^faultserver listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$scratch/server.out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$scratch/server.out" | sed 's/^/# /'; return 1; }
    cat >"$scratch/mailcar.conf" <<EOF
account default
host localhost
port $port
tls_trust_file $scratch/tls/ca.pem
auth off
from package-test@example.test
timeout 10
EOF
}
wait_server() {   # the server exits after its one connection; 0 when clean
    local rc
    wait "$server_pid"; rc=$?
    server_pid=
    [ "$rc" -eq 0 ] || sed 's/^/# server: /' "$scratch/server.out"
    return "$rc"
}
send_with() {   # send_with PROGRAM: one message through the fault server
    printf 'Subject: package test %s\n\nsent by %s\n' "$1" "$1" |
        "$@" -C "$scratch/mailcar.conf" -v rcpt@example.test >"$scratch/send.out" 2>&1 ||
        { sed 's/^/# client: /' "$scratch/send.out"; return 1; }
}

if start_server; then
    ok "packaged mailcar sends over STARTTLS" send_with "$root/usr/bin/mailcar"
    ok "the server saw no fault" wait_server
    ok "the server received the message" grep -q 'package test' "$scratch/server.out"
else
    ok "fault server started" false
fi

# --- 5. install (disposable machines only) --------------------------------
if [ "${MAILCAR_PACKAGE_INSTALL:-}" = 1 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        ok "MAILCAR_PACKAGE_INSTALL=1 needs root" false
    else
        ok "dpkg -i mailcar mailcar-mta" \
            sh -c "dpkg -i '$deb' '$mta' >'$scratch/dpkg.log' 2>&1 || { sed 's/^/# /' '$scratch/dpkg.log'; false; }"
        ok "/usr/sbin/sendmail is mailcar" sh -c "readlink -f /usr/sbin/sendmail | grep -q '/usr/bin/mailcar$'"
        if start_server; then
            ok "/usr/sbin/sendmail sends" send_with /usr/sbin/sendmail
            ok "the server saw no fault" wait_server
            ok "the server received the message" grep -q 'package test /usr/sbin/sendmail' "$scratch/server.out"
        fi
        ok "mailq answers" sh -c "/usr/bin/mailq | grep -qi queue"
        ok "/usr/lib/sendmail -bi" /usr/lib/sendmail -bi
        ok "man sendmail finds mailcar(1)" test -e /usr/share/man/man8/sendmail.8.gz
        if [ "${MAILCAR_PACKAGE_KEEP:-}" != 1 ]; then
            ok "dpkg --purge mailcar-mta mailcar" \
                sh -c "dpkg --purge mailcar-mta mailcar >'$scratch/dpkg.log' 2>&1 || { sed 's/^/# /' '$scratch/dpkg.log'; false; }"
            ok "no sendmail left behind" test ! -e /usr/sbin/sendmail
        fi
    fi
else
    echo "# dpkg -i skipped: set MAILCAR_PACKAGE_INSTALL=1 on a disposable machine (as root)"
fi

echo "1..$n"
[ "$failed" -eq 0 ]
