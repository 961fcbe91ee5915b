#!/bin/sh
# make demo: send one message with mailcar (STARTTLS + AUTH, CA verified)
# through a private Postfix + Dovecot on loopback and show what arrived.
#   sh tests/servers/demo.sh /path/to/mailcar        (as root; see setup-debian.sh)
set -eu

MAILCAR=${1:?usage: demo.sh MAILCAR_BINARY}
case $MAILCAR in /*) ;; *) MAILCAR=$(pwd)/$MAILCAR ;; esac
[ -x "$MAILCAR" ] || { echo "demo.sh: $MAILCAR is not an executable" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)

dir=$(mktemp -d /tmp/mailcar-demo.XXXXXX)
cleanup() {
    sh "$here/pf.sh" stop "$dir" || true
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

sh "$here/pf.sh" start "$dir"
# shellcheck disable=SC1091
. "$dir/ports.env"

conf=$dir/mailcar.conf
(umask 077 && cat > "$conf" <<EOF
account default
host $MAILCAR_PF_HOST
port $MAILCAR_PF_SUBMISSION
tls on
tls_starttls on
tls_trust_file $MAILCAR_PF_CA
auth on
user $MAILCAR_PF_USER
password $MAILCAR_PF_PASSWORD
from $MAILCAR_PF_USER
EOF
)
chmod 600 "$conf"

echo
echo "=== $MAILCAR -v -C $conf bob@example.test"
status=0
printf '%s\n' \
    "From: Alice <$MAILCAR_PF_USER>" \
    "To: Bob <bob@example.test>" \
    "Subject: mailcar demo" \
    "Date: $(LC_ALL=C date -R)" \
    "Message-ID: <demo.$$.$(date +%s)@example.test>" \
    "" \
    "Hello Bob," \
    "" \
    "this message went through STARTTLS and AUTH to a private Postfix." |
    "$MAILCAR" -v -C "$conf" bob@example.test || status=$?
echo "=== exit status $status"
[ "$status" -eq 0 ] || exit "$status"

# wait up to 10 s for the delivery
i=0
while :; do
    eml=$(find "$MAILCAR_PF_MAILDIR" -name '[!.]*.eml' | head -n 1)
    [ -n "$eml" ] && break
    i=$((i + 1))
    if [ "$i" -gt 100 ]; then
        echo "demo.sh: nothing delivered after 10 s; Postfix log:" >&2
        tail -n 20 "$MAILCAR_PF_LOG" >&2
        exit 1
    fi
    sleep 0.1
done
echo
echo "=== envelope: $(cat "${eml%.eml}.json")"
echo "=== delivered message ($eml):"
cat "$eml"
