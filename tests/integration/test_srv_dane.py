"""DNS discovery against the fake DNS server on loopback (dnsfake.py; never
the machine's resolver): `host srv:DOMAIN` (SRV order, RFC 2782 weights,
failover through the records, the error statuses), `--configure`, and
DANE with `tls_dane on` (a matching TLSA record, a mismatch, no AD bit).

The DNSSEC validation itself is not exercised here: the fake server sets
the AD bit as a validating resolver would, and glibc passes it on only with
`options trust-ad` in resolv.conf, which the tests write."""

import hashlib
import re
import subprocess

import pytest

import faultserver as fs
from dnsfake import dns, needs_fake_dns, resolver_prefix  # noqa: F401  (dns: a fixture)

MSG = b'Subject: srv\n\nbody\n'

pytestmark = needs_fake_dns


def run(run_mailcar, tmp_path, lines, args=('rcpt@example.test',), trust_ad=False, timeout=30):
    path, _ = run_mailcar.write_config(['account default', 'from s@example.test', 'timeout 5',
                                        'auth off'] + list(lines))
    argv = resolver_prefix(tmp_path, trust_ad) + [run_mailcar.binary, '-C', path] + list(args)
    return subprocess.run(argv, input=MSG, capture_output=True, env=run_mailcar.env(),
                          timeout=timeout)


def choices(stderr):
    return re.findall(rb'SRV choice (\S+) \d+ \d+ (\d+) (\S+)', stderr)


# --- host srv:DOMAIN ---------------------------------------------------------

def test_srv_failover_down_busy_up(dns, faultserver, run_mailcar, tmp_path):
    down = fs.free_port()
    busy = faultserver(responder=fs.Responder(greeting='421 4.3.2 too busy'), tls=False)
    up = faultserver(responder=fs.Responder(), tls=False)
    # Listed out of order: priority decides.
    dns.srv['_submission._tcp.fo.test'] = [(30, 0, up.port, 'relay3.fo.test'),
                                           (10, 0, down, 'relay1.fo.test'),
                                           (20, 0, busy.port, 'relay2.fo.test')]
    p = run(run_mailcar, tmp_path, ['host srv:fo.test', 'tls off'], ['-v', 'rcpt@example.test'])
    up.wait_idle()
    assert p.returncode == 0, p.stderr
    assert len(up.messages) == 1
    assert [c[2] for c in choices(p.stderr)] == [b'relay1.fo.test', b'relay2.fo.test',
                                                 b'relay3.fo.test']
    assert b'SRV record _submission 30 0 %d relay3.fo.test' % up.port in p.stderr
    assert b'smtp://relay1.fo.test:%d failed' % down in p.stderr
    assert b'421 4.3.2 too busy' in p.stderr
    assert ('_submissions._tcp.fo.test', 33) in dns.queries


def test_srv_submissions_before_submission(dns, faultserver, run_mailcar, tmp_path, tls_certs):
    tls = faultserver(script='TLS\nRESPONDER', responder=fs.Responder())
    plain = faultserver(responder=fs.Responder(), tls=False)
    dns.srv['_submissions._tcp.both.test'] = [(50, 0, tls.port, 'localhost')]
    dns.srv['_submission._tcp.both.test'] = [(0, 0, plain.port, 'localhost')]
    p = run(run_mailcar, tmp_path, ['host srv:both.test', 'tls_trust_file %s' % tls_certs.ca],
            ['-v', 'rcpt@example.test'])
    tls.wait_idle()
    assert p.returncode == 0, p.stderr
    assert len(tls.messages) == 1 and len(plain.messages) == 0
    assert [c[0] for c in choices(p.stderr)] == [b'_submissions', b'_submission']
    assert b'connected to localhost port %d, TLS' % tls.port in p.stderr


def test_srv_in_a_host_list(dns, faultserver, run_mailcar, tmp_path):
    up = faultserver(responder=fs.Responder(), tls=False)
    down = fs.free_port()
    dns.srv['_submission._tcp.list.test'] = [(1, 0, down, 'relay.list.test')]
    p = run(run_mailcar, tmp_path, ['host srv:list.test, 127.0.0.1', 'port %d' % up.port,
                                    'tls off'])
    up.wait_idle()
    assert p.returncode == 0, p.stderr
    assert len(up.messages) == 1


def test_srv_weights(dns, run_mailcar, tmp_path):
    # RFC 2782: the draw is in [0, 40]; "heavy" comes first 31 times in 41.
    a, b = fs.free_port(), fs.free_port()
    dns.srv['_submission._tcp.w.test'] = [(1, 30, a, 'heavy.w.test'),
                                          (1, 10, b, 'light.w.test'),
                                          (2, 50, b, 'last.w.test')]
    firsts = []
    for _ in range(60):
        p = run(run_mailcar, tmp_path, ['host srv:w.test', 'tls off'], ['-v', 'r@example.test'])
        assert p.returncode == 75, p.stderr
        order = [c[2] for c in choices(p.stderr)]
        assert sorted(order[:2]) == [b'heavy.w.test', b'light.w.test'] and \
            order[2] == b'last.w.test', order
        firsts.append(order[0])
    # Loose bounds: each fails with a probability below 1e-5.
    assert 30 <= firsts.count(b'heavy.w.test') <= 59, firsts


@pytest.mark.parametrize('domain,code,text', [
    ('gone.nx.test', 68, b"domain 'gone.nx.test' not found"),
    ('nosrv.test', 68, b"no SRV records for mail submission at 'nosrv.test'"),
    ('dot.test', 68, b"domain 'dot.test' says it offers no mail submission"),
    ('x.servfail.test', 75, b"looking up '_submission._tcp.x.servfail.test'"),
])
def test_srv_errors(dns, run_mailcar, tmp_path, domain, code, text):
    dns.srv['_submissions._tcp.dot.test'] = [(0, 0, 0, '.')]
    p = run(run_mailcar, tmp_path, ['host srv:%s' % domain, 'tls off'])
    assert p.returncode == code, p.stderr
    assert text in p.stderr, p.stderr
    assert p.stderr.count(b'\n') == 1, p.stderr


# --- --configure ----------------------------------------------------------

def configure(run_mailcar, tmp_path, address, *extra):
    argv = resolver_prefix(tmp_path) + [run_mailcar.binary, '--configure', address] + list(extra)
    return subprocess.run(argv, capture_output=True, env=run_mailcar.env(), timeout=30)


def test_configure_from_srv(dns, run_mailcar, tmp_path):
    dns.srv['_submissions._tcp.corp.test'] = [(10, 1, 465, 'mail.corp.test')]
    dns.srv['_submission._tcp.corp.test'] = [(10, 1, 587, 'mail.corp.test')]
    p = configure(run_mailcar, tmp_path, 'jo.doe@corp.test')
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert '\naccount corp.test\nhost srv:corp.test\ntls on\nauth on\n' in out
    assert '\nuser jo.doe@corp.test\n' in out and '\nfrom jo.doe@corp.test\n' in out
    assert '#   _submissions._tcp 10 1 465 mail.corp.test' in out
    assert 'host smtps://mail.corp.test:465' in out
    assert 'passwordeval "secret-tool lookup mailcar jo.doe@corp.test"' in out
    # The stanza is a valid configuration.
    cfg = tmp_path / 'generated'
    cfg.write_text(out)
    cfg.chmod(0o600)
    r = subprocess.run([run_mailcar.binary, '-C', str(cfg), '-a', 'corp.test', '--pretend'],
                       capture_output=True, env=run_mailcar.env(), timeout=30)
    assert r.returncode == 0, r.stderr
    assert b'srv:corp.test' in r.stdout


def test_configure_from_table(dns, run_mailcar, tmp_path):
    p = configure(run_mailcar, tmp_path, 'alice@GMail.com')
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert 'from mailcar\'s table of providers: no SRV records found' in out
    assert '\nhost smtp.gmail.com\nport 465\ntls on\ntls_starttls off\nauth plain\n' in out
    assert 'oauthbearer' in out and 'app password' in out
    assert '\nuser alice@GMail.com\n' in out
    p = configure(run_mailcar, tmp_path, 'bob@outlook.com')
    assert '\nhost smtp-mail.outlook.com\nport 587\ntls on\ntls_starttls on\nauth xoauth2\n' \
        in p.stdout.decode()


def test_configure_from_mx(dns, run_mailcar, tmp_path):
    dns.mx['ws.test'] = [(10, 'mx.backup.test'), (1, 'aspmx.l.google.com')]
    dns.mx['ms.test'] = [(0, 'ms-test.mail.protection.outlook.com')]
    p = configure(run_mailcar, tmp_path, 'ann@ws.test', '-v')
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert '(Google Workspace), from mailcar\'s table of providers: no SRV records; its MX ' \
        'is aspmx.l.google.com' in out
    assert '\naccount ws.test\nhost smtp.gmail.com\nport 465\n' in out
    assert b'mailcar: MX 1 aspmx.l.google.com' in p.stderr
    p = configure(run_mailcar, tmp_path, 'ben@ms.test')
    assert p.returncode == 0, p.stderr
    assert '\nhost smtp.office365.com\nport 587\ntls on\ntls_starttls on\nauth xoauth2\n' \
        in p.stdout.decode()


def test_configure_unknown_domain(dns, run_mailcar, tmp_path):
    dns.mx['unknown.test'] = [(10, 'mx.unknown.test')]
    p = configure(run_mailcar, tmp_path, 'bob@unknown.test')
    assert p.returncode == 69, p.stderr
    assert p.stdout == b''
    assert p.stderr.count(b'\n') == 1
    assert b"no SRV records for mail submission at 'unknown.test'" in p.stderr
    assert b'not in mailcar\'s table of providers' in p.stderr
    p = configure(run_mailcar, tmp_path, 'bob@x.servfail.test')
    assert p.returncode == 75, p.stderr


def test_configure_refuses_odd_addresses(run_mailcar, tmp_path):
    for bad in ('nobody', 'a@b@c', 'x"$(id)"@example.test', '@example.test', 'a@'):
        p = subprocess.run([run_mailcar.binary, '--configure', bad], capture_output=True,
                           env=run_mailcar.env(), timeout=30)
        assert p.returncode == 64, (bad, p.stderr)
        assert p.stdout == b''


# --- DANE -------------------------------------------------------------------

def spki_sha256(cert):
    pub = subprocess.run(['openssl', 'x509', '-in', cert, '-pubkey', '-noout'],
                         capture_output=True, check=True).stdout
    der = subprocess.run(['openssl', 'pkey', '-pubin', '-outform', 'DER'], input=pub,
                         capture_output=True, check=True).stdout
    return hashlib.sha256(der).digest()


def dane_run(dns, faultserver, run_mailcar, tmp_path, record, ad=True, trust_ad=True,
             extra=()):
    srv = faultserver(script='TLS?\nRESPONDER', responder=fs.Responder())
    if record is not None:
        dns.tlsa['_%d._tcp.localhost' % srv.port] = [record]
    dns.ad = ad
    p = run(run_mailcar, tmp_path, ['host localhost', 'port %d' % srv.port, 'tls_starttls off',
                                    'tls_dane on', 'tls_session_cache off'] + list(extra),
            ['-v', 'rcpt@example.test'], trust_ad=trust_ad)
    srv.wait_idle()
    return p, srv


def test_dane_match(dns, faultserver, run_mailcar, tmp_path, tls_certs):
    # No tls_trust_file: the test CA is unknown, only the TLSA record vouches.
    p, srv = dane_run(dns, faultserver, run_mailcar, tmp_path,
                      (3, 1, 1, spki_sha256(tls_certs.cert)))
    assert p.returncode == 0, p.stderr
    assert len(srv.messages) == 1
    assert b'DANE: 1 DNSSEC-validated TLSA record for _%d._tcp.localhost' % srv.port in p.stderr
    assert b'TLSA 3 1 1 ' + spki_sha256(tls_certs.cert).hex().encode() in p.stderr


def test_dane_mismatch_is_a_hard_failure(dns, faultserver, run_mailcar, tmp_path, tls_certs):
    # Even with the CA trusted: the TLSA records win.
    p, srv = dane_run(dns, faultserver, run_mailcar, tmp_path,
                      (3, 1, 1, spki_sha256(tls_certs.rogue_cert)),
                      extra=['tls_trust_file %s' % tls_certs.ca])
    assert p.returncode == 75, p.stderr
    assert len(srv.messages) == 0
    assert b"TLS certificate of 'localhost' does not match its DNSSEC-signed TLSA records" \
        in p.stderr


@pytest.mark.parametrize('ad,trust_ad', [(False, True), (True, False)])
def test_dane_without_ad_falls_back(dns, faultserver, run_mailcar, tmp_path, tls_certs, ad,
                                    trust_ad):
    # A record that would not match, ignored because nobody validated it.
    p, srv = dane_run(dns, faultserver, run_mailcar, tmp_path,
                      (3, 1, 1, spki_sha256(tls_certs.rogue_cert)), ad=ad, trust_ad=trust_ad,
                      extra=['tls_trust_file %s' % tls_certs.ca])
    assert p.returncode == 0, p.stderr
    assert b'TLSA records not DNSSEC-validated (no AD bit' in p.stderr
    assert b'usual certificate verification' in p.stderr


def test_dane_no_tlsa_falls_back(dns, faultserver, run_mailcar, tmp_path, tls_certs):
    p, srv = dane_run(dns, faultserver, run_mailcar, tmp_path, None,
                      extra=['tls_trust_file %s' % tls_certs.ca])
    assert p.returncode == 0, p.stderr
    assert b'DANE: no TLSA records for _%d._tcp.localhost' % srv.port in p.stderr
    assert any(q == ('_%d._tcp.localhost' % srv.port, 52) for q in dns.queries)
    # Without a trust anchor and without TLSA records the certificate is refused.
    p, srv = dane_run(dns, faultserver, run_mailcar, tmp_path, None)
    assert p.returncode == 75, p.stderr
    assert b'not accepted' in p.stderr


def test_dane_servfail_is_temporary(dns, faultserver, run_mailcar, tmp_path):
    p = run(run_mailcar, tmp_path, ['host mail.servfail.test', 'port 465', 'tls_starttls off',
                                    'tls_dane on'])
    assert p.returncode == 75, p.stderr
