#!/usr/bin/python3
"""A private OpenSMTPD (Debian's opensmtpd, unpacked with dpkg -x by
tests/setup-debian.sh, never installed as the system MTA) on loopback, all
under DIR.

    opensmtpd.py start DIR     write config, CA, credentials and start smtpd
    opensmtpd.py stop DIR      stop it
    opensmtpd.py status DIR    exit 0 when it is up

smtpd has its spool (/var/spool/smtpd), control socket (/var/run) and chroot
(/var/lib/opensmtpd/empty) and helpers (/usr/libexec/opensmtpd) compiled in, so it runs in a private mount
namespace (`unshare -m`) where those paths are DIR's own directories, laid
over the real ones with read-only overlays: nothing outside DIR is written.

After start, DIR/info.json describes the instance:
  submission   STARTTLS required, AUTH required (PLAIN, LOGIN)
  submissions  implicit TLS (smtps), AUTH required
  plain        no TLS, no AUTH (the other two listeners require AUTH)
Debian 12's 6.8.0p2 fails every TLS handshake under OpenSSL 3 ("EVP lib" in
the log, OpenSMTPD/OpenSMTPD#1171 and #1239), whatever the key type; the
plain port still works.
  ca, user/password, reject_rcpt (refused at RCPT), size_limit
Each accepted message is delivered once per recipient by an mda command
into DIR/mail/ (see sink.py).

Needs root.
"""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sink  # noqa: E402

CACHE = os.environ.get("MAILCAR_TEST_CACHE", "/var/cache/mailcar-test")
SMTPD = os.path.join(CACHE, "opensmtpd/usr/sbin/smtpd")
SETUP_HINT = "run `sudo sh tests/setup-debian.sh`"
USER = "alice@example.test"
PASSWORD = "smtpd-secret-5"
REJECT_RCPT = "reject@example.test"
SIZE_LIMIT = 1024 * 1024

CONFIG = r'''# private OpenSMTPD for mailcar's interop tests
pki localhost cert "@D@/ca/server.crt"
pki localhost key "@D@/ca/server.key"
table creds file:@D@/creds
table vusers file:@D@/vusers
smtp max-message-size @SIZE@
listen on 127.0.0.1 port @SUBMISSION@ tls-require pki localhost auth <creds> hostname smtpd.example.test
listen on 127.0.0.1 port @SUBMISSIONS@ smtps pki localhost auth <creds> hostname smtpd.example.test
listen on 127.0.0.1 port @PLAIN@ hostname smtpd.example.test
action "sink" mda "/usr/bin/python3 @D@/deliver.py @D@/mail smtpd %{sender} %{rcpt}" virtual <vusers>
match from any for any rcpt-to regex "^reject@" reject
match from any for any action "sink"
'''

NAMESPACE = r'''set -e
D=$1
mount --make-rprivate /
mkdir -p "$D/ns/spool/smtpd" "$D/ns/lib/opensmtpd/empty" "$D/ns/run"
mount -t overlay overlay -o "lowerdir=$D/ns/spool:/var/spool" /var/spool
mount --bind "$D/spool" /var/spool/smtpd
mount -t overlay overlay -o "lowerdir=$D/ns/lib:/var/lib" /var/lib
mount -t tmpfs tmpfs /run
# the delivery helpers (mail.mda ...) from the unpacked package
mount -t overlay overlay -o "lowerdir=$PKG/usr/libexec:/usr/libexec" /usr/libexec
exec "$SMTPD" -d -f "$D/smtpd.conf"
'''


def missing_prerequisites():
    if not os.access(SMTPD, os.X_OK):
        return "private opensmtpd not found at %s; %s" % (SMTPD, SETUP_HINT)
    if os.geteuid() != 0:
        return "the private OpenSMTPD needs root"
    if not shutil.which("unshare"):
        return "unshare (util-linux) not installed"
    return None


load = sink.load


def is_running(d):
    return sink.alive(sink.read_pid(os.path.join(d, "daemon.pid")))


def start(d):
    why = missing_prerequisites()
    if why:
        raise sink.ServerError(why)
    d = os.path.abspath(d)
    for sub in ("spool", "log", "mail", "ca"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    os.chmod(d, 0o755)
    os.chmod(os.path.join(d, "spool"), 0o711)
    os.chmod(os.path.join(d, "mail"), 0o777)
    ca = sink.make_ca(os.path.join(d, "ca"), server_key="rsa")
    os.chmod(os.path.join(d, "ca"), 0o755)
    os.chmod(ca["server.key"], 0o600)
    sink.install_deliver(d)
    hashed = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=PASSWORD.encode(),
                            stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    sink.write(os.path.join(d, "creds"), "%s %s\n" % (USER, hashed), 0o600)
    # every recipient of example.test is delivered by the mda running as nobody
    sink.write(os.path.join(d, "vusers"), "@example.test nobody\n", 0o644)
    submission, submissions, plain = sink.free_ports(3)
    text = CONFIG
    for k, v in (("D", d), ("SUBMISSIONS", submissions), ("SUBMISSION", submission),
                 ("PLAIN", plain),
                 ("SIZE", SIZE_LIMIT)):
        text = text.replace("@%s@" % k, str(v))
    conf = sink.write(os.path.join(d, "smtpd.conf"), text, 0o644)
    chk = subprocess.run([SMTPD, "-n", "-f", conf], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if chk.returncode:
        raise sink.ServerError("smtpd -n failed:\n" + chk.stdout.decode(errors="replace"))
    ver = subprocess.run([SMTPD, "-h"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    info = {"dir": d, "host": sink.HOST, "ports": {"submission": submission,
                                                 "submissions": submissions, "plain": plain},
            "ca": ca["ca.crt"], "user": USER, "password": PASSWORD, "reject_rcpt": REJECT_RCPT,
            "size_limit": SIZE_LIMIT, "maildir": os.path.join(d, "mail"),
            "log": os.path.join(d, "log", "smtpd.log"),
            "version": ver.stdout.decode(errors="replace").strip().split("\n")[0].replace("version: ", "")}
    with open(os.path.join(d, "info.json"), "w") as f:
        json.dump(info, f, indent=1)
    out = open(info["log"], "wb")
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "SMTPD": SMTPD,
           "PKG": os.path.join(CACHE, "opensmtpd")}
    p = subprocess.Popen(["unshare", "-m", "sh", "-c", NAMESPACE, "smtpd-ns", d],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True, cwd=d, env=env)
    out.close()
    with open(os.path.join(d, "daemon.pid"), "w") as f:
        f.write("%d\n" % p.pid)
    try:
        for port in (submission, submissions, plain):
            sink.wait_port(port, proc=p, what="smtpd")
    except sink.ServerError as e:
        stop(d)
        with open(info["log"], errors="replace") as f:
            raise sink.ServerError("%s\n%s" % (e, f.read()[-3000:]))
    return info


def stop(d, quiet=True):
    pid = sink.read_pid(os.path.join(d, "daemon.pid"))
    if pid and sink.alive(pid):
        try:
            os.killpg(pid, 15)
        except (ProcessLookupError, PermissionError):
            pass
        sink.kill_pid(pid)
    try:
        os.unlink(os.path.join(d, "daemon.pid"))
    except FileNotFoundError:
        pass


def main(argv):
    return sink.cli(argv, "opensmtpd.py", __doc__, start, stop, is_running)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
