"""TLS behaviour against the fault server: --serverinfo, the session cache,
STARTTLS stripping and failures, and that no secret reaches argv, the
environment, -v output or the log file."""

import os
import stat
import subprocess
import time

import faultserver as fs

MSG = b'Subject: tls\n\nbody\n'


def starttls_server(faultserver, **kw):
    caps = kw.pop('caps', ['PIPELINING', 'STARTTLS', 'AUTH PLAIN LOGIN'])
    return faultserver(responder=fs.Responder(caps=caps, **kw))


def tls_config(certs, *extra):
    return ['tls on', 'tls_starttls on', 'tls_trust_file %s' % certs.ca, 'host localhost'] + list(extra)


def test_serverinfo_shows_chain_and_caps(faultserver, run_mailcar, tls_certs):
    srv = starttls_server(faultserver)
    r = run_mailcar(['--serverinfo'], server=srv, config=tls_config(tls_certs))
    assert r.code == 0, r.describe()
    out = r.stdout.decode()
    assert 'capabilities before STARTTLS' in out and 'STARTTLS' in out
    assert 'subject    CN=localhost' in out
    assert 'issuer     CN=mailcar test CA' in out
    assert 'key sha256' in out and 'valid to' in out
    assert 'verification: ok' in out
    assert 'MAIL FROM' not in ' '.join(srv.text_lines)


def test_serverinfo_shows_untrusted_certificate(faultserver, run_mailcar, tls_certs):
    srv = starttls_server(faultserver)
    r = run_mailcar(['-S'], server=srv, config=['tls on', 'host localhost'])
    assert r.code == 0, r.describe()
    out = r.stdout.decode()
    # The server sends only its own certificate, issued by a CA we do not know.
    assert 'verification: unable to verify the first certificate' in out
    assert 'sha256' in out


def test_session_cache_resumes(faultserver, run_mailcar, tls_certs, tmp_path):
    cache = tmp_path / 'tlscache'
    srv = starttls_server(faultserver)
    cfg = tls_config(tls_certs, 'tls_session_cache %s' % cache)
    first = run_mailcar(['-v', 'rcpt@example.test'], server=srv, config=cfg, stdin=MSG,
                        stop_server=False)
    assert first.code == 0, first.describe()
    files = list(cache.iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    second = run_mailcar(['-v', 'rcpt@example.test'], server=srv, config=cfg, stdin=MSG)
    assert second.code == 0, second.describe()
    assert b'session resumed' in second.stderr, second.describe()
    assert len(srv.messages) == 2


def test_session_cache_off(faultserver, run_mailcar, tls_certs, tmp_path):
    srv = starttls_server(faultserver)
    r = run_mailcar(['rcpt@example.test'], server=srv,
                    config=tls_config(tls_certs, 'tls_session_cache off'), stdin=MSG,
                    env={'XDG_CACHE_HOME': str(tmp_path / 'xdgcache')})
    assert r.code == 0, r.describe()
    assert not (tmp_path / 'xdgcache').exists()


def test_session_cache_ignores_foreign_file(faultserver, run_mailcar, tls_certs, tmp_path):
    cache = tmp_path / 'tlscache'
    srv = starttls_server(faultserver)
    cfg = tls_config(tls_certs, 'tls_session_cache %s' % cache)
    r = run_mailcar(['rcpt@example.test'], server=srv, config=cfg, stdin=MSG, stop_server=False)
    assert r.code == 0, r.describe()
    entry = next(cache.iterdir())
    os.chmod(entry, 0o644)   # readable by others: planted or leaked, never trusted
    r = run_mailcar(['-v', 'rcpt@example.test'], server=srv, config=cfg, stdin=MSG)
    assert r.code == 0, r.describe()
    assert b'session resumed' not in r.stderr


def test_starttls_stripped(faultserver, run_mailcar, tls_certs):
    srv = starttls_server(faultserver, caps=['PIPELINING', 'AUTH PLAIN'])
    r = run_mailcar(['rcpt@example.test'], server=srv,
                    config=tls_config(tls_certs, 'user u', 'password p'), stdin=MSG)
    assert r.code == 75, r.describe()
    assert b'does not offer STARTTLS' in r.stderr
    assert not any(l.startswith(('AUTH', 'MAIL')) for l in srv.text_lines)


def test_starttls_refused_454(faultserver, run_mailcar, tls_certs):
    srv = starttls_server(faultserver, overrides={'STARTTLS': '454 4.7.0 TLS not available'})
    r = run_mailcar(['rcpt@example.test'], server=srv, config=tls_config(tls_certs), stdin=MSG)
    assert r.code == 75, r.describe()
    assert b'454' in r.stderr


def test_handshake_interrupted(faultserver, run_mailcar, tls_certs):
    script = ('S: 220 fault.test ESMTP\nC: EHLO *\nS: 250-fault.test\\r\\n250 STARTTLS\n'
              'C: STARTTLS\nS: 220 go ahead\nSTALL 0.5\nCLOSE\n')
    srv = faultserver(script=script)
    r = run_mailcar(['rcpt@example.test'], server=srv, config=tls_config(tls_certs), stdin=MSG)
    assert r.code == 75, r.describe()
    assert b'TLS handshake' in r.stderr


def test_auth_appearing_only_after_tls_is_used(faultserver, run_mailcar, tls_certs):
    # Capabilities are read again after STARTTLS: AUTH absent before, present after.
    script = ('S: 220 fault.test ESMTP\nC: EHLO *\nS: 250-fault.test\\r\\n250 STARTTLS\n'
              'C: STARTTLS\nS: 220 go ahead\nTLS\nC: EHLO *\n'
              'S: 250-fault.test\\r\\n250-PIPELINING\\r\\n250 AUTH PLAIN\n'
              'C: AUTH PLAIN AHUAcA==\nS: 235 2.7.0 ok\nRESPONDER\n')
    srv = faultserver(script=script, responder=fs.Responder(caps=['PIPELINING']))
    r = run_mailcar(['rcpt@example.test'], server=srv,
                    config=tls_config(tls_certs, 'auth on', 'user u', 'password p'), stdin=MSG)
    assert r.code == 0, r.describe()
    assert srv.errors == [], srv.report()


def test_no_secret_in_argv_environ_or_output(faultserver, run_mailcar, tls_certs, tmp_path):
    secret = 'Sup3r-S3cret-Passw0rd'
    log = tmp_path / 'log'
    srv = starttls_server(faultserver, credentials=('u', secret),
                          overrides={'DATA-END': 'STALL 3 ; RAW 250 ok\r\n'})
    cfg = tls_config(tls_certs, 'user u', 'passwordeval "echo %s"' % secret, 'logfile %s' % log)
    path, _ = run_mailcar.write_config(run_mailcar_default(srv.port) + cfg)
    p = subprocess.Popen([run_mailcar.binary, '-v', '-C', path, 'rcpt@example.test'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=run_mailcar.env())
    p.stdin.write(MSG)
    p.stdin.close()
    p.stdin = None
    time.sleep(1.5)   # the server is stalling at the end of data: look now
    with open('/proc/%d/cmdline' % p.pid, 'rb') as f:
        cmdline = f.read()
    with open('/proc/%d/environ' % p.pid, 'rb') as f:
        environ = f.read()
    with open('/proc/%d/limits' % p.pid) as f:
        core = [l for l in f if l.startswith('Max core file size')][0].split()
    assert core[4:6] == ['0', '0'], core    # no core file can hold the secret
    out, err = p.communicate(timeout=20)
    srv.wait_idle()
    srv.stop()
    assert p.returncode == 0, err
    import base64
    b64 = base64.b64encode(b'\0u\0' + secret.encode())
    for blob in (cmdline, environ, out, err, log.read_bytes()):
        assert secret.encode() not in blob
        assert b64 not in blob
    assert b'AUTH PLAIN <redacted>' in err


def run_mailcar_default(port):
    return ['account default', 'host 127.0.0.1', 'port %d' % port, 'from sender@example.test',
            'timeout 5']


def test_smtps_url_host(faultserver, run_mailcar, tls_certs):
    srv = faultserver(script='TLS\nRESPONDER', responder=fs.Responder(caps=['PIPELINING']))
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=['tls on', 'tls_trust_file %s' % tls_certs.ca,
                            'host smtps://localhost:%d' % srv.port, 'port 1'])
    assert r.code == 0, r.describe()
    assert len(srv.messages) == 1


def test_smtp_url_host_means_starttls(faultserver, run_mailcar, tls_certs):
    srv = starttls_server(faultserver)
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=['tls on', 'tls_starttls off', 'tls_trust_file %s' % tls_certs.ca,
                            'host smtp://localhost:%d' % srv.port])
    assert r.code == 0, r.describe()
    assert 'STARTTLS' in srv.text_lines


def test_bad_url_host(run_mailcar):
    for host in ('imap://x', 'smtps://', 'smtps://x:99999', 'smtps://[::1'):
        r = run_mailcar(['rcpt@example.test'], config=['host %s' % host], stdin=MSG)
        assert r.code == 78, r.describe()
        assert b"'host'" in r.stderr


def test_sni_sent(faultserver, run_mailcar, tls_certs):
    srv = starttls_server(faultserver)
    names = []
    srv.ssl_context.sni_callback = lambda sock, name, ctx: names.append(name)
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=tls_config(tls_certs, 'tls_host_override localhost', 'host 127.0.0.1'))
    assert r.code == 0, r.describe()
    assert names == ['localhost']


def test_session_cache_concurrent(faultserver, run_mailcar, tls_certs, tmp_path):
    cache = tmp_path / 'tlscache'
    srv = starttls_server(faultserver)
    path, _ = run_mailcar.write_config(run_mailcar_default(srv.port) + tls_config(
        tls_certs, 'tls_session_cache %s' % cache))
    procs = [subprocess.Popen([run_mailcar.binary, '-C', path, 'rcpt@example.test'],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=run_mailcar.env()) for _ in range(12)]
    for p in procs:
        p.stdin.write(MSG)
        p.stdin.close()
        p.stdin = None
    codes = [p.wait(timeout=30) for p in procs]
    srv.wait_idle(5)
    srv.stop()
    assert codes == [0] * 12, [p.stderr.read() for p in procs]
    assert len(srv.messages) == 12
    assert [f.name for f in cache.iterdir() if f.name.endswith('.tmp')] == []


def test_syslog_line_has_no_secret(faultserver, run_mailcar, tls_certs, tmp_path):
    """syslog on: one line per attempt reaches /dev/log (a socket of the
    test's own, bind-mounted in a private mount namespace), without secrets."""
    import socket
    if os.geteuid() != 0:
        import pytest
        pytest.skip('needs root for a private mount namespace')
    logsock = str(tmp_path / 'log.sock')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(logsock)
    s.settimeout(5)
    secret = 'Syslog-S3cret'
    srv = starttls_server(faultserver, credentials=('u', secret))
    path, _ = run_mailcar.write_config(run_mailcar_default(srv.port) + tls_config(
        tls_certs, 'user u', 'auth on', 'password %s' % secret, 'syslog LOG_MAIL'))
    # A private /dev: the machine's own device nodes bound in, plus our /dev/log.
    old = tmp_path / 'olddev'
    old.mkdir()
    shell = ('set -e; mount --rbind /dev "$1"; mount -t tmpfs tmpfs /dev; '
             'for f in null zero random urandom; do touch /dev/$f; mount --bind "$1/$f" /dev/$f; done; '
             'touch /dev/log; mount --bind "$0" /dev/log; shift; exec "$@"')
    p = subprocess.run(['unshare', '-m', 'sh', '-c', shell, logsock, str(old), run_mailcar.binary,
                        '-C', path, 'rcpt@example.test'], input=MSG, capture_output=True,
                       env=run_mailcar.env(), timeout=30)
    srv.wait_idle()
    srv.stop()
    assert p.returncode == 0, p.stderr
    line = s.recv(65536)
    s.close()
    assert b'mailcar[' in line and b'recipients=rcpt@example.test' in line
    assert b'exitcode=0' in line
    assert secret.encode() not in line
