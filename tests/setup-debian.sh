#!/bin/sh
# Install what mailcar's build and tests need on Debian 12 (bookworm).
# Idempotent; run as root:   sudo sh tests/setup-debian.sh
#
# Postfix is NOT installed as the system MTA: its .deb is unpacked with
# `dpkg -x` into a private cache ($MAILCAR_TEST_CACHE, default
# /var/cache/mailcar-test) and run from there by tests/servers/pf.sh.
# Dovecot's binaries have /usr/bin/doveconf compiled in, so dovecot-core is
# installed as a package, but with a policy-rc.d that stops the maintainer
# scripts from starting it, and its system service is disabled afterwards.
set -eu

export DEBIAN_FRONTEND=noninteractive
CACHE=${MAILCAR_TEST_CACHE:-/var/cache/mailcar-test}

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-debian.sh: must run as root" >&2
    exit 1
fi

say() { printf 'setup-debian.sh: %s\n' "$*"; }

BUILD_PKGS="build-essential autoconf automake pkg-config libssl-dev libcmocka-dev
clang clang-tidy cppcheck python3 python3-pytest mandoc openssl ca-certificates valgrind msmtp
bash-completion zsh fish dpkg-dev debhelper fakeroot lintian unbound ldnsutils"
# Servers: dovecot-core (auth only) plus what pf.sh uses.
SERVER_PKGS="dovecot-core dovecot-lmtpd passwd adduser"
# --- interop callers (issue 9): real programs that call sendmail; none of
# these depends on an MTA (checked with apt-cache depends).  Services they
# ship (cron) are kept from starting by the policy-rc.d below and disabled.
CALLER_PKGS="cron git-email libmailtools-perl mutt s-nail php-cli libphp-phpmailer sudo util-linux"

# --- apt-get update only when the lists do not know the packages -----------
need_update=no
for p in postfix dovecot-core libcmocka-dev; do
    if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        need_update=yes
    fi
done
if [ "$need_update" = yes ] || [ -n "${MAILCAR_APT_UPDATE:-}" ]; then
    say "apt-get update"
    # a dead third-party source must not stop us; the check below decides
    apt-get update -q || true
    apt-cache policy postfix | grep -q 'Candidate: [0-9]' || {
        echo "setup-debian.sh: apt cannot find postfix even after apt-get update" >&2
        exit 1
    }
fi

# --- Postfix's shared-library dependencies, without Postfix itself ---------
pf_deps=$(apt-cache depends postfix | awk '$1 == "Depends:" && $2 ~ /^lib/ { print $2 }' | sort -u)

# --- dovecot-core, never started by its maintainer scripts ----------------
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
dovecot_new=no
installed dovecot-core || dovecot_new=yes

POLICY=/usr/sbin/policy-rc.d
policy_saved=""
restore_policy() {
    if [ -n "$policy_saved" ]; then
        mv -f "$policy_saved" "$POLICY"
    else
        rm -f "$POLICY"
    fi
}
if [ -e "$POLICY" ]; then
    policy_saved=$POLICY.mailcar-saved
    cp -p "$POLICY" "$policy_saved"
fi
trap restore_policy EXIT
trap 'exit 1' INT TERM HUP
printf '#!/bin/sh\n# mailcar setup-debian.sh: start no services\nexit 101\n' > "$POLICY"
chmod 755 "$POLICY"

say "installing packages"
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $BUILD_PKGS $SERVER_PKGS $CALLER_PKGS $pf_deps

restore_policy
policy_saved=""
trap - EXIT

if [ "$dovecot_new" = yes ]; then
    # We only want the binaries: keep the system dovecot from starting at boot.
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
    elif command -v deb-systemd-helper >/dev/null 2>&1; then
        DPKG_MAINTSCRIPT_PACKAGE=dovecot-core deb-systemd-helper disable \
            dovecot.service dovecot.socket >/dev/null 2>&1 || true
    fi
    update-rc.d dovecot disable >/dev/null 2>&1 || true
fi
# interop: the tests run cron in a private mount namespace; no system cron
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now cron.service >/dev/null 2>&1 || true
fi
update-rc.d cron disable >/dev/null 2>&1 || true
# DNS tests start their own unbound on 127.0.0.1:53; the system one must not hold it
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now unbound.service unbound-resolvconf.service >/dev/null 2>&1 || true
fi
update-rc.d unbound disable >/dev/null 2>&1 || true

# --- users the private instances run as -------------------------------------
getent group postdrop >/dev/null || groupadd --system postdrop
getent group postfix >/dev/null || groupadd --system postfix
getent passwd postfix >/dev/null ||
    useradd --system --gid postfix --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin --comment "Postfix (mailcar tests)" postfix
getent passwd dovecot >/dev/null ||
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin dovecot
getent passwd dovenull >/dev/null ||
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin dovenull

# --- the private Postfix ------------------------------------------------------
pf_version=$(apt-cache policy postfix | awk '$1 == "Candidate:" { print $2 }')
root=$CACHE/postfix-$pf_version
if [ -x "$root/usr/sbin/postfix" ] && [ -f "$root/.complete" ]; then
    say "private postfix $pf_version already in $root"
else
    say "unpacking postfix $pf_version into $root"
    mkdir -p "$CACHE"
    tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
    chmod 755 "$tmp"
    (cd "$tmp" && apt-get download -q "postfix=$pf_version") 2>&1 |
        grep -v '^W: Download is performed unsandboxed' || true
    deb=$(ls "$tmp"/postfix_*.deb)
    rm -rf "$root"
    mkdir -p "$root"
    dpkg -x "$deb" "$root"
    # Debian's postinst generates dynamicmaps.cf; builtin map types are enough.
    : > "$root/etc/postfix/dynamicmaps.cf"
    rm -rf "$tmp"
    touch "$root/.complete"
fi
chmod 755 "$CACHE"
# What Debian's postinst would do; `postfix check` wants it.
for f in postdrop postqueue; do
    chgrp postdrop "$root/usr/sbin/$f"
    chmod 2555 "$root/usr/sbin/$f"
done
ln -sfn "postfix-$pf_version" "$CACHE/postfix"

# Check every private binary finds its libraries.
missing=$(for f in "$CACHE"/postfix/usr/sbin/* "$CACHE"/postfix/usr/lib/postfix/sbin/*; do
    LD_LIBRARY_PATH="$CACHE/postfix/usr/lib/postfix" ldd "$f" 2>/dev/null | grep 'not found'
done | sort -u)
if [ -n "$missing" ]; then
    echo "setup-debian.sh: the private postfix misses libraries:" >&2
    echo "$missing" >&2
    exit 1
fi


# === interop (issue 9): private Exim and OpenSMTPD, callers that need an MTA ===
# exim4-daemon-light and opensmtpd conflict with every MTA, and bsd-mailx,
# logwatch and fail2ban pull one in (or start a service): none is installed
# as a package.  Each .deb is unpacked with `dpkg -x` into $CACHE/<name>-<ver>
# ($CACHE/<name> links to it); only their shared libraries are installed.
unpack() { # PKG: unpack the candidate version of PKG into $CACHE/PKG
    pkg=$1
    ver=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
    case $ver in ''|'(none)') say "interop: no candidate for $pkg, skipped"; return 0 ;; esac
    dir=$CACHE/$pkg-$(printf '%s' "$ver" | tr ':' '_')
    if [ ! -f "$dir/.complete" ]; then
        say "interop: unpacking $pkg $ver into $dir"
        mkdir -p "$CACHE"
        tmp=$(mktemp -d "$CACHE/.dl.XXXXXX")
        chmod 755 "$tmp"
        (cd "$tmp" && apt-get download -q "$pkg=$ver") 2>&1 |
            grep -v '^W: Download is performed unsandboxed' || true
        rm -rf "$dir"
        mkdir -p "$dir"
        dpkg -x "$tmp"/*.deb "$dir"
        rm -rf "$tmp"
        touch "$dir/.complete"
    fi
    ln -sfn "$(basename "$dir")" "$CACHE/$pkg"
}
libdeps() { # PKG...: the lib* packages they depend on
    apt-cache depends "$@" | awk '$1 == "Depends:" && $2 ~ /^lib/ { print $2 }' | sort -u
}
# shellcheck disable=SC2046
apt-get install -y -q --no-install-recommends $(libdeps exim4-daemon-light exim4-base opensmtpd bsd-mailx)
for p in exim4-daemon-light exim4-base opensmtpd bsd-mailx logwatch fail2ban; do
    unpack "$p"
done
# the users the private servers look up by name at startup
getent passwd Debian-exim >/dev/null ||
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin --comment "Exim (mailcar tests)" Debian-exim
for u in opensmtpd opensmtpq; do
    getent passwd $u >/dev/null ||
        useradd --system --user-group --home-dir /nonexistent --no-create-home \
            --shell /usr/sbin/nologin --comment "OpenSMTPD (mailcar tests)" $u
done
# === end of interop block ===

say "done: private postfix in $CACHE/postfix, dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1)"
