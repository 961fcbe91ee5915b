"""mailcar against a real Postfix with Dovecot SASL (tests/servers/pf.py):
STARTTLS and implicit TLS with the throwaway CA, every password mechanism
Dovecot offers, bad certificates, pinning, refused recipients, size limits,
8BITMIME, SMTPUTF8, CHUNKING, and the bytes as delivered."""

import hashlib
import re
import ssl
import subprocess

import pytest

from postfix_server import postfix  # noqa: F401  (the fixture)

BODY = (b'Line one\n.leading dot\n..two dots\n\n'
        b'last line without special things\n')


def message(subject='postfix test', extra=b''):
    return (b'From: Alice <alice@example.test>\nTo: Bob <bob@example.test>\n'
            b'Subject: ' + subject.encode() + b'\n' + extra + b'\n' + BODY)


def account(pf, port, *extra, tls='starttls', auth=True):
    lines = ['account default', 'host localhost', 'port %d' % port, 'from alice@example.test',
             'timeout 10', 'tls_trust_file %s' % pf.ca]
    if tls == 'off':
        lines += ['tls off']
    else:
        lines += ['tls on', 'tls_starttls %s' % ('on' if tls == 'starttls' else 'off')]
    if auth:
        lines += ['user %s' % pf.user, 'password %s' % pf.password]
    else:
        lines += ['auth off']
    return lines + list(extra)


def run(run_mailcar, pf, args, cfg, stdin=None, **kw):
    pf.mark()
    return run_mailcar(args, config=cfg, replace_config=True,
                       stdin=message() if stdin is None else stdin, **kw)


@pytest.fixture(autouse=True)
def settle(postfix):
    """Deliveries land ~50 ms after the server's 250: let a test's late ones
    arrive before the next test marks its starting point."""
    yield
    import time
    time.sleep(0.15)
    postfix.mark()


def delivered_body(m):
    return m.data.split(b'\n\n', 1)[1]


def test_starttls_auth_delivers_exact_bytes(postfix, run_mailcar):
    r = run(run_mailcar, postfix, ['-v', 'bob@example.test'], account(postfix, postfix.submission))
    assert r.code == 0, r.describe()
    [m] = postfix.wait_messages(1)
    assert m.sender == 'alice@example.test'
    assert m.recipients == ['bob@example.test']
    assert delivered_body(m) == BODY
    head = m.headers().decode()
    assert 'Subject: postfix test' in head
    assert re.search(r'^Message-ID: <[0-9a-f]{32}@', head, re.M)
    assert re.search(r'^Date: ', head, re.M)
    assert b'STARTTLS' in r.stderr and b'<redacted>' in r.stderr
    assert postfix.password.encode() not in r.stderr


@pytest.mark.parametrize('mech', ['plain', 'login', 'cram-md5', 'scram-sha-1', 'scram-sha-256'])
def test_each_mechanism(postfix, run_mailcar, mech):
    r = run(run_mailcar, postfix, ['-v', 'bob@example.test'],
            account(postfix, postfix.submission, 'auth %s' % mech))
    assert r.code == 0, r.describe()
    assert ('--> AUTH %s' % mech.upper()).encode() in r.stderr
    postfix.wait_messages(1)


def test_auto_picks_strongest(postfix, run_mailcar):
    r = run(run_mailcar, postfix, ['-v', 'bob@example.test'],
            account(postfix, postfix.submission, 'auth on'))
    assert r.code == 0, r.describe()
    offered = re.search(rb'<-- 250-AUTH (.*)', r.stderr).group(1).split()
    used = re.search(rb'--> AUTH (\S+)', r.stderr).group(1)
    if b'SCRAM-SHA-256' in offered:
        assert used == b'SCRAM-SHA-256'
    postfix.wait_messages(1)


def test_implicit_tls(postfix, run_mailcar):
    r = run(run_mailcar, postfix, ['bob@example.test'],
            account(postfix, postfix.submissions, tls='implicit'))
    assert r.code == 0, r.describe()
    [m] = postfix.wait_messages(1)
    assert delivered_body(m) == BODY


def test_wrong_password(postfix, run_mailcar):
    cfg = [l for l in account(postfix, postfix.submission) if not l.startswith('password')]
    r = run(run_mailcar, postfix, ['bob@example.test'], cfg + ['password wrong-one'])
    assert r.code == 77, r.describe()
    assert b'authentication failed: 535' in r.stderr
    postfix.assert_no_messages(0.5)


@pytest.mark.parametrize('port_name,why', [('selfsigned', b'self-signed certificate'),
                                           ('expired', b'certificate has expired'),
                                           ('wrongname', b'hostname mismatch')])
def test_bad_certificates_refused(postfix, run_mailcar, port_name, why):
    r = run(run_mailcar, postfix, ['bob@example.test'],
            account(postfix, getattr(postfix, port_name)))
    assert r.code == 75, r.describe()
    assert b"TLS certificate of 'localhost' not accepted" in r.stderr
    assert why in r.stderr, r.stderr
    assert b'AUTH' not in r.stderr
    postfix.assert_no_messages(0.3)


def fingerprints(pem_path):
    der = ssl.PEM_cert_to_DER_cert(open(pem_path).read())
    pub = subprocess.run(['openssl', 'x509', '-in', pem_path, '-pubkey', '-noout'],
                         capture_output=True, check=True).stdout
    key = subprocess.run(['openssl', 'pkey', '-pubin', '-outform', 'DER'], input=pub,
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).hexdigest(), hashlib.sha256(key).hexdigest()


def served_cert(port):
    pem = ssl.get_server_certificate(('127.0.0.1', port))
    return pem


def test_pin_on_selfsigned(postfix, run_mailcar, tmp_path):
    # A self-signed certificate fails verification, but a pin trusts it.
    pem = tmp_path / 'leaf.pem'
    out = subprocess.run(['openssl', 's_client', '-connect', '127.0.0.1:%d' % postfix.selfsigned,
                          '-starttls', 'smtp', '-servername', 'localhost'], input=b'',
                         capture_output=True, timeout=20).stdout
    pem.write_bytes(re.search(rb'-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----', out,
                              re.S).group(0) + b'\n')
    cert_fp, key_fp = fingerprints(str(pem))
    r = run(run_mailcar, postfix, ['bob@example.test'],
            account(postfix, postfix.selfsigned, 'tls_fingerprint %s' % key_fp))
    assert r.code == 0, r.describe()
    postfix.wait_messages(1)
    postfix.assert_no_messages(0.1)
    r = run(run_mailcar, postfix, ['bob@example.test'],
            account(postfix, postfix.selfsigned, 'tls_fingerprint ' + ':'.join(['AB'] * 32)))
    assert r.code == 75, r.describe()
    assert b'does not match tls_fingerprint' in r.stderr


def test_rejected_and_accepted_recipients(postfix, run_mailcar):
    r = run(run_mailcar, postfix, ['bob@example.test', postfix.reject_rcpt],
            account(postfix, postfix.submission))
    assert r.code == 67, r.describe()
    assert ('<%s> refused: 550' % postfix.reject_rcpt).encode() in r.stderr
    [m] = postfix.wait_messages(1)
    assert m.recipients == ['bob@example.test']


def test_only_rejected_recipient(postfix, run_mailcar):
    r = run(run_mailcar, postfix, [postfix.reject_rcpt], account(postfix, postfix.submission))
    assert r.code == 67, r.describe()
    postfix.assert_no_messages(0.3)


def test_tempfail_recipient(postfix, run_mailcar):
    r = run(run_mailcar, postfix, [postfix.tempfail_rcpt], account(postfix, postfix.submission))
    assert r.code == 75, r.describe()


def test_size_limit_refused_before_mail(postfix, run_mailcar):
    big = message() + (b'x' * 999 + b'\n') * (postfix.size_limit // 1000 + 10)
    r = run(run_mailcar, postfix, ['-v', 'bob@example.test'], account(postfix, postfix.submission),
            stdin=big, timeout=20)
    assert r.code == 69, r.describe()
    assert b'the server accepts at most' in r.stderr
    assert b'--> MAIL FROM' not in r.stderr


def test_large_message_exact(postfix, run_mailcar):
    lines = [b'%06d %s' % (i, b'.' * (i % 90)) for i in range(60000)]
    body = b'\n'.join(lines) + b'\n'
    r = run(run_mailcar, postfix, ['bob@example.test'], account(postfix, postfix.submission),
            stdin=message() .split(b'\n\n')[0] + b'\n\n' + body, timeout=20)
    assert r.code == 0, r.describe()
    [m] = postfix.wait_messages(1, timeout=30)
    assert delivered_body(m) == body


def test_8bit_body(postfix, run_mailcar):
    stdin = message(extra=b'MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n'
                          b'Content-Transfer-Encoding: 8bit\n')
    stdin = stdin.replace(b'Line one', 'Zeile eins: Grüße'.encode())
    r = run(run_mailcar, postfix, ['-v', 'bob@example.test'], account(postfix, postfix.submission),
            stdin=stdin)
    assert r.code == 0, r.describe()
    assert b'BODY=8BITMIME' in r.stderr
    [m] = postfix.wait_messages(1)
    assert 'Grüße'.encode() in m.data


def test_smtputf8_recipient(postfix, run_mailcar):
    r = run(run_mailcar, postfix, ['-v', 'jürgen@example.test'], account(postfix, postfix.submission))
    assert r.code == 0, r.describe()
    assert b' SMTPUTF8' in r.stderr
    [m] = postfix.wait_messages(1)
    assert m.recipients == ['jürgen@example.test']


def test_chunking_used_when_offered(postfix, run_mailcar):
    r = run(run_mailcar, postfix, ['-v', 'bob@example.test'], account(postfix, postfix.submission))
    assert r.code == 0, r.describe()
    if b'CHUNKING' in r.stderr:
        assert b'--> BDAT ' in r.stderr
    [m] = postfix.wait_messages(1)
    assert delivered_body(m) == BODY


def test_plain_port_t_and_bcc(postfix, run_mailcar):
    stdin = message(extra=b'Cc: carol@example.test\nBcc: dave@example.test\n')
    r = run(run_mailcar, postfix, ['-t', '-i'], account(postfix, postfix.plain, tls='off', auth=False),
            stdin=stdin)
    assert r.code == 0, r.describe()
    [m] = postfix.wait_messages(1)
    assert sorted(m.recipients) == ['bob@example.test', 'carol@example.test', 'dave@example.test']
    assert b'dave@' not in m.headers()


def test_verify_mode(postfix, run_mailcar):
    r = run(run_mailcar, postfix, ['-bv', 'bob@example.test', postfix.reject_rcpt],
            account(postfix, postfix.submission))
    assert r.code == 67, r.describe()
    assert b'bob@example.test: deliverable' in r.stdout
    assert ('%s: refused' % postfix.reject_rcpt).encode() in r.stdout
    postfix.assert_no_messages(0.5)


def test_serverinfo(postfix, run_mailcar):
    r = run(run_mailcar, postfix, ['--serverinfo'], account(postfix, postfix.submission))
    assert r.code == 0, r.describe()
    out = r.stdout.decode()
    assert 'capabilities before STARTTLS' in out
    assert 'verification: ok' in out
    assert 'AUTH' in out.split('capabilities (over TLS)')[1]


def test_session_resumption(postfix, run_mailcar, tmp_path):
    cfg = account(postfix, postfix.submission, 'tls_session_cache %s' % (tmp_path / 'c'))
    r1 = run(run_mailcar, postfix, ['-v', 'bob@example.test'], cfg)
    assert r1.code == 0, r1.describe()
    postfix.wait_messages(1)
    r2 = run(run_mailcar, postfix, ['-v', 'bob@example.test'], cfg)
    assert r2.code == 0, r2.describe()
    assert b'session resumed' in r2.stderr, r2.describe()
    postfix.wait_messages(1)


def test_no_auth_without_tls(postfix, run_mailcar):
    r = run(run_mailcar, postfix, ['bob@example.test'],
            account(postfix, postfix.plain, tls='off') + ['auth on'])
    assert r.code == 78, r.describe()
    assert b'unencrypted' in r.stderr


def test_several_inputs_one_connection(postfix, run_mailcar, tmp_path):
    files = []
    for i in range(3):
        f = tmp_path / ('m%d.eml' % i)
        f.write_bytes(message('input %d' % i))
        files += ['--input', str(f)]
    r = run(run_mailcar, postfix, ['-v'] + files + ['bob@example.test'],
            account(postfix, postfix.submission))
    assert r.code == 0, r.describe()
    assert r.stderr.count(b'--> EHLO') == 2   # one connection: before and after STARTTLS
    ms = postfix.wait_messages(3)
    assert sorted(re.search(rb'Subject: (.*)', m.data).group(1) for m in ms
                  if b'Subject: input' in m.data) == [b'input 0', b'input 1', b'input 2']


def test_client_certificate_presented(postfix, run_mailcar):
    r = run(run_mailcar, postfix, ['bob@example.test'],
            account(postfix, postfix.submission,
                    'tls_cert_file %s' % postfix.certs['client.crt'],
                    'tls_key_file %s' % postfix.certs['client.key']))
    assert r.code == 0, r.describe()
    [m] = postfix.wait_messages(1)
    received = m.data.split(b'\nFrom:', 1)[0]
    assert b'(verified OK)' in received, received


def test_client_certificate_missing_file(postfix, run_mailcar, tmp_path):
    r = run(run_mailcar, postfix, ['bob@example.test'],
            account(postfix, postfix.submission, 'tls_cert_file %s' % (tmp_path / 'none.crt')))
    assert r.code == 78, r.describe()
    assert b'cannot load client certificate' in r.stderr
