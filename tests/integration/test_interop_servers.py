"""Interop, servers: the same core scenarios against every server people
relay through, each a private instance on loopback from Debian's packages:

    postfix     Postfix 3.7 + Dovecot SASL (tests/servers/pf.py)
    exim        Exim 4.96, exim4-daemon-light, plaintext PLAIN/LOGIN
                authenticators, GnuTLS (tests/servers/exim.py)
    opensmtpd   OpenSMTPD 6.8 (tests/servers/opensmtpd.py)

Scenarios: STARTTLS + AUTH, implicit TLS, 8BITMIME, SMTPUTF8 and CHUNKING
where offered, a refused recipient (exit 67), a size limit (exit 69 before
MAIL when SIZE is advertised).  A server that cannot run here, or cannot do
a scenario (a feature it does not offer, a known bug of the packaged
version), is skipped with the reason.

Exim and OpenSMTPD conflict with every MTA: tests/setup-debian.sh unpacks
them with dpkg -x, they are never installed.  Needs root.
Run: MAILCAR=$PWD/mailcar /usr/bin/python3 -m pytest -q tests/integration/test_interop_servers.py
"""

import atexit
import os
import shutil
import smtplib
import socket
import ssl
import sys
import tempfile

import pytest

from postfix_server import Mailbox, get_instance

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'servers'))
import exim  # noqa: E402
import opensmtpd  # noqa: E402
import sink  # noqa: E402

SERVERS = ('postfix', 'exim', 'opensmtpd')
BOB = 'bob@example.test'
BODY = b'Line one\n.leading dot\n..two dots\n\nlast line\n'


class Server(Mailbox):
    """What every scenario needs from a server, whatever it is."""

    def __init__(self, name, info, maildir, log, stop=None):
        self.name = name
        self.host = '127.0.0.1'
        self.ports = dict(info['ports'])
        self.ca = info['ca']
        self.user = info['user']
        self.password = info['password']
        self.reject_rcpt = info['reject_rcpt']
        self.size_limit = info['size_limit']
        self.maildir = maildir
        self.log_path = log
        self.stop = stop
        self.tls_broken = None      # a reason when TLS cannot work with this build
        self._seen = set()
        self.mark()

    def mark(self):
        self.mark_deliveries()

    def failure_context(self):
        return self.log_tail()

    def log_tail(self, n=3000):
        try:
            with open(self.log_path, errors='replace') as f:
                return f.read()[-n:]
        except OSError as e:
            return '(%s)' % e

    def ehlo(self, port):
        """The EHLO keywords offered on PORT before any TLS."""
        s = smtplib.SMTP(self.host, port, timeout=10)
        try:
            s.ehlo('probe.example.test')
            return {k.upper() for k in s.esmtp_features}
        finally:
            s.close()


def tls_probe(host, port, ca):
    """None when an implicit-TLS handshake with PORT works, else why not."""
    ctx = ssl.create_default_context(cafile=ca)
    try:
        with socket.create_connection((host, port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname='localhost') as s:
                s.recv(100)
        return None
    except (OSError, ssl.SSLError) as e:
        return str(e)


_servers = {}


def _start(name):
    if os.geteuid() != 0:
        pytest.skip('the private servers need root')
    if name == 'postfix':
        pf = get_instance()
        info = {'ports': {'submission': pf.submission, 'submissions': pf.submissions,
                          'plain': pf.plain}, 'ca': pf.ca, 'user': pf.user,
                'password': pf.password, 'reject_rcpt': pf.reject_rcpt,
                'size_limit': pf.size_limit}
        return Server(name, info, pf.maildir, pf.log_path)
    mod = {'exim': exim, 'opensmtpd': opensmtpd}[name]
    why = mod.missing_prerequisites()
    if why:
        pytest.skip('%s: %s' % (name, why))
    d = tempfile.mkdtemp(prefix='mailcar-%s-' % name)
    try:
        info = mod.start(d)
    except sink.ServerError as e:
        shutil.rmtree(d, ignore_errors=True)
        pytest.skip('%s could not be started here: %s' % (name, e))

    def stop():
        mod.stop(d)
        if not os.environ.get('MAILCAR_INTEROP_KEEP'):
            shutil.rmtree(d, ignore_errors=True)
    atexit.register(stop)       # also when the session dies before teardown_module
    srv = Server(name, info, info['maildir'], info['log'], stop)
    srv.version = info.get('version')
    if name == 'opensmtpd':
        bad = tls_probe(srv.host, srv.ports['submissions'], srv.ca)
        if bad:
            srv.tls_broken = ('%s: this build fails every TLS handshake (%s; server log: %s) - '
                              'OpenSMTPD 6.8.0p2 with OpenSSL 3, OpenSMTPD/OpenSMTPD#1171'
                              % (info.get('version'), bad,
                                 'EVP lib' if 'EVP lib' in srv.log_tail() else 'see ' + info['log']))
    return srv


@pytest.fixture(scope='module', params=SERVERS)
def server(request):
    name = request.param
    if name not in _servers:
        _servers[name] = _start(name)
    srv = _servers[name]
    yield srv


def teardown_module(module):
    for srv in _servers.values():
        if srv.stop:
            srv.stop()
    _servers.clear()


def account(srv, mode, *extra):
    """mode: starttls (STARTTLS + AUTH), tls (implicit TLS + AUTH), or
    best (STARTTLS + AUTH, or the plain port when the server's TLS is broken)."""
    if mode == 'best':
        mode = 'plain' if srv.tls_broken and 'plain' in srv.ports else 'starttls'
    if mode in ('starttls', 'tls') and srv.tls_broken:
        pytest.skip(srv.tls_broken)
    lines = ['account default', 'host localhost', 'from alice@example.test', 'timeout 10']
    if mode == 'plain':
        lines += ['port %d' % srv.ports['plain'], 'tls off', 'auth off']
    else:
        lines += ['port %d' % srv.ports['submission' if mode == 'starttls' else 'submissions'],
                  'tls on', 'tls_starttls %s' % ('on' if mode == 'starttls' else 'off'),
                  'tls_trust_file %s' % srv.ca, 'user %s' % srv.user,
                  'password %s' % srv.password]
    return lines + list(extra)


def port_of(cfg):
    return int([l for l in cfg if l.startswith('port ')][0].split()[1])


def send(run_mailcar, srv, args, cfg, stdin, **kw):
    srv.mark()
    return run_mailcar(args, config=cfg, replace_config=True, stdin=stdin, **kw)


def message(extra=b'', body=BODY, subject=b'interop'):
    return (b'From: Alice <alice@example.test>\nTo: Bob <bob@example.test>\nSubject: '
            + subject + b'\n' + extra + b'\n' + body)


def body_of(m):
    return m.data.split(b'\n\n', 1)[1]


@pytest.mark.parametrize('mode', ['starttls', 'tls'])
def test_tls_auth_delivers_exact_bytes(server, run_mailcar, mode):
    cfg = account(server, mode)
    r = send(run_mailcar, server, ['-v', BOB], cfg, message(subject=mode.encode()))
    assert r.code == 0, r.describe()
    if mode == 'starttls':
        assert b'--> STARTTLS' in r.stderr
    else:
        assert b'--> STARTTLS' not in r.stderr
    assert b'--> AUTH ' in r.stderr and server.password.encode() not in r.stderr
    [m] = server.wait_messages(1)
    assert m.sender == 'alice@example.test' and m.recipients == [BOB]
    assert body_of(m) == BODY
    assert b'Subject: ' + mode.encode() in m.data


def test_auth_required_wrong_password(server, run_mailcar):
    cfg = [l if not l.startswith('password ') else 'password wrong-one'
           for l in account(server, 'starttls')]
    r = send(run_mailcar, server, [BOB], cfg, message())
    assert r.code == 77, r.describe()          # EX_NOPERM: authentication refused
    server.assert_no_messages(0.3)


def test_8bitmime(server, run_mailcar):
    cfg = account(server, 'best')
    if '8BITMIME' not in server.ehlo(port_of(cfg)):
        pytest.skip('%s does not offer 8BITMIME' % server.name)
    body = 'Zeile eins: Grüße, naïve café\n.\nEnde\n'.encode()
    stdin = message(b'MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n'
                    b'Content-Transfer-Encoding: 8bit\n', body)
    r = send(run_mailcar, server, ['-v', '-i', BOB], cfg, stdin)
    assert r.code == 0, r.describe()
    assert b'BODY=8BITMIME' in r.stderr
    [m] = server.wait_messages(1)
    assert body_of(m) == body


def test_smtputf8(server, run_mailcar):
    cfg = account(server, 'best')
    if 'SMTPUTF8' not in server.ehlo(port_of(cfg)):
        pytest.skip('%s does not offer SMTPUTF8' % server.name)
    r = send(run_mailcar, server, ['-v', 'jürgen@example.test'], cfg,
             message(b'MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n'))
    assert r.code == 0, r.describe()
    assert b' SMTPUTF8' in r.stderr
    [m] = server.wait_messages(1)
    assert m.recipients == ['jürgen@example.test']


def test_chunking(server, run_mailcar):
    cfg = account(server, 'best')
    if 'CHUNKING' not in server.ehlo(port_of(cfg)):
        pytest.skip('%s does not offer CHUNKING' % server.name)
    body = b''.join(b'%05d %s\n' % (i, b'.' * (i % 70)) for i in range(3000)) + b'.\n'
    r = send(run_mailcar, server, ['-v', '-i', BOB], cfg, message(body=body))
    assert r.code == 0, r.describe()
    assert b'--> BDAT ' in r.stderr and b'--> DATA' not in r.stderr
    [m] = server.wait_messages(1)
    assert body_of(m) == body


def test_refused_recipient_exit_67(server, run_mailcar):
    cfg = account(server, 'best')
    r = send(run_mailcar, server, [server.reject_rcpt], cfg, message())
    assert r.code == 67, r.describe()
    assert ('<%s>' % server.reject_rcpt).encode() in r.stderr and b' 550' in r.stderr
    server.assert_no_messages(0.3)


def test_refused_and_accepted_recipient(server, run_mailcar):
    cfg = account(server, 'best')
    r = send(run_mailcar, server, [BOB, server.reject_rcpt], cfg, message())
    assert r.code == 67, r.describe()
    [m] = server.wait_messages(1)
    assert m.recipients == [BOB]


def test_size_limit_exit_69_before_mail(server, run_mailcar):
    cfg = account(server, 'best')
    size = [k for k in server.ehlo(port_of(cfg)) if k == 'SIZE']
    if not size:
        pytest.skip('%s does not advertise SIZE' % server.name)
    big = message(body=(b'x' * 999 + b'\n') * (server.size_limit // 1000 + 10))
    r = send(run_mailcar, server, ['-v', BOB], cfg, big, timeout=20)
    assert r.code == 69, r.describe()
    assert b'--> MAIL FROM' not in r.stderr
    server.assert_no_messages(0.3)
