"""SRV and DANE against a real validating resolver: Unbound on loopback
serving a zone signed at test time (dnsreal.py).  What dnsfake.py only
imitates is real here: the AD bit comes from DNSSEC validation, an unsigned
zone gets none, and a forged TLSA record in the signed zone is a SERVFAIL."""

import subprocess

import pytest

import faultserver as fs
from dnsfake import can_fake_dns, resolver_prefix
from dnsreal import Unbound, can_run_unbound
from test_srv_dane import spki_sha256

MSG = b'Subject: unbound\n\nbody\n'

_why = can_fake_dns() or can_run_unbound()
pytestmark = pytest.mark.skipif(_why is not None, reason=str(_why))


def run(run_mailcar, tmp_path, lines):
    path, _ = run_mailcar.write_config(['account default', 'from s@example.test', 'timeout 5',
                                        'auth off'] + list(lines))
    argv = resolver_prefix(tmp_path, trust_ad=True) + [run_mailcar.binary, '-C', path, '-v',
                                                       'rcpt@example.test']
    return subprocess.run(argv, input=MSG, capture_output=True, env=run_mailcar.env(), timeout=30)


def tls_server(faultserver):
    return faultserver(script='TLS?\nRESPONDER', responder=fs.Responder())


def test_srv_failover_through_a_signed_zone(faultserver, run_mailcar, tmp_path):
    down = fs.free_port()
    up = faultserver(responder=fs.Responder(), tls=False)
    records = ['relay1 IN A 127.0.0.1', 'relay2 IN A 127.0.0.1',
               '_submission._tcp IN SRV 20 0 %d relay2.signed.test.' % up.port,
               '_submission._tcp IN SRV 10 0 %d relay1.signed.test.' % down]
    with Unbound(tmp_path, signed=records):
        p = run(run_mailcar, tmp_path, ['host srv:signed.test', 'tls off'])
    up.wait_idle()
    assert p.returncode == 0, p.stderr
    assert len(up.messages) == 1
    assert b'smtp://relay1.signed.test:%d failed' % down in p.stderr
    assert b'SRV record _submission 10 0 %d relay1.signed.test (DNSSEC-validated)' % down \
        in p.stderr


def test_srv_missing_domain_and_records(run_mailcar, tmp_path):
    with Unbound(tmp_path):
        p = run(run_mailcar, tmp_path, ['host srv:nowhere.signed.test', 'tls off'])
        q = run(run_mailcar, tmp_path, ['host srv:signed.test', 'tls off'])
    assert p.returncode == 68, p.stderr
    assert b"domain 'nowhere.signed.test' not found" in p.stderr
    assert q.returncode == 68, q.stderr
    assert b"no SRV records for mail submission at 'signed.test'" in q.stderr


def dane(faultserver, run_mailcar, tmp_path, zone, key_of, extra=(), tamper=None):
    srv = tls_server(faultserver)
    records = ['mail IN A 127.0.0.1',
               '_%d._tcp.mail IN TLSA 3 1 1 %s' % (srv.port, spki_sha256(key_of).hex())]
    kw = {'signed': records} if zone == 'signed' else {'plain': records}
    host = 'mail.%s.test' % zone
    with Unbound(tmp_path, tamper=tamper, **kw):
        p = run(run_mailcar, tmp_path, ['host %s' % host, 'port %d' % srv.port,
                                        'tls_starttls off', 'tls_dane on'] + list(extra))
    srv.wait_idle()
    return p, srv


def test_dane_validated_match(faultserver, run_mailcar, tmp_path, tls_certs):
    # No trust anchor for the test CA: only the validated TLSA record vouches.
    p, srv = dane(faultserver, run_mailcar, tmp_path, 'signed', tls_certs.cert)
    assert p.returncode == 0, p.stderr
    assert len(srv.messages) == 1
    assert b'DNSSEC-validated TLSA record for _%d._tcp.mail.signed.test' % srv.port in p.stderr


def test_dane_validated_mismatch(faultserver, run_mailcar, tmp_path, tls_certs):
    p, srv = dane(faultserver, run_mailcar, tmp_path, 'signed', tls_certs.rogue_cert,
                  extra=['tls_trust_file %s' % tls_certs.ca, 'tls_host_override localhost'])
    assert p.returncode == 75, p.stderr
    assert len(srv.messages) == 0
    assert b'does not match its DNSSEC-signed TLSA records' in p.stderr


def test_dane_unsigned_zone_falls_back(faultserver, run_mailcar, tmp_path, tls_certs):
    p, srv = dane(faultserver, run_mailcar, tmp_path, 'plain', tls_certs.rogue_cert,
                  extra=['tls_trust_file %s' % tls_certs.ca, 'tls_host_override localhost'])
    assert p.returncode == 0, p.stderr
    assert b'TLSA records not DNSSEC-validated (no AD bit' in p.stderr


def test_dane_forged_record_is_temporary(faultserver, run_mailcar, tmp_path, tls_certs):
    def forge(text):
        # Change the TLSA data after signing: the signature no longer verifies.
        out = []
        for line in text.splitlines():
            f = line.split()
            if len(f) > 4 and f[3] == 'TLSA':
                line = line[:-4] + ('0000' if not line.endswith('0000') else '1111')
            out.append(line)
        return '\n'.join(out) + '\n'
    p, srv = dane(faultserver, run_mailcar, tmp_path, 'signed', tls_certs.cert, tamper=forge)
    assert p.returncode == 75, p.stderr
    assert len(srv.messages) == 0
    assert b'DANE: looking up' in p.stderr and b'temporary DNS failure' in p.stderr
