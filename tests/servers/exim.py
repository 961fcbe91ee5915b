#!/usr/bin/python3
"""A private Exim (Debian's exim4-daemon-light, unpacked with dpkg -x by
tests/setup-debian.sh, never installed as the system MTA) on loopback, all
under DIR.

    exim.py start DIR     write config, CA, spool under DIR and start the daemon
    exim.py stop DIR      stop it
    exim.py status DIR    exit 0 when it is up

After start, DIR/info.json describes the instance:
  submission   STARTTLS offered, AUTH (PLAIN, LOGIN) only after STARTTLS and
               required for relaying: recipients are refused without it
  submissions  implicit TLS (tls_on_connect_ports), AUTH required
  ca           the throwaway CA that signed the certificate for localhost
  user/password, reject_rcpt (550 at RCPT), size_limit (SIZE advertised)
Every accepted message is piped to DIR/mail/ (see sink.py).

Needs root (exim's -C as root; the daemon drops to Debian-exim).
"""

import json
import os
import pwd
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sink  # noqa: E402

CACHE = os.environ.get("MAILCAR_TEST_CACHE", "/var/cache/mailcar-test")
EXIM = os.path.join(CACHE, "exim4-daemon-light/usr/sbin/exim4")
EXIM_USER = "Debian-exim"
SETUP_HINT = "run `sudo sh tests/setup-debian.sh`"
USER = "alice@example.test"
PASSWORD = "exim-secret-9"
REJECT_RCPT = "reject@example.test"
SIZE_LIMIT = 1024 * 1024

CONFIG = r'''# private Exim for mailcar's interop tests
primary_hostname = exim.example.test
exim_path = @EXIM@
keep_environment =
exim_user = @USER@
exim_group = @USER@
never_users =
spool_directory = @D@/spool
log_file_path = @D@/log/%slog
pid_file_path = @D@/exim.pid
local_interfaces = <; 127.0.0.1.@SUBMISSION@ ; 127.0.0.1.@SUBMISSIONS@
tls_on_connect_ports = @SUBMISSIONS@
tls_advertise_hosts = *
tls_certificate = @D@/ca/server.crt
tls_privatekey = @D@/ca/server.key
message_size_limit = @SIZE@
domainlist local_domains = example.test
acl_smtp_rcpt = acl_check_rcpt
acl_smtp_data = acl_check_data
chunking_advertise_hosts = *
smtputf8_advertise_hosts = *
accept_8bitmime = true
host_lookup =
rfc1413_hosts =
queue_only = false
log_selector = +smtp_protocol_error +smtp_syntax_error +tls_certificate_verified +received_recipients

begin acl

acl_check_rcpt:
  deny    message = 5.7.1 authentication required
          !authenticated = *
  deny    message = 5.1.1 <$local_part@$domain>: no such user here
          local_parts = reject
  accept

acl_check_data:
  accept

begin routers

sink:
  driver = accept
  transport = sink

begin transports

sink:
  driver = pipe
  command = /usr/bin/python3 @D@/deliver.py @D@/mail $message_exim_id
  return_path_add = true
  envelope_to_add = true
  batch_max = 100
  user = @USER@
  group = @USER@
  message_prefix =
  message_suffix =
  return_fail_output = true
  use_shell = false

begin retry

*   *   F,1m,1m

begin authenticators

PLAIN:
  driver = plaintext
  public_name = PLAIN
  server_advertise_condition = ${if def:tls_in_cipher}
  server_condition = ${if and {{eq{$auth2}{@LOGIN@}} {eq{$auth3}{@PASSWORD@}}}}
  server_set_id = $auth2

LOGIN:
  driver = plaintext
  public_name = LOGIN
  server_advertise_condition = ${if def:tls_in_cipher}
  server_prompts = Username:: : Password::
  server_condition = ${if and {{eq{$auth1}{@LOGIN@}} {eq{$auth2}{@PASSWORD@}}}}
  server_set_id = $auth1
'''


def version(text):
    for line in text.split("\n"):
        if line.startswith("Exim version"):
            return line.strip()
    return "exim (version unknown)"


def missing_prerequisites():
    if not os.access(EXIM, os.X_OK):
        return "private exim not found at %s; %s" % (EXIM, SETUP_HINT)
    try:
        pwd.getpwnam(EXIM_USER)
    except KeyError:
        return "user %s missing; %s" % (EXIM_USER, SETUP_HINT)
    if os.geteuid() != 0:
        return "the private Exim needs root"
    return None


load = sink.load


def is_running(d):
    return sink.alive(sink.read_pid(os.path.join(d, "exim.pid")))


def start(d):
    why = missing_prerequisites()
    if why:
        raise sink.ServerError(why)
    d = os.path.abspath(d)
    pw = pwd.getpwnam(EXIM_USER)
    for sub in ("spool", "log", "mail", "ca"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    os.chmod(d, 0o755)
    ca = sink.make_ca(os.path.join(d, "ca"))
    os.chmod(os.path.join(d, "ca"), 0o755)
    for sub in ("spool", "log", "mail"):
        os.chown(os.path.join(d, sub), pw.pw_uid, pw.pw_gid)
    os.chown(ca["server.key"], pw.pw_uid, pw.pw_gid)
    os.chmod(ca["server.key"], 0o600)
    sink.install_deliver(d)
    submission, submissions = sink.free_ports(2)
    conf = os.path.join(d, "exim.conf")
    text = CONFIG
    for k, v in (("D", d), ("EXIM", EXIM), ("USER", EXIM_USER), ("SUBMISSIONS", submissions),
                 ("SUBMISSION", submission), ("SIZE", SIZE_LIMIT), ("LOGIN", USER),
                 ("PASSWORD", PASSWORD)):
        text = text.replace("@%s@" % k, str(v))
    sink.write(conf, text, 0o644)
    # the config must be valid before the daemon goes away into the background
    chk = subprocess.run([EXIM, "-C", conf, "-bV"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if chk.returncode:
        raise sink.ServerError("exim -bV failed:\n" + chk.stdout.decode(errors="replace"))
    info = {"dir": d, "host": sink.HOST, "ports": {"submission": submission,
                                                 "submissions": submissions},
            "ca": ca["ca.crt"], "user": USER, "password": PASSWORD, "reject_rcpt": REJECT_RCPT,
            "size_limit": SIZE_LIMIT, "maildir": os.path.join(d, "mail"),
            "log": os.path.join(d, "log", "mainlog"), "version": version(chk.stdout.decode())}
    with open(os.path.join(d, "info.json"), "w") as f:
        json.dump(info, f, indent=1)
    out = open(os.path.join(d, "log", "daemon.out"), "wb")
    # -bdf: stay in the foreground, so the daemon is our child and its process group ours
    p = subprocess.Popen([EXIM, "-C", conf, "-bdf"], stdin=subprocess.DEVNULL, stdout=out,
                         stderr=subprocess.STDOUT, start_new_session=True, cwd=d)
    out.close()
    with open(os.path.join(d, "daemon.pid"), "w") as f:
        f.write("%d\n" % p.pid)
    try:
        for port in (submission, submissions):
            sink.wait_port(port, proc=p, what="exim")
    except sink.ServerError as e:
        stop(d)
        raise sink.ServerError("%s\n%s" % (e, tail(d)))
    return info


def tail(d):
    out = []
    for n in ("daemon.out", "mainlog", "paniclog", "rejectlog"):
        p = os.path.join(d, "log", n)
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                out.append("--- %s\n%s" % (n, f.read()[-3000:]))
    return "\n".join(out)


def stop(d, quiet=True):
    pid = sink.read_pid(os.path.join(d, "daemon.pid"))
    if pid and sink.alive(pid):
        try:
            os.killpg(pid, 15)
        except (ProcessLookupError, PermissionError):
            pass
        sink.kill_pid(pid)
    for f in ("daemon.pid",):
        try:
            os.unlink(os.path.join(d, f))
        except FileNotFoundError:
            pass


def main(argv):
    return sink.cli(argv, "exim.py", __doc__, start, stop, is_running)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
