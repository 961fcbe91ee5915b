#!/usr/bin/python3
"""A private Postfix + Dovecot (SASL only) instance on loopback, all under DIR.

    pf.py start DIR     create config, CA and data under DIR and start
    pf.py stop DIR      stop everything started for DIR (no strays)
    pf.py status DIR    exit 0 when the instance in DIR is up
    pf.py check DIR     `postfix check` on DIR's configuration, exit 0 when clean
                        (MAILCAR_PF_CHECK=1 makes start run it first; adds 2-3 s)

Needs root and tests/setup-debian.sh (private Postfix unpacked into
$MAILCAR_TEST_CACHE/postfix, default /var/cache/mailcar-test/postfix, and
the dovecot-core package).  Stdlib only; run with /usr/bin/python3.

After start, DIR/ports.env (shell) and DIR/ports.json describe the instance:
  submission   STARTTLS required (encrypt), AUTH only after STARTTLS, AUTH required
  submissions  implicit TLS (wrapper mode), AUTH required
  plain        no TLS, no AUTH, relaying allowed from 127.0.0.0/8
  expired / wrongname / selfsigned
               like submission, but presenting a bad certificate
Every accepted message is delivered by a pipe transport to DIR/mail/ as
<ns>-<queueid>.eml (the message as Postfix queued it: Postfix's Received
header prepended, lines end in LF) with <same>.json next to it holding the
envelope {"sender": ..., "recipients": [...], "queue_id": ...}.  The .json
is written before the .eml appears; ignore the .tmp-* files being written.

Environment: MAILCAR_TEST_CACHE (cache dir), MAILCAR_PF_PORT_BASE (use ports
BASE..BASE+5 instead of free ones picked by the kernel).
"""

import grp
import json
import os
import pty
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

CACHE = os.environ.get("MAILCAR_TEST_CACHE", "/var/cache/mailcar-test")
PFROOT = os.path.join(CACHE, "postfix")
PF_SBIN = os.path.join(PFROOT, "usr/sbin")
PF_DAEMON = os.path.join(PFROOT, "usr/lib/postfix/sbin")
PF_LIB = os.path.join(PFROOT, "usr/lib/postfix")
PF_META = os.path.join(PFROOT, "etc/postfix")
DOVECOT = "/usr/sbin/dovecot"
SETUP_HINT = "run `sudo sh tests/setup-debian.sh` to install it"

HOST = "127.0.0.1"
PORT_NAMES = ("submission", "submissions", "plain", "expired", "wrongname", "selfsigned")
USERS = {
    "alice@example.test": "wonderland-42",
    "bob@example.test": "looking-glass-7",
}
REJECT_RCPT = "reject@example.test"      # 550 5.1.1 at RCPT
TEMPFAIL_RCPT = "tempfail@example.test"  # 450 4.2.0 at RCPT
SIZE_LIMIT = 10 * 1024 * 1024
START_TIMEOUT = 30.0


class PfError(Exception):
    pass


def missing_prerequisites():
    """A reason string when the private servers are not installed, else None."""
    if not os.access(os.path.join(PF_SBIN, "postfix"), os.X_OK):
        return "private postfix not found in %s; %s" % (PFROOT, SETUP_HINT)
    if not os.access(DOVECOT, os.X_OK):
        return "dovecot (dovecot-core) not installed; " + SETUP_HINT
    return None


def paths(d):
    d = os.path.abspath(d)
    return {
        "dir": d,
        "etc": os.path.join(d, "etc"),
        "spool": os.path.join(d, "spool"),
        "data": os.path.join(d, "data"),
        "log": os.path.join(d, "log"),
        "mail": os.path.join(d, "mail"),
        "ca": os.path.join(d, "ca"),
        "bin": os.path.join(d, "bin"),
        "dovecot": os.path.join(d, "dovecot"),
        "dovecot_run": os.path.join(d, "dovecot", "run"),
        "auth_socket": os.path.join(d, "dovecot", "run", "auth-client"),
        "lmtp_socket": os.path.join(d, "dovecot", "run", "lmtp"),
        "vmail": os.path.join(d, "vmail"),
        "postfix_log": os.path.join(d, "log", "postfix.log"),
        "dovecot_log": os.path.join(d, "log", "dovecot.log"),
        "pf_pid": os.path.join(d, "spool", "pid", "master.pid"),
        "dc_pid": os.path.join(d, "dovecot", "run", "master.pid"),
        "sessions": os.path.join(d, "sessions.json"),
    }


def run_tty(argv, env=None):
    """Run a short-lived Postfix command with stderr on a pty: Postfix commands
    log to stderr only when it is a terminal (else only to postlogd)."""
    master, slave = pty.openpty()
    try:
        r = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                             stderr=slave)
        os.close(slave)
        slave = None
        chunks = []
        while True:
            try:
                b = os.read(master, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not b:
                break
            chunks.append(b)
        rc = r.wait()
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)
    return rc, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def pf_env(p):
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = PF_LIB
    env["MAIL_CONFIG"] = p["etc"]
    env["LANG"] = "C"
    return env


def run(argv, env=None, check=True):
    # Output goes to a file, not a pipe: daemons inherit it and keep it open.
    with tempfile.TemporaryFile() as f:
        r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=f, stderr=f)
        f.seek(0)
        out = f.read().decode("utf-8", "replace")
    if check and r.returncode != 0:
        raise PfError("%s failed (exit %d):\n%s" % (" ".join(argv), r.returncode, out))
    return out


# --- users -----------------------------------------------------------------

def _exists(db, name):
    return subprocess.run(["getent", db, name], stdout=subprocess.DEVNULL).returncode == 0


def ensure_users():
    for g in ("postdrop", "postfix"):
        if not _exists("group", g):
            run(["groupadd", "--system", g])
    if not _exists("passwd", "postfix"):
        run(["useradd", "--system", "--gid", "postfix", "--home-dir", "/nonexistent",
             "--no-create-home", "--shell", "/usr/sbin/nologin", "postfix"])
    for u in ("dovecot", "dovenull"):
        if not _exists("passwd", u):
            run(["useradd", "--system", "--user-group", "--home-dir", "/nonexistent",
                 "--no-create-home", "--shell", "/usr/sbin/nologin", u])


def as_user_ok(user, test_args):
    """Run `test ARGS` as USER (no login), True when it succeeds."""
    pw = pwd.getpwnam(user)
    return subprocess.run(["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                           "--clear-groups", "test"] + test_args).returncode == 0


# --- ports ------------------------------------------------------------------

def pick_ports():
    base = os.environ.get("MAILCAR_PF_PORT_BASE")
    if base:
        return {n: int(base) + i for i, n in enumerate(PORT_NAMES)}
    socks = []
    try:
        for _ in PORT_NAMES:
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
        return {n: s.getsockname()[1] for n, s in zip(PORT_NAMES, socks)}
    finally:
        for s in socks:
            s.close()


def listening_ports():
    """Ports in LISTEN state on 127.0.0.1, read from /proc (no connection made,
    so nothing shows up in the Postfix log)."""
    out = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            addr, port = fields[1].split(":")
            if fields[3] == "0A" and addr in ("0100007F", "00000000"):
                out.add(int(port, 16))
    return out


# --- the throwaway CA --------------------------------------------------------

OPENSSL_CNF = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ wrongname_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example.invalid
[ selfsigned_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = email:alice@example.test
[ ca ]
default_ca = testca
[ testca ]
dir = {ca}
database = {ca}/index.txt
new_certs_dir = {ca}/newcerts
serial = {ca}/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
"""


def make_ca(ca):
    """CA + leaf certificates (EC P-256 keys, fast) in CA dir."""
    os.makedirs(os.path.join(ca, "newcerts"), exist_ok=True)
    os.makedirs(os.path.join(ca, "certs"), exist_ok=True)
    cnf = os.path.join(ca, "openssl.cnf")
    with open(cnf, "w") as f:
        f.write(OPENSSL_CNF.replace("{ca}", ca))
    with open(os.path.join(ca, "index.txt"), "w"):
        pass
    with open(os.path.join(ca, "serial"), "w") as f:
        f.write("1000\n")
    j = lambda n: os.path.join(ca, n)  # noqa: E731
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ossl = ["openssl"]

    run(ossl + ["req", "-config", cnf, "-x509", "-new"] + newkey +
        ["-keyout", j("ca.key"), "-out", j("ca.crt"), "-days", "3650",
         "-subj", "/O=mailcar tests/CN=mailcar test CA", "-extensions", "ca_ext"])

    def leaf(name, cn, ext, days="825"):
        run(ossl + ["req", "-config", cnf, "-new"] + newkey +
            ["-keyout", j(name + ".key"), "-out", j(name + ".csr"), "-subj", "/CN=" + cn])
        run(ossl + ["x509", "-req", "-in", j(name + ".csr"), "-CA", j("ca.crt"),
                    "-CAkey", j("ca.key"), "-CAserial", j("serial"), "-days", days,
                    "-extfile", cnf, "-extensions", ext, "-out", j(name + ".crt")])

    leaf("server", "localhost", "server_ext")
    leaf("wrongname", "wrong.example.invalid", "wrongname_ext")
    leaf("client", "alice@example.test", "client_ext")
    # expired: signed by the CA, valid only in January 2020
    run(ossl + ["req", "-config", cnf, "-new"] + newkey +
        ["-keyout", j("expired.key"), "-out", j("expired.csr"), "-subj", "/CN=localhost"])
    run(ossl + ["ca", "-batch", "-config", cnf, "-notext", "-in", j("expired.csr"),
                "-cert", j("ca.crt"), "-keyfile", j("ca.key"),
                "-startdate", "20200101000000Z", "-enddate", "20200201000000Z",
                "-extfile", cnf, "-extensions", "server_ext", "-out", j("expired.crt")])
    # self-signed, right name, trusted by nobody
    run(ossl + ["req", "-config", cnf, "-x509", "-new"] + newkey +
        ["-keyout", j("selfsigned.key"), "-out", j("selfsigned.crt"), "-days", "825",
         "-subj", "/CN=localhost", "-extensions", "selfsigned_ext"])
    # hashed CA directory (as c_rehash would make it)
    h = run(ossl + ["x509", "-hash", "-noout", "-in", j("ca.crt")]).strip()
    link = os.path.join(ca, "certs", h + ".0")
    if not os.path.lexists(link):
        os.symlink("../ca.crt", link)
    # chain files: key first, then certificate (Postfix smtpd_tls_chain_files)
    for n in ("server", "expired", "wrongname", "selfsigned", "client"):
        with open(j(n + ".pem"), "wb") as out:
            for part in (n + ".key", n + ".crt"):
                with open(j(part), "rb") as f:
                    out.write(f.read())
    for n in os.listdir(ca):
        if n.endswith(".csr"):
            os.unlink(j(n))
    for n in os.listdir(ca):
        fp = j(n)
        if os.path.isfile(fp) and not os.path.islink(fp):
            os.chmod(fp, 0o600 if n.endswith((".key", ".pem")) else 0o644)


# --- configuration -----------------------------------------------------------

DELIVER = r'''#!/usr/bin/python3 -IS
# Pipe transport for the mailcar test Postfix: argv = MAILDIR QUEUEID SENDER RCPT...
import json, os, sys, time
maildir, qid, sender, rcpts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
data = sys.stdin.buffer.read()
base = "%020d-%s" % (time.time_ns(), qid)
def put(name, blob):
    tmp = os.path.join(maildir, ".tmp-" + name)
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.rename(tmp, os.path.join(maildir, name))
env = {"sender": sender, "recipients": rcpts, "queue_id": qid, "size": len(data)}
put(base + ".json", json.dumps(env, ensure_ascii=False).encode() + b"\n")
put(base + ".eml", data)
'''


def main_cf(p, ports):
    ca = p["ca"]
    return """\
# mailcar test instance: generated by tests/servers/pf.py, do not edit
compatibility_level = 3.6
config_directory = {etc}
queue_directory = {spool}
data_directory = {data}
daemon_directory = {daemon}
command_directory = {sbin}
meta_directory = {meta}
shlib_directory = {lib}
sendmail_path = {sbin}/sendmail
newaliases_path = {sbin}/newaliases
mailq_path = {sbin}/mailq
html_directory = no
manpage_directory = {pfroot}/usr/share/man
sample_directory = {meta}
readme_directory = no
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C
    POSTLOG_SERVICE POSTLOG_HOSTNAME LD_LIBRARY_PATH={lib}
mail_owner = postfix
setgid_group = postdrop
maillog_file = {postfix_log}
maillog_file_prefixes = {log}
syslog_name = postfix-mailcar

myhostname = mx.example.test
mydomain = example.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP mailcar-test
biff = no
smtputf8_enable = yes
message_size_limit = {size}
mailbox_size_limit = 0
smtpd_recipient_limit = 10000
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 200
local_header_rewrite_clients =
smtp_dns_support_level = disabled
delay_warning_time = 0

# every address, any domain, ends up in the sink (one delivery per message)
default_transport = sink:sink
relay_transport = sink:sink
local_transport = sink:sink
virtual_transport = sink:sink
sink_destination_recipient_limit = 10000
sink_destination_concurrency_limit = 4

smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject
smtpd_recipient_restrictions = check_recipient_access texthash:{etc}/recipient_access

smtpd_sasl_type = dovecot
smtpd_sasl_path = {auth_socket}
smtpd_sasl_auth_enable = no
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_tls_chain_files = {ca}/server.key, {ca}/server.crt
smtpd_tls_security_level = none
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
""".format(etc=p["etc"], spool=p["spool"], data=p["data"], daemon=PF_DAEMON,
           sbin=PF_SBIN, meta=PF_META, lib=PF_LIB, postfix_log=p["postfix_log"],
           size=SIZE_LIMIT, auth_socket=p["auth_socket"], ca=ca, pfroot=PFROOT,
           log=p["log"])


def master_cf(p, ports):
    ca = p["ca"]
    sub = ("  -o smtpd_tls_security_level=encrypt\n"
           "  -o smtpd_tls_ask_ccert=yes\n"
           "  -o smtpd_tls_CAfile=%s/ca.crt\n"
           "  -o smtpd_tls_auth_only=yes\n" % ca +
           "  -o smtpd_sasl_auth_enable=yes\n"
           "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n")
    # Client certificates are asked for (and verified against the test CA) so
    # that a client certificate shows in the Received header; never required.

    def svc(name, extra):
        return ("%s:%d inet n - n - - smtpd\n  -o syslog_name=postfix-mailcar/%s\n%s"
                % (HOST, ports[name], name, extra))

    def bad(name):
        return svc(name, sub + "  -o smtpd_tls_chain_files=%s/%s.key,%s/%s.crt\n"
                   % (ca, name, ca, name))

    return "".join([
        "# mailcar test instance: generated by tests/servers/pf.py, do not edit\n",
        svc("submission", sub),
        svc("submissions", sub + "  -o smtpd_tls_wrappermode=yes\n"),
        svc("plain", "  -o smtpd_tls_security_level=none\n"
                     "  -o smtpd_sasl_auth_enable=no\n"),
        bad("expired"), bad("wrongname"), bad("selfsigned"),
        """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
""",
        "sink      unix  -       n       n       -       -       pipe\n"
        "  flags=X user=nobody null_sender= argv=%s/deliver %s ${queue_id} ${sender} ${recipient}\n"
        % (p["bin"], p["mail"]),
    ])


def have_lmtp():
    """dovecot-lmtpd installed: the LMTP listener is started too."""
    return os.access("/usr/lib/dovecot/lmtp", os.X_OK)


def dovecot_conf(p):
    return """\
# mailcar test instance: generated by tests/servers/pf.py, do not edit
# Dovecot is the SASL server for Postfix, and an LMTP listener (a Unix socket)
# that delivers to DIR/vmail/<user>/Maildir for mailcar's LMTP tests.
protocols = {protocols}
listen = 127.0.0.1
instance_name = mailcar-dovecot
base_dir = {run}
state_dir = {state}
log_path = {log}
info_log_path = {log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
auth_failure_delay = 0
auth_verbose = yes
auth_cache_size = 0
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={vmail}/%u
}}
mail_location = maildir:~/Maildir
lmtp_save_to_detail_mailbox = no
{lmtp_service}
# no growing delays after failed logins (tests fail logins on purpose)
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  unix_listener auth-client {{
    mode = 0660
    user = postfix
    group = postfix
  }}
}}
""".format(run=p["dovecot_run"], state=os.path.join(p["dovecot"], "state"),
           log=p["dovecot_log"], passwd=os.path.join(p["dovecot"], "passwd"),
           vmail=p["vmail"], protocols="lmtp" if have_lmtp() else "",
           lmtp_service="service lmtp {\n  unix_listener lmtp {\n    mode = 0666\n  }\n}"
           if have_lmtp() else "")


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def shell_env(p, ports):
    v = {
        "MAILCAR_PF_DIR": p["dir"],
        "MAILCAR_PF_HOST": HOST,
        "MAILCAR_PF_SUBMISSION": ports["submission"],
        "MAILCAR_PF_SUBMISSIONS": ports["submissions"],
        "MAILCAR_PF_PLAIN": ports["plain"],
        "MAILCAR_PF_EXPIRED": ports["expired"],
        "MAILCAR_PF_WRONGNAME": ports["wrongname"],
        "MAILCAR_PF_SELFSIGNED": ports["selfsigned"],
        "MAILCAR_PF_CA": os.path.join(p["ca"], "ca.crt"),
        "MAILCAR_PF_CA_DIR": os.path.join(p["ca"], "certs"),
        "MAILCAR_PF_USER": "alice@example.test",
        "MAILCAR_PF_PASSWORD": USERS["alice@example.test"],
        "MAILCAR_PF_USER2": "bob@example.test",
        "MAILCAR_PF_PASSWORD2": USERS["bob@example.test"],
        "MAILCAR_PF_MAILDIR": p["mail"],
        "MAILCAR_PF_LOG": p["postfix_log"],
        "MAILCAR_PF_DOVECOT_LOG": p["dovecot_log"],
    }
    return "".join("%s=%s\n" % (k, shlex.quote(str(x))) for k, x in v.items())


def describe(p, ports):
    ca = p["ca"]
    return {
        "dir": p["dir"],
        "host": HOST,
        "ports": ports,
        "ca": {n: os.path.join(ca, n) for n in (
            "ca.crt", "server.crt", "server.key", "expired.crt", "expired.key",
            "wrongname.crt", "wrongname.key", "selfsigned.crt", "selfsigned.key",
            "client.crt", "client.key", "client.pem")},
        "ca_dir": os.path.join(ca, "certs"),
        "users": USERS,
        "user": "alice@example.test",
        "password": USERS["alice@example.test"],
        "reject_rcpt": REJECT_RCPT,
        "tempfail_rcpt": TEMPFAIL_RCPT,
        "size_limit": SIZE_LIMIT,
        "maildir": p["mail"],
        "postfix_log": p["postfix_log"],
        "dovecot_log": p["dovecot_log"],
        "auth_socket": p["auth_socket"],
        "lmtp_socket": p["lmtp_socket"],
        "vmail": p["vmail"],
    }


# --- processes ---------------------------------------------------------------

def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def session_members(sids):
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % e) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields[0] = state, [3] = session id
        if int(fields[3]) in sids and fields[0] != "Z":
            out.append(int(e))
    return out


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return "(%s)" % e


def logs_tail(p):
    return ("--- %s ---\n%s\n--- %s ---\n%s\n" %
            (p["postfix_log"], tail(p["postfix_log"]), p["dovecot_log"], tail(p["dovecot_log"])))


def is_running(d):
    p = paths(d)
    return (alive(read_pid(p["pf_pid"])) and alive(read_pid(p["dc_pid"]))
            and os.path.exists(os.path.join(p["dir"], "ports.json")))


def load(d):
    with open(os.path.join(os.path.abspath(d), "ports.json")) as f:
        return json.load(f)


# Queue directories as in Postfix's postfix-files (name, owner, group, mode);
# owner None = root, "mail" = mail_owner, group "setgid" = postdrop.
QUEUE_DIRS = [
    ("active", "mail", None, 0o700), ("bounce", "mail", None, 0o700),
    ("corrupt", "mail", None, 0o700), ("defer", "mail", None, 0o700),
    ("deferred", "mail", None, 0o700), ("flush", "mail", None, 0o700),
    ("hold", "mail", None, 0o700), ("incoming", "mail", None, 0o700),
    ("private", "mail", None, 0o700), ("maildrop", "mail", "setgid", 0o730),
    ("public", "mail", "setgid", 0o710), ("pid", None, None, 0o755),
    ("saved", "mail", None, 0o700), ("trace", "mail", None, 0o700),
]


def make_queue(p):
    """What `post-install create-missing` would do, in milliseconds instead of
    seconds; with DIR/spool/quick-start, `postfix start` then skips its checks."""
    owner = pwd.getpwnam("postfix").pw_uid
    setgid = grp.getgrnam("postdrop").gr_gid
    for name, o, g, mode in QUEUE_DIRS:
        path = os.path.join(p["spool"], name)
        os.makedirs(path, exist_ok=True)
        os.chown(path, owner if o else 0, setgid if g else 0)
        os.chmod(path, mode)
    os.chown(p["data"], owner, 0)
    os.chmod(p["data"], 0o700)


def postfix_check(d):
    """Run `postfix check` (2-3 s: post-install is a long shell script);
    returns its complaints, "" when clean."""
    p = paths(d)
    rc, out = run_tty([os.path.join(PF_SBIN, "postfix"), "-c", p["etc"], "check"],
                      env=pf_env(p))
    out = out.strip()
    if rc != 0 and not out:
        out = "postfix check failed with exit %d" % rc
    return out


def start(d, check=None):
    """Configure and start the instance in D; returns the ports.json dict.
    CHECK (default: env MAILCAR_PF_CHECK set) runs `postfix check` first."""
    if check is None:
        check = bool(os.environ.get("MAILCAR_PF_CHECK"))
    t0 = time.monotonic()
    if os.geteuid() != 0:
        raise PfError("must run as root (Postfix and Dovecot are started as root)")
    why = missing_prerequisites()
    if why:
        raise PfError(why)
    p = paths(d)
    if alive(read_pid(p["pf_pid"])) or alive(read_pid(p["dc_pid"])):
        raise PfError("an instance is already running in %s (stop it first)" % p["dir"])
    if len(p["auth_socket"].encode()) > 100:
        raise PfError("DIR is too deep: %s is longer than a unix socket path may be"
                      % p["auth_socket"])
    ensure_users()

    os.makedirs(p["dir"], exist_ok=True)
    os.chmod(p["dir"], 0o755)
    for k in ("etc", "spool", "data", "log", "ca", "bin", "dovecot", "dovecot_run"):
        os.makedirs(p[k], exist_ok=True)
        os.chmod(p[k], 0o755)
    os.makedirs(os.path.join(p["dovecot"], "state"), exist_ok=True)
    os.makedirs(p["mail"], exist_ok=True)
    os.chmod(p["mail"], 0o1777)
    os.makedirs(p["vmail"], exist_ok=True)
    os.chmod(p["vmail"], 0o1777)
    for k in ("postfix_log", "dovecot_log"):
        open(p[k], "a").close()
    make_queue(p)

    if not as_user_ok("nobody", ["-w", p["mail"], "-a", "-x", p["bin"]]):
        raise PfError("user nobody cannot reach %s: make every parent directory of "
                      "DIR searchable (chmod o+x), or use a DIR under /tmp" % p["mail"])
    if not as_user_ok("postfix", ["-x", p["dovecot_run"]]):
        raise PfError("user postfix cannot reach %s: make every parent directory of "
                      "DIR searchable (chmod o+x)" % p["dovecot_run"])

    if not os.path.exists(os.path.join(p["ca"], "ca.crt")):
        make_ca(p["ca"])

    ports = pick_ports()
    write(os.path.join(p["bin"], "deliver"), DELIVER, 0o755)
    write(os.path.join(p["etc"], "main.cf"), main_cf(p, ports))
    write(os.path.join(p["etc"], "master.cf"), master_cf(p, ports))
    write(os.path.join(p["etc"], "recipient_access"),
          "%s 550 5.1.1 <%s>: recipient rejected for testing\n"
          "%s 450 4.2.0 <%s>: recipient temporarily rejected for testing\n"
          % (REJECT_RCPT, REJECT_RCPT, TEMPFAIL_RCPT, TEMPFAIL_RCPT))
    # Postfix sleeps up to 2 s when main.cf is brand new (it waits for a file
    # written "in the same second" to settle); backdate the configuration.
    past = time.time() - 60
    for n in ("main.cf", "master.cf", "recipient_access"):
        os.utime(os.path.join(p["etc"], n), (past, past))
    write(os.path.join(p["dovecot"], "dovecot.conf"), dovecot_conf(p))
    write(os.path.join(p["dovecot"], "passwd"),
          "".join("%s:{PLAIN}%s::::::\n" % (u, pw_) for u, pw_ in USERS.items()), 0o640)
    os.chown(os.path.join(p["dovecot"], "passwd"), 0, grp.getgrnam("dovecot").gr_gid)

    env = pf_env(p)
    postfix = [os.path.join(PF_SBIN, "postfix"), "-c", p["etc"]]
    try:
        run([DOVECOT, "-c", os.path.join(p["dovecot"], "dovecot.conf")])
        if check:
            out = postfix_check(d)
            if out:
                raise PfError("postfix check is not clean:\n" + out)
        if not check:
            open(os.path.join(p["spool"], "quick-start"), "w").close()
        run(postfix + ["start"], env=env)
        sids = [x for x in (read_pid(p["pf_pid"]), read_pid(p["dc_pid"])) if x]
        with open(p["sessions"], "w") as f:
            json.dump(sids, f)

        deadline = time.monotonic() + START_TIMEOUT
        pending = dict(ports)
        while True:
            up = listening_ports()
            for n, port in list(pending.items()):
                if port in up:
                    del pending[n]
            if not pending and os.path.exists(p["auth_socket"]):
                break
            if time.monotonic() > deadline:
                raise PfError("not up after %.0f s: ports %s%s" % (
                    START_TIMEOUT, ", ".join("%s=%d" % kv for kv in pending.items()) or "ok",
                    "" if os.path.exists(p["auth_socket"]) else
                    ", no dovecot auth socket " + p["auth_socket"]))
            if not alive(read_pid(p["pf_pid"])):
                raise PfError("postfix master died")
            if not alive(read_pid(p["dc_pid"])):
                raise PfError("dovecot master died")
            time.sleep(0.05)
    except PfError as e:
        try:
            stop(d, quiet=True)
        finally:
            raise PfError("%s\n%s" % (e, logs_tail(p))) from None

    info = describe(p, ports)
    info["startup_seconds"] = round(time.monotonic() - t0, 3)
    write(os.path.join(p["dir"], "ports.env"), shell_env(p, ports))
    with open(os.path.join(p["dir"], "ports.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return info


def _wait_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(x) for x in pids):
            return True
        time.sleep(0.05)
    return False


def stop(d, quiet=False):
    """Stop the instance in D; returns the pids that had to be killed by force."""
    p = paths(d)
    sids = set()
    try:
        with open(p["sessions"]) as f:
            sids.update(json.load(f))
    except (OSError, ValueError):
        pass
    pf_pid, dc_pid = read_pid(p["pf_pid"]), read_pid(p["dc_pid"])
    sids.update(x for x in (pf_pid, dc_pid) if x)

    # SIGTERM to the master is what `postfix stop` does (it then polls once a
    # second).  Dovecot's master waits a second for its children after
    # SIGTERM, so its whole session gets SIGTERM at once.
    targets = [x for x in (pf_pid, dc_pid) if alive(x)]
    if alive(dc_pid):
        targets += session_members({dc_pid})
    for pid in targets:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    _wait_gone([pf_pid, dc_pid], 10)
    for pid in (pf_pid, dc_pid):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    # whatever is left in the masters' sessions (children, pipe commands)
    forced = []
    if sids:
        _wait_gone(session_members(sids), 2)
        for pid in session_members(sids):
            try:
                os.kill(pid, signal.SIGKILL)
                forced.append(pid)
            except ProcessLookupError:
                pass
    for f in (p["sessions"], p["pf_pid"], p["dc_pid"], os.path.join(p["dir"], "ports.json"),
              os.path.join(p["dir"], "ports.env")):
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass
    if forced and not quiet:
        print("pf.py: killed stray processes %s" % forced, file=sys.stderr)
    return forced


def main(argv):
    if len(argv) != 3 or argv[1] not in ("start", "stop", "status", "check"):
        print("usage: pf.py start|stop|status|check DIR", file=sys.stderr)
        return 2
    cmd, d = argv[1], argv[2]
    try:
        if cmd == "start":
            info = start(d)
            print("pf.py: up in %.2f s: submission=%d submissions=%d plain=%d; see %s/ports.env"
                  % (info["startup_seconds"], info["ports"]["submission"],
                     info["ports"]["submissions"], info["ports"]["plain"], info["dir"]))
        elif cmd == "stop":
            stop(d)
        elif cmd == "check":
            out = postfix_check(d)
            if out:
                print(out)
                return 1
        else:
            return 0 if is_running(d) else 1
    except PfError as e:
        print("pf.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
