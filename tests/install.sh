#!/usr/bin/env bash
# `make install` with --enable-sendmail-links into a DESTDIR: the binary,
# the sendmail/mailq/newaliases/send-mail links and /usr/lib/sendmail, the
# man pages and the three completions land where they belong, the links
# dispatch on argv[0], and `make uninstall` removes it all again.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/dest
mkdir -p "$work/build"
cd "$work/build"
"$top/configure" --prefix=/usr --sysconfdir=/etc --enable-sendmail-links >/dev/null
make -j2 >/dev/null
make install DESTDIR="$dest" >/dev/null
fail=0
check() { if [ -e "$dest$1" ] || [ -L "$dest$1" ]; then echo "ok $1"; else echo "MISSING $1"; fail=1; fi; }
for f in /usr/bin/mailcar /usr/sbin/sendmail /usr/sbin/mailq /usr/sbin/newaliases \
         /usr/sbin/send-mail /usr/lib/sendmail /usr/share/man/man1/mailcar.1 \
         /usr/share/man/man5/mailcar.conf.5 /usr/share/bash-completion/completions/mailcar \
         /usr/share/zsh/vendor-completions/_mailcar \
         /usr/share/fish/vendor_completions.d/mailcar.fish; do
    check "$f"
done
[ "$(readlink "$dest/usr/sbin/sendmail")" = /usr/bin/mailcar ] || { echo "sendmail link wrong"; fail=1; }
# The links dispatch on argv[0]: mailq lists the queue, newaliases does nothing.
ln -s "$dest/usr/bin/mailcar" "$work/mailq"
ln -s "$dest/usr/bin/mailcar" "$work/newaliases"
HOME=$work "$work/mailq" >/dev/null || { echo "mailq failed"; fail=1; }
HOME=$work "$work/newaliases" || { echo "newaliases failed"; fail=1; }
make uninstall DESTDIR="$dest" >/dev/null
left=$(find "$dest" -type f -o -type l)
[ -z "$left" ] || { echo "left after uninstall: $left"; fail=1; }
exit $fail
