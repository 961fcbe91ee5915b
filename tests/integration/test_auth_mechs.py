"""SASL mechanisms on the wire: the exact bytes mailcar sends for XOAUTH2,
OAUTHBEARER, CRAM-MD5 and EXTERNAL, and full SCRAM-SHA-1/-256 exchanges
(with and without -PLUS channel binding) against a small SCRAM server
written here that checks the client's proof and sends a real signature.
Postfix+Dovecot covers PLAIN, LOGIN, CRAM-MD5 and SCRAM in test_postfix.py."""

import base64
import hashlib
import hmac
import os
import socket
import ssl
import threading

import pytest

import faultserver as fs

MSG = b'Subject: auth\n\nbody\n'
TOKEN = 'ya29.a0-Example_OAuth-Token'


def b64(data):
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def tls_cfg(certs, *extra):
    # conftest's default account says 'auth off'; an 'auth' line here replaces it.
    auth = [e for e in extra if e.startswith('auth ')] or ['auth on']
    rest = [e for e in extra if not e.startswith('auth ')]
    return ['tls on', 'tls_starttls off', 'tls_trust_file %s' % certs.ca, 'host localhost',
            'user alice'] + auth + rest


def implicit(faultserver, steps):
    return faultserver(script='TLS\nS: 220 fault.test ESMTP\nC: EHLO *\n' + steps)


def test_xoauth2_bytes(faultserver, run_mailcar, tls_certs):
    ir = b64('user=alice\x01auth=Bearer %s\x01\x01' % TOKEN)
    srv = implicit(faultserver, 'S: 250-fault.test\\r\\n250 AUTH XOAUTH2 PLAIN\n'
                   'C: AUTH XOAUTH2 %s\nS: 235 2.7.0 ok\nRESPONDER\n' % ir)
    r = run_mailcar(['-v', 'rcpt@example.test'], server=srv, stdin=MSG,
                    config=tls_cfg(tls_certs, 'auth xoauth2', 'passwordeval "echo %s"' % TOKEN))
    assert r.code == 0, r.describe() + srv.report()
    assert srv.errors == [], srv.report()
    assert TOKEN.encode() not in r.stderr and ir.encode() not in r.stderr


def test_xoauth2_error_challenge(faultserver, run_mailcar, tls_certs):
    err = b64('{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}')
    ir = b64('user=alice\x01auth=Bearer %s\x01\x01' % TOKEN)
    srv = implicit(faultserver, 'S: 250-fault.test\\r\\n250 AUTH XOAUTH2\n'
                   'C: AUTH XOAUTH2 %s\nS: 334 %s\nC: \nS: 535 5.7.8 invalid token\n' % (ir, err))
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=tls_cfg(tls_certs, 'auth xoauth2', 'password %s' % TOKEN))
    assert r.code == 77, r.describe() + srv.report()
    assert srv.errors == [], srv.report()


def test_oauthbearer_bytes(faultserver, run_mailcar, tls_certs):
    srv = faultserver(script='TLS\nS: 220 x\nC: EHLO *\nS: 250-x\\r\\n250 AUTH OAUTHBEARER\n'
                             'C: re:AUTH OAUTHBEARER (.*)\nS: 235 ok\nRESPONDER\n')
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=tls_cfg(tls_certs, 'auth oauthbearer', 'password %s' % TOKEN))
    assert r.code == 0, r.describe() + srv.report()
    line = next(l for l in srv.text_lines if l.startswith('AUTH OAUTHBEARER'))
    payload = base64.b64decode(line.split()[2])
    assert payload == ('n,a=alice,\x01host=localhost\x01port=%d\x01auth=Bearer %s\x01\x01'
                       % (srv.port, TOKEN)).encode()


def test_oauth_never_chosen_automatically(faultserver, run_mailcar, tls_certs):
    srv = implicit(faultserver, 'S: 250-fault.test\\r\\n250 AUTH XOAUTH2 OAUTHBEARER\n')
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=tls_cfg(tls_certs, 'auth on', 'password x'))
    assert r.code == 69, r.describe()
    assert b'no authentication mechanism in common' in r.stderr


def test_cram_md5_bytes(faultserver, run_mailcar, tls_certs):
    chal = b'<1896.697170952@postoffice.example.net>'
    digest = hmac.new(b'tanstaaftanstaaf', chal, hashlib.md5).hexdigest()
    srv = implicit(faultserver, 'S: 250-fault.test\\r\\n250 AUTH CRAM-MD5\n'
                   'C: AUTH CRAM-MD5\nS: 334 %s\nC: %s\nS: 235 ok\nRESPONDER\n'
                   % (b64(chal), b64('alice ' + digest)))
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=tls_cfg(tls_certs, 'password tanstaaftanstaaf'))
    assert r.code == 0, r.describe() + srv.report()
    assert srv.errors == [], srv.report()


def test_malformed_challenge(faultserver, run_mailcar, tls_certs):
    srv = implicit(faultserver, 'S: 250-fault.test\\r\\n250 AUTH CRAM-MD5\n'
                   'C: AUTH CRAM-MD5\nS: 334 !!!not-base64!!!\n')
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=tls_cfg(tls_certs, 'password x'))
    assert r.code == 76, r.describe()
    assert b'malformed AUTH challenge' in r.stderr


def test_auth_454_is_temporary(faultserver, run_mailcar, tls_certs):
    srv = implicit(faultserver, 'S: 250-fault.test\\r\\n250 AUTH PLAIN\n'
                   'C: AUTH PLAIN *\nS: 454 4.7.0 temporary authentication failure\n')
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=tls_cfg(tls_certs, 'password x'))
    assert r.code == 75, r.describe()


def test_forced_mechanism_not_offered(faultserver, run_mailcar, tls_certs):
    srv = implicit(faultserver, 'S: 250-fault.test\\r\\n250 AUTH PLAIN\n')
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=tls_cfg(tls_certs, 'auth cram-md5', 'password x'))
    assert r.code == 69, r.describe()
    assert b'does not offer AUTH CRAM-MD5' in r.stderr


def test_no_auth_offered(faultserver, run_mailcar, tls_certs):
    srv = implicit(faultserver, 'S: 250 fault.test\n')
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=tls_cfg(tls_certs, 'password x'))
    assert r.code == 69, r.describe()
    assert b"set 'auth off'" in r.stderr


def test_explicit_mechanism_never_in_clear(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(caps=['AUTH PLAIN LOGIN']), tls=False)
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=['auth login', 'user alice', 'password x'])
    assert r.code == 78, r.describe()
    assert b'unencrypted' in r.stderr
    assert not any(l.startswith('AUTH') for l in srv.text_lines)


def test_external_with_client_cert(faultserver, run_mailcar, tls_certs, tmp_path):
    # A client certificate signed by the test CA; the server asks for it.
    d = str(tmp_path)
    ossl = lambda *a: __import__('subprocess').run(('openssl',) + a, cwd=d, check=True,
                                                  capture_output=True)
    ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
         '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=alice')
    ossl('x509', '-req', '-in', 'client.csr', '-CA', tls_certs.ca, '-CAkey',
         os.path.join(tls_certs.dir, 'ca.key'), '-set_serial', '7', '-days', '2',
         '-out', 'client.pem')
    srv = implicit(faultserver, 'S: 250-fault.test\\r\\n250 AUTH EXTERNAL PLAIN\n'
                   'C: AUTH EXTERNAL =\nS: 235 ok\nRESPONDER\n')
    srv.ssl_context.verify_mode = ssl.CERT_REQUIRED
    srv.ssl_context.load_verify_locations(tls_certs.ca)
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=tls_cfg(tls_certs, 'tls_cert_file %s/client.pem' % d,
                                   'tls_key_file %s/client.key' % d))
    assert r.code == 0, r.describe() + srv.report()
    assert srv.errors == [], srv.report()


# --- SCRAM against a verifying server ----------------------------------------

class ScramServer:
    """Implicit-TLS SMTP server that speaks just enough to run one SCRAM exchange."""

    def __init__(self, certs, mech, password, tls12=False, iterations=4096, tamper=False):
        self.mech, self.password, self.iterations, self.tamper = mech, password, iterations, tamper
        self.hash = hashlib.sha256 if 'SHA-256' in mech else hashlib.sha1
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs.cert, certs.key)
        if tls12:
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        self.ctx = ctx
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            conn, _ = self.sock.accept()
            conn.settimeout(10)
            s = self.ctx.wrap_socket(conn, server_side=True)
            f = s.makefile('rwb')
            self.result = self.session(s, f)
        except Exception as e:   # noqa: BLE001 - reported to the test
            self.error = repr(e)

    def send(self, f, line):
        f.write(line.encode() + b'\r\n')
        f.flush()

    def recv(self, f):
        return f.readline().rstrip(b'\r\n').decode()

    def session(self, s, f):
        H = self.hash
        self.send(f, '220 scram.test ESMTP')
        self.recv(f)
        offered = self.mech if self.mech.endswith('PLUS') else self.mech + ' PLAIN'
        self.send(f, '250-scram.test\r\n250 AUTH %s' % offered)
        words = self.recv(f).split()
        assert words[:2] == ['AUTH', self.mech], words
        client_first = base64.b64decode(words[2]).decode()
        gs2, _, bare = client_first.partition(',,')
        gs2 += ',,'
        attrs = dict(a.split('=', 1) for a in bare.split(','))
        salt = os.urandom(16)
        snonce = attrs['r'] + base64.b64encode(os.urandom(12)).decode()
        server_first = 'r=%s,s=%s,i=%d' % (snonce, base64.b64encode(salt).decode(), self.iterations)
        self.send(f, '334 ' + b64(server_first))
        client_final = base64.b64decode(self.recv(f)).decode()
        without_proof, _, proof = client_final.rpartition(',p=')
        cattrs = dict(a.split('=', 1) for a in without_proof.split(','))
        cbind = base64.b64decode(cattrs['c'])
        if self.mech.endswith('PLUS'):
            expect = gs2.encode() + s.get_channel_binding('tls-unique')
            assert gs2.startswith('p=tls-unique'), gs2
        else:
            expect = gs2.encode()
        if cbind != expect:
            self.send(f, '535 5.7.8 channel binding mismatch')
            return 'cbind-mismatch'
        salted = hashlib.pbkdf2_hmac(H().name, self.password.encode(), salt, self.iterations)
        ckey = hmac.new(salted, b'Client Key', H).digest()
        skey = hmac.new(salted, b'Server Key', H).digest()
        auth_msg = ','.join([bare, server_first, without_proof]).encode()
        csig = hmac.new(H(ckey).digest(), auth_msg, H).digest()
        got = bytes(a ^ b for a, b in zip(base64.b64decode(proof), csig))
        if H(got).digest() != H(ckey).digest():
            self.send(f, '535 5.7.8 bad proof')
            return 'bad-proof'
        ssig = hmac.new(skey, auth_msg, H).digest()
        if self.tamper:
            ssig = bytes([ssig[0] ^ 1]) + ssig[1:]
        self.send(f, '334 ' + b64('v=' + base64.b64encode(ssig).decode()))
        if self.recv(f) != '':
            return 'no-empty-response'
        self.send(f, '235 2.7.0 ok')
        line = self.recv(f)
        if line.startswith('QUIT') or line == '':
            return 'authenticated'
        # Take the message.
        self.send(f, '250 ok')
        while True:
            line = self.recv(f)
            if line == 'DATA':
                self.send(f, '354 go')
                while self.recv(f) != '.':
                    pass
                self.send(f, '250 queued')
            elif line.startswith('QUIT') or line == '':
                self.send(f, '221 bye')
                return 'authenticated'
            else:
                self.send(f, '250 ok')


@pytest.mark.parametrize('mech,tls12', [('SCRAM-SHA-256', False), ('SCRAM-SHA-1', False),
                                        ('SCRAM-SHA-256-PLUS', True), ('SCRAM-SHA-1-PLUS', True)])
def test_scram_exchange(run_mailcar, tls_certs, mech, tls12):
    srv = ScramServer(tls_certs, mech, 'pencil-9', tls12=tls12)
    r = run_mailcar(['rcpt@example.test'], port=srv.port, stdin=MSG,
                    config=tls_cfg(tls_certs, 'auth on', 'password pencil-9'))
    srv.thread.join(10)
    assert srv.error is None, srv.error
    assert srv.result == 'authenticated', (srv.result, r.describe())
    assert r.code == 0, r.describe()


def test_scram_wrong_password(run_mailcar, tls_certs):
    srv = ScramServer(tls_certs, 'SCRAM-SHA-256', 'pencil-9')
    r = run_mailcar(['rcpt@example.test'], port=srv.port, stdin=MSG,
                    config=tls_cfg(tls_certs, 'password wrong'))
    srv.thread.join(10)
    assert srv.result == 'bad-proof'
    assert r.code == 77, r.describe()


def test_scram_server_signature_checked(run_mailcar, tls_certs):
    srv = ScramServer(tls_certs, 'SCRAM-SHA-256', 'pencil-9', tamper=True)
    r = run_mailcar(['rcpt@example.test'], port=srv.port, stdin=MSG,
                    config=tls_cfg(tls_certs, 'password pencil-9'))
    srv.thread.join(10)
    assert r.code == 76, r.describe()
    assert b'server signature does not verify' in r.stderr
