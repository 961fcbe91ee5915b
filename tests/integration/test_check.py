"""mailcar --check: connect, EHLO, STARTTLS, AUTH, QUIT and say what worked,
never MAIL; the first failure is the one-line error with send mode's exit
status.  Against the fault server, and once against Postfix + Dovecot."""

import os


CREDS = ('alice', 's3cret')


def starttls_cfg(certs, *extra):
    return ['host localhost', 'tls on', 'tls_starttls on', 'tls_trust_file %s' % certs.ca] + \
        list(extra)


def auth_cfg(certs, password=CREDS[1]):
    return starttls_cfg(certs, 'auth on', 'user %s' % CREDS[0], 'password %s' % password)


def responder(**kw):
    settings = {'caps': ['PIPELINING', 'SIZE 10485760', 'STARTTLS', 'AUTH PLAIN LOGIN']}
    settings.update(kw)
    return settings


def commands(srv):
    lines = [l.decode('utf-8', 'replace') if isinstance(l, bytes) else l for l in srv.lines]
    return [l.split(None, 1)[0].upper() for l in lines if l.strip()]


def test_all_well(faultserver, run_mailcar, tls_certs):
    srv = faultserver(responder=dict(responder(), credentials=CREDS))
    r = run_mailcar(['--check'], server=srv, config=auth_cfg(tls_certs))
    assert r.code == 0, r.describe() + srv.report()
    out = r.stdout.decode()
    assert 'ok: connected to localhost port %d' % srv.port in out
    assert 'ok: TLS established' in out
    assert "ok: the certificate is valid for 'localhost'" in out
    assert "user 'alice' logged in" in out
    assert 'up to 10485760 bytes' in out
    assert out.rstrip().endswith('ok: all checks passed; nothing was sent')
    srv.wait_idle()
    cmds = commands(srv)
    assert cmds[:3] == ['EHLO', 'STARTTLS', 'EHLO'] and 'AUTH' in cmds and cmds[-1] == 'QUIT'
    assert 'MAIL' not in cmds and 'RCPT' not in cmds and 'DATA' not in cmds
    assert CREDS[1].encode() not in r.stdout + r.stderr
    assert r.stderr == b'', r.describe()


def test_wrong_password(faultserver, run_mailcar, tls_certs):
    srv = faultserver(responder=dict(responder(), credentials=CREDS))
    r = run_mailcar(['--check'], server=srv, config=auth_cfg(tls_certs, 'wrong'))
    assert r.code == 77, r.describe()
    assert b'ok: TLS established' in r.stdout
    assert b'authentication failed' in r.stderr
    assert len(r.stderr.decode().splitlines()) == 1
    assert 'MAIL' not in commands(srv)


def test_untrusted_certificate(faultserver, run_mailcar, tls_certs):
    srv = faultserver(responder=responder())
    cfg = ['host localhost', 'tls on', 'tls_starttls on', 'auth off']   # system CAs only
    r = run_mailcar(['--check'], server=srv, config=cfg)
    assert r.code == 75, r.describe()
    assert b"TLS certificate of 'localhost' not accepted" in r.stderr
    assert b'ok: connected to localhost' in r.stdout
    assert b'ok: TLS established' not in r.stdout


def test_no_starttls_offered(faultserver, run_mailcar, tls_certs):
    srv = faultserver(responder=responder(caps=['PIPELINING']))
    r = run_mailcar(['--check'], server=srv, config=starttls_cfg(tls_certs, 'auth off'))
    assert r.code == 75, r.describe()
    assert b'does not offer STARTTLS' in r.stderr


def test_plain_relay_notes(faultserver, run_mailcar):
    srv = faultserver(responder=responder(caps=['PIPELINING', 'AUTH PLAIN']), tls=False)
    r = run_mailcar(['--check'], server=srv)      # conftest's account: tls off, auth off
    assert r.code == 0, r.describe()
    out = r.stdout.decode()
    assert "note: 'tls off'" in out
    assert "note: the server offers AUTH PLAIN but 'auth' is off" in out
    assert 'MAIL' not in commands(srv)


def test_connection_refused(run_mailcar, tmp_path):
    import socket
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    r = run_mailcar(['--check'], port=port)
    assert r.code == 75, r.describe()
    assert b'cannot connect to 127.0.0.1 port %d' % port in r.stderr
    assert b'ok: connected' not in r.stdout


def test_no_host(run_mailcar):
    r = run_mailcar(['--check'], config=['account default', 'from a@example.test'],
                    replace_config=True)
    assert r.code == 78, r.describe()
    assert b"no server configured: add 'host NAME'" in r.stderr


def test_bad_config_line(run_mailcar, faultserver):
    srv = faultserver(tls=False)
    r = run_mailcar(['--check'], server=srv, config=['hots example.org'])
    assert r.code == 78, r.describe()
    assert b"unknown key 'hots'" in r.stderr


def test_password_file_readable_by_others(run_mailcar, tmp_path, faultserver):
    srv = faultserver(tls=False)
    conf = tmp_path / 'open.conf'
    conf.write_text('account default\nhost 127.0.0.1\nport %d\ntls off\nuser a\npassword b\n'
                    % srv.port)
    os.chmod(conf, 0o644)
    r = run_mailcar(['-C', str(conf), '--check'], use_config=False)
    assert r.code == 78, r.describe()
    assert b'run: chmod 600' in r.stderr


def test_postfix(postfix, run_mailcar):
    cfg = ['account default', 'host localhost', 'port %d' % postfix.submission,
           'tls on', 'tls_starttls on', 'tls_trust_file %s' % postfix.ca,
           'user %s' % postfix.user, 'password %s' % postfix.password, 'timeout 10']
    postfix.mark()
    r = run_mailcar(['--check'], config=cfg, replace_config=True)
    assert r.code == 0, r.describe()
    assert b"logged in" in r.stdout and b'ok: TLS established' in r.stdout
    postfix.assert_no_messages(0.5)
