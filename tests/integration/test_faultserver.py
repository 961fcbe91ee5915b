"""Self-tests of faultserver.py, driven by Python's smtplib and raw sockets.

These do not need mailcar: they check that the server scripts, records and
detects what the protocol cases rely on.
"""

import os
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import time

import pytest

import faultserver as fs

HERE = os.path.dirname(os.path.abspath(__file__))
MSG = b'From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nbody\r\n'


class Raw:
    """A bare client: send bytes, read whole replies."""

    def __init__(self, srv, timeout=5):
        self.s = socket.create_connection(srv.address, timeout=timeout)
        self.f = self.s.makefile('rb')

    def reply(self):
        out = b''
        while True:
            line = self.f.readline()
            out += line
            if not line or re.match(rb'^\d{3}( |\r?\n)', line):
                return out

    def send(self, data):
        self.s.sendall(data)

    def close(self):
        self.f.close()
        self.s.close()



def smtp(srv, **kw):
    return smtplib.SMTP(srv.host, srv.port, timeout=kw.pop('timeout', 5), **kw)


def finish(srv):
    assert srv.wait_idle(5), srv.report()
    srv.stop()


# --------------------------------------------------------------------------
# Parsing

def test_unescape_and_repeat():
    assert fs.unescape(r'a\r\nb\tc\0d\\e\x41\[') == b'a\r\nb\tc\0d\\eA['
    assert fs.unescape('%repeat[3 x ab\\r\\n]%') == b'ab\r\n' * 3
    assert fs.unescape(r'\d+ stays') == b'\\d+ stays'
    assert fs.unescape('caf\u00e9') == 'caf\u00e9'.encode('utf-8')


def test_parse_script():
    conns = fs.parse_script('''
        # a comment
        S: 220 hi
        SRAW: 250-x\\r\\n
        C: EHLO *
        C?: re:^QUIT$
        DATA
        DATA?
        BDAT
        TLS?
        DRIP 0.5: 250 ok
        DRIPRAW 0.1: x
        STALL 1.5
        STALL forever
        TIMEOUT 3
        RESPONDER
        NEXT
        RESET
        CLOSE
        EOF
    ''')
    assert len(conns) == 2
    kinds = [type(s).__name__ for s in conns[0]]
    assert kinds == ['Send', 'Send', 'Expect', 'Expect', 'Data', 'Data', 'Bdat', 'Tls', 'Send',
                     'Send', 'Stall', 'Stall', 'Timeout', 'Respond']
    assert conns[0][0].data == b'220 hi\r\n'
    assert conns[0][1].data == b'250-x\r\n'
    assert conns[0][3].optional and conns[0][5].optional and conns[0][7].optional
    assert conns[0][8].drip == 0.5 and conns[0][8].data == b'250 ok\r\n'
    assert conns[0][9].data == b'x'
    assert conns[0][11].seconds is None
    assert conns[1][0].reset and not conns[1][1].reset
    with pytest.raises(ValueError, match='line 2'):
        fs.parse_script('S: 220\nBOGUS step')
    with pytest.raises(ValueError):
        fs.parse_script('STALL soon')


def test_parse_responder():
    r = fs.Responder.parse('''
        caps: PIPELINING, SIZE 1000, AUTH PLAIN LOGIN
        greeting: 554 go away
        rcpt X@Example.Test: 550 5.1.1 unknown
        MAIL: 452 full
        DATA-END: RAW 250-part ; CLOSE
        credentials: user secret
    ''')
    assert r.caps == ['PIPELINING', 'SIZE 1000', 'AUTH PLAIN LOGIN']
    assert r.size_limit == 1000 and r.cap('auth') == 'PLAIN LOGIN'
    assert r.greeting == '554 go away'
    assert r.rcpt == {'x@example.test': '550 5.1.1 unknown'}
    assert r.overrides == {'MAIL': '452 full', 'DATA-END': 'RAW 250-part ; CLOSE'}
    assert r.credentials == ('user', 'secret')
    assert fs.Responder.parse('caps:').caps == []
    with pytest.raises(ValueError):
        fs.Responder.parse('frobnicate: yes')


def test_unstuff():
    assert fs.unstuff(b'a\r\n..b\r\n.\r\n') == b'a\r\n.b\r\n'
    assert fs.unstuff(b'.\r\n') == b''


# --------------------------------------------------------------------------
# Scripted dialogues (smtplib sends its verbs in lower case; C: globs are
# case-sensitive)

SCRIPT = '''
S: 220 fault.test ESMTP
C: ehlo *
S: 250-fault.test\\r\\n250-8BITMIME\\r\\n250 SIZE 10000
C: re:mail FROM:<a@example\\.test> size=\\d+
S: 250 2.1.0 ok
C: rcpt TO:<b@example.test>
S: 250 2.1.5 ok
C: data
S: 354 go
DATA
S: 250 2.0.0 queued
C: quit
S: 221 bye
'''


def test_script_transcript_is_byte_exact(faultserver):
    srv = faultserver(SCRIPT)
    c = smtp(srv, local_hostname='client.test')
    c.ehlo()
    assert c.has_extn('size') and c.has_extn('8bitmime')
    assert c.sendmail('a@example.test', ['b@example.test'], MSG) == {}
    c.quit()
    finish(srv)
    assert srv.errors == [] and srv.violations == []
    assert srv.lines == [b'ehlo client.test\r\n',
                         b'mail FROM:<a@example.test> size=%d\r\n' % len(MSG),
                         b'rcpt TO:<b@example.test>\r\n', b'data\r\n', b'quit\r\n']
    assert srv.data == [MSG + b'.\r\n']
    assert srv.messages == [MSG]
    conn = srv.connections[0]
    assert conn.client_bytes == b''.join(srv.lines[:4]) + MSG + b'.\r\n' + b'quit\r\n'
    assert conn.server_bytes.startswith(b'220 fault.test ESMTP\r\n250-fault.test\r\n')
    assert conn.server_bytes.endswith(b'221 bye\r\n')
    assert conn.caps == {'8BITMIME': '', 'SIZE': '10000'}
    rep = srv.report()
    assert 'C: ehlo client.test\\r\\n' in rep and 'S: 221 bye\\r\\n' in rep


def test_dot_stuffing_captured_raw(faultserver):
    srv = faultserver('S: 220 hi\nC: helo *\nS: 250 ok\nC: mail *\nS: 250 ok\nC: rcpt *\n'
                      'S: 250 ok\nC: data\nS: 354 go\nDATA\nS: 250 ok\nC: quit\nS: 221 bye')
    c = smtp(srv)
    c.helo('x')
    c.sendmail('a@example.test', ['b@example.test'], b'Subject: x\r\n\r\n.\r\n..two\r\nend')
    c.quit()
    finish(srv)
    assert srv.data == [b'Subject: x\r\n\r\n..\r\n...two\r\nend\r\n.\r\n']
    assert srv.messages == [b'Subject: x\r\n\r\n.\r\n..two\r\nend\r\n']
    assert srv.errors == [] and srv.violations == []


def test_mismatch_is_an_error_and_answered_500(faultserver):
    srv = faultserver('S: 220 hi\nC: helo *\nS: 250 never')
    c = smtp(srv)
    code, _ = c.ehlo('x')
    assert code == 500
    finish(srv)
    assert len(srv.errors) == 1 and 'helo *' in srv.errors[0] and 'ehlo x' in srv.errors[0]


def test_regex_expectation(faultserver):
    srv = faultserver('S: 220 hi\nC: re:(?i)ehlo [a-z.]+\nS: 250 ok\nC: quit\nS: 221 bye')
    c = smtp(srv, local_hostname='abc.test')
    c.ehlo()
    c.quit()
    finish(srv)
    assert srv.errors == []


def test_client_closing_early_is_an_error_unless_optional(faultserver):
    srv = faultserver('S: 220 hi\nC: EHLO *\nS: 250 ok')
    Raw(srv).close()
    finish(srv)
    assert len(srv.errors) == 1 and 'closed' in srv.errors[0]

    srv = faultserver('S: 554 no\nC?: QUIT\nS: 221 bye')
    r = Raw(srv)
    assert r.reply().startswith(b'554')
    r.close()
    finish(srv)
    assert srv.errors == []


def test_extra_bytes_after_script_are_an_error(faultserver):
    srv = faultserver('S: 220 hi', linger=1.0)
    r = Raw(srv)
    r.reply()
    r.send(b'NOOP\r\n')
    time.sleep(0.1)
    r.close()
    finish(srv)
    assert any('after the script ended' in e for e in srv.errors)
    assert srv.lines == [b'NOOP\r\n']


def test_eof_step(faultserver):
    srv = faultserver('S: 220 hi\nEOF')
    r = Raw(srv)
    r.reply()
    r.close()
    finish(srv)
    assert srv.errors == []
    srv = faultserver('S: 220 hi\nEOF')
    r = Raw(srv)
    r.reply()
    r.send(b'EHLO x\r\n')
    time.sleep(0.1)
    r.close()
    finish(srv)
    assert any('expected the client to close' in e for e in srv.errors)


def test_timeout_step(faultserver):
    srv = faultserver('TIMEOUT 0.3\nS: 220 hi\nC: EHLO *')
    r = Raw(srv)
    r.reply()
    finish(srv)
    r.close()
    assert any('timed out after 0.3s' in e for e in srv.errors)


def test_multiline_replies(faultserver):
    srv = faultserver('S: 220-fault.test\\r\\n220-second\\r\\n220 third\nC: ehlo *\n'
                      'S: 250-fault.test\\r\\n250-PIPELINING\\r\\n250-SIZE 5000\\r\\n250 DSN\n'
                      'C: quit\nS: 221 bye')
    c = smtp(srv)
    c.ehlo()
    assert c.has_extn('pipelining') and c.has_extn('dsn') and c.esmtp_features['size'] == '5000'
    c.quit()
    finish(srv)
    assert srv.errors == [] and srv.violations == []


def test_huge_and_malformed_replies(faultserver):
    srv = faultserver('S: 250-%repeat[100000 x a]%\nSRAW: 250 bare LF\\n\nSRAW: 250 no end')
    r = Raw(srv)
    data = b''
    while not data.endswith(b'no end'):
        chunk = r.s.recv(65536)
        assert chunk
        data += chunk
    assert data == b'250-' + b'a' * 100000 + b'\r\n250 bare LF\n250 no end'
    r.close()
    finish(srv)


def test_close_mid_reply(faultserver):
    srv = faultserver('S: 220 hi\nC: ehlo *\nSRAW: 250-fault.test\\r\\n250-PIPE\nCLOSE')
    c = smtp(srv)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        c.ehlo()
    finish(srv)
    assert srv.errors == []
    assert srv.connections[0].closed_by == 'server'


def test_reset(faultserver):
    srv = faultserver('S: 220 hi\nC: EHLO *\nRESET')
    r = Raw(srv)
    r.reply()
    r.send(b'EHLO x\r\n')
    with pytest.raises((ConnectionResetError, ConnectionAbortedError)):
        for _ in range(3):
            if not r.s.recv(100):
                raise AssertionError('got a clean EOF, not a reset')
    r.close()
    finish(srv)


def test_stall_then_continue(faultserver):
    srv = faultserver('STALL 0.5\nS: 220 hi\nC: quit\nS: 221 bye')
    t0 = time.monotonic()
    c = smtp(srv)
    assert time.monotonic() - t0 >= 0.45
    c.quit()
    finish(srv)
    assert srv.errors == []


def test_stall_forever_ends_when_the_server_stops(faultserver):
    srv = faultserver('S: 220 hi\nC: ehlo *\nSTALL forever')
    c = smtp(srv, timeout=0.3)
    with pytest.raises((socket.timeout, smtplib.SMTPServerDisconnected)):
        c.ehlo()
    c.close()
    t0 = time.monotonic()
    assert srv.wait_idle(2)
    srv.stop()
    assert time.monotonic() - t0 < 1.5
    assert srv.errors == []


def test_drip(faultserver):
    srv = faultserver('DRIP 0.02: 220 dripping\nC: QUIT\nS: 221 bye')
    r = Raw(srv)
    t0 = time.monotonic()
    assert r.reply() == b'220 dripping\r\n'
    assert time.monotonic() - t0 >= 0.2
    r.send(b'QUIT\r\n')
    assert r.reply() == b'221 bye\r\n'
    r.close()
    finish(srv)
    assert srv.errors == []


def test_sequential_connections(faultserver):
    srv = faultserver('S: 220 first\nC: quit\nS: 221 bye\nNEXT\nS: 220 second\nC: quit\nS: 221 bye')
    for greeting in (b'first', b'second'):
        c = smtp(srv)
        c.quit()
        assert srv.wait_idle(2)
    Raw(srv).close()           # a third connection is not in the script
    finish(srv)
    assert [c.server_bytes[:10] for c in srv.connections] == [b'220 first\r', b'220 second']
    assert srv.errors == ['unexpected connection #3 (the script has 2)']


def test_bdat_step(faultserver):
    srv = faultserver('S: 220 hi\nBDAT\nS: 250 ok\nBDAT\nS: 250 done', linger=0.5)
    r = Raw(srv)
    r.reply()
    r.send(b'BDAT 5\r\nhelloBDAT 3 LAST\r\n\r\n.')
    assert r.reply() == b'250 ok\r\n'
    assert r.reply() == b'250 done\r\n'
    r.close()
    finish(srv)
    assert srv.connections[0].bdat == [(b'BDAT 5\r\n', b'hello'), (b'BDAT 3 LAST\r\n', b'\r\n.')]


# --------------------------------------------------------------------------
# The default responder

def test_responder_delivers_and_records(faultserver):
    srv = faultserver(responder=True)
    c = smtp(srv)
    assert c.sendmail('a@example.test', ['b@example.test', 'c@example.test'], MSG) == {}
    c.quit()
    finish(srv)
    assert srv.errors == [] and srv.violations == []
    (m,) = srv.all_messages()
    assert m['mail_from'] == 'a@example.test'
    assert m['rcpts'] == ['b@example.test', 'c@example.test']
    assert m['data'] == MSG + b'.\r\n' and m['reply'] == '250'


def test_responder_overrides(faultserver):
    srv = faultserver(responder={'overrides': {'MAIL': '452 4.3.1 full'}})
    c = smtp(srv)
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        c.sendmail('a@example.test', ['b@example.test'], MSG)
    assert e.value.smtp_code == 452
    c.quit()

    srv = faultserver(responder='rcpt x@y.test: 550 5.1.1 no such user\nDATA-END: 554 5.7.1 no')
    c = smtp(srv)
    with pytest.raises(smtplib.SMTPDataError) as e:
        c.sendmail('a@example.test', ['x@y.test', 'ok@y.test'], MSG)
    assert e.value.smtp_code == 554
    c.rset()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        c.sendmail('a@example.test', ['x@y.test'], MSG)
    assert e.value.recipients['x@y.test'][0] == 550
    c.quit()
    finish(srv)
    assert srv.errors == [] and srv.violations == []
    assert srv.all_messages()[0]['refused'] == ['x@y.test']


def test_responder_callable_and_actions(faultserver):
    calls = []

    def rcpt(conn, line):
        calls.append(line)
        return '451 4.3.0 later' if 'later' in line else None
    srv = faultserver(responder={'overrides': {'RCPT': rcpt, 'QUIT': 'RAW 221-partial ; CLOSE'}})
    c = smtp(srv)
    refused = c.sendmail('a@example.test', ['now@x.test', 'later@x.test'], MSG)
    assert refused == {'later@x.test': (451, b'4.3.0 later')}
    with pytest.raises(smtplib.SMTPServerDisconnected):
        c.quit()
    finish(srv)
    assert len(calls) == 2


def test_greeting_421_and_554(faultserver):
    srv = faultserver(responder={'greeting': '421 4.3.2 busy'})
    with pytest.raises(smtplib.SMTPConnectError):
        smtp(srv)
    srv = faultserver(responder='greeting: 554 5.3.2 go away')
    r = Raw(srv)
    assert r.reply() == b'554 5.3.2 go away\r\n'
    r.send(b'EHLO x\r\n')
    assert r.reply().startswith(b'503')
    r.send(b'QUIT\r\n')
    assert r.reply().startswith(b'221')
    r.close()
    finish(srv)


def test_responder_stall_and_close_actions(faultserver):
    srv = faultserver(responder={'overrides': {'DATA-END': 'CLOSE'}})
    c = smtp(srv)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        c.sendmail('a@example.test', ['b@example.test'], MSG)
    finish(srv)
    assert len(srv.data) == 1

    srv = faultserver(responder={'overrides': {'RCPT': 'STALL forever'}})
    c = smtp(srv, timeout=0.3)
    with pytest.raises((socket.timeout, smtplib.SMTPServerDisconnected)):
        c.sendmail('a@example.test', ['b@example.test'], MSG)
    c.close()
    assert srv.wait_idle(1)
    srv.stop()


def test_responder_size_limit(faultserver):
    srv = faultserver(responder={'caps': ['SIZE 10']})
    c = smtp(srv)
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        c.sendmail('a@example.test', ['b@example.test'], MSG)
    assert e.value.smtp_code == 552
    c.quit()
    finish(srv)


def test_responder_no_valid_recipients_refuses_data(faultserver):
    srv = faultserver(responder={'caps': ['PIPELINING'], 'overrides': {'RCPT': '550 5.1.1 no'}})
    r = Raw(srv)
    r.reply()
    r.send(b'EHLO x\r\n')
    r.reply()
    r.send(b'MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n')
    assert [r.reply()[:3] for _ in range(3)] == [b'250', b'550', b'554']
    r.send(b'QUIT\r\n')
    r.reply()
    r.close()
    finish(srv)
    assert srv.violations == [] and srv.data == []


def test_responder_auth(faultserver):
    srv = faultserver(responder={'caps': ['AUTH PLAIN LOGIN'], 'credentials': ('user', 'pw')})
    c = smtp(srv)
    c.login('user', 'pw')
    c.quit()
    c = smtp(srv)
    c.ehlo()
    with pytest.raises(smtplib.SMTPAuthenticationError):
        c.login('user', 'wrong')
    c.close()
    c = smtp(srv)
    c.ehlo()
    c.user, c.password = 'user', 'pw'
    c.auth('LOGIN', c.auth_login, initial_response_ok=False)
    c.quit()
    finish(srv)
    assert srv.violations == [] and srv.errors == []


def test_responder_bdat(faultserver):
    srv = faultserver(responder={'caps': ['CHUNKING']})
    r = Raw(srv)
    r.reply()
    r.send(b'EHLO x\r\n')
    r.reply()
    for cmd in (b'MAIL FROM:<a@x.test>\r\n', b'RCPT TO:<b@x.test>\r\n'):
        r.send(cmd)
        assert r.reply()[:3] == b'250'
    r.send(b'BDAT 4\r\nab\r\n')
    assert r.reply()[:3] == b'250'
    r.send(b'BDAT 3 LAST\r\ncd\n')
    assert r.reply()[:3] == b'250'
    r.close()
    finish(srv)
    assert srv.all_messages()[0]['data'] == b'ab\r\ncd\n'


# --------------------------------------------------------------------------
# TLS

def test_generated_certificates(tls_certs):
    for p in (tls_certs.ca, tls_certs.cert, tls_certs.key, tls_certs.rogue_cert):
        assert os.path.getsize(p) > 0
    out = subprocess.run(['openssl', 'verify', '-CAfile', tls_certs.ca, tls_certs.cert],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run(['openssl', 'verify', '-CAfile', tls_certs.ca, tls_certs.rogue_cert],
                         capture_output=True, text=True)
    assert out.returncode != 0


def test_starttls_with_the_test_ca(faultserver, tls_certs):
    srv = faultserver(responder={'caps': ['PIPELINING', 'STARTTLS']})
    c = smtp(srv)
    c.starttls(context=ssl.create_default_context(cafile=tls_certs.ca))   # verifies 127.0.0.1
    c.ehlo()
    assert not c.has_extn('starttls')
    c.sendmail('a@example.test', ['b@example.test'], MSG)
    c.quit()
    finish(srv)
    conn = srv.connections[0]
    assert conn.tls and conn.tls_version.startswith('TLS')
    assert [l.split()[0] for l in srv.text_lines] == ['ehlo', 'STARTTLS', 'ehlo', 'mail', 'rcpt',
                                                      'data', 'quit']
    assert srv.errors == [] and srv.violations == []


def test_scripted_starttls_and_localhost_name(faultserver, tls_certs):
    srv = faultserver('S: 220 hi\nC: ehlo *\nS: 250-x\\r\\n250 STARTTLS\nC: STARTTLS\n'
                      'S: 220 go\nTLS\nC: ehlo *\nS: 250 x\nC: quit\nS: 221 bye')
    c = smtplib.SMTP('localhost', srv.port, timeout=5) if _localhost_v4() else smtp(srv)
    c.ehlo()
    c.starttls(context=ssl.create_default_context(cafile=tls_certs.ca))
    c.ehlo()
    c.quit()
    finish(srv)
    assert srv.errors == [] and srv.violations == []


def _localhost_v4():
    try:
        return socket.getaddrinfo('localhost', 25)[0][4][0] == '127.0.0.1'
    except OSError:
        return False


def test_rogue_certificate_fails_verification(faultserver, tls_certs):
    srv = faultserver(responder={'caps': ['STARTTLS']}, cert=tls_certs.rogue_cert,
                      key=tls_certs.rogue_key)
    c = smtp(srv)
    with pytest.raises(ssl.SSLCertVerificationError):
        c.starttls(context=ssl.create_default_context(cafile=tls_certs.ca))
    c.close()
    finish(srv)


def test_implicit_tls(faultserver, tls_certs):
    srv = faultserver('TLS\nRESPONDER')
    c = smtplib.SMTP_SSL(srv.host, srv.port, timeout=5,
                         context=ssl.create_default_context(cafile=tls_certs.ca))
    c.sendmail('a@example.test', ['b@example.test'], MSG)
    c.quit()
    finish(srv)
    assert srv.connections[0].tls and len(srv.data) == 1
    assert srv.errors == [] and srv.violations == []


def test_starttls_injection_bytes_arrive_with_the_220(faultserver):
    srv = faultserver('S: 220 hi\nC: EHLO *\nS: 250-x\\r\\n250 STARTTLS\nC: STARTTLS\n'
                      'SRAW: 220 go ahead\\r\\n250-INJECTED\\r\\n250 PIPELINING\\r\\n\nEOF')
    r = Raw(srv)
    r.reply()
    r.send(b'EHLO x\r\n')
    r.reply()
    r.send(b'STARTTLS\r\n')
    assert r.reply() == b'220 go ahead\r\n'
    assert r.f.peek(1)[:1] == b'2'        # the injected bytes are already buffered
    assert r.reply() == b'250-INJECTED\r\n250 PIPELINING\r\n'
    r.close()
    finish(srv)
    assert srv.errors == []
    sent = [d for k, d in srv.connections[0].transcript if k == 'S']
    assert sent[-1] == b'220 go ahead\r\n250-INJECTED\r\n250 PIPELINING\r\n'   # one write


def test_tls_handshake_failure_is_recorded(faultserver):
    srv = faultserver('S: 220 hi\nC: STARTTLS\nS: 220 go\nTLS')
    r = Raw(srv)
    r.reply()
    r.send(b'STARTTLS\r\n')
    r.reply()
    r.send(b'this is not a ClientHello\r\n')
    r.close()
    finish(srv)
    assert any('handshake failed' in e for e in srv.errors)


# --------------------------------------------------------------------------
# Violations

def violations_of(faultserver, payload, caps=('8BITMIME',), settle=0.05, greet_first=True):
    srv = faultserver(responder={'caps': list(caps)}, settle=settle)
    r = Raw(srv)
    if greet_first:
        r.reply()
    for chunk in payload:
        r.send(chunk)
        time.sleep(0.15)
    r.close()
    finish(srv)
    return srv.violations


def test_pipelining_without_advertisement_is_flagged(faultserver):
    v = violations_of(faultserver, [b'EHLO x\r\n', b'MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n'])
    assert len(v) == 1 and 'before the reply to MAIL' in v[0] and 'PIPELINING' in v[0]


def test_pipelining_when_advertised_is_fine(faultserver):
    v = violations_of(faultserver, [b'EHLO x\r\n', b'MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n'
                                    b'DATA\r\n', b'hi\r\n.\r\nQUIT\r\n'], caps=('PIPELINING',))
    assert v == []


def test_data_must_wait_for_354_even_with_pipelining(faultserver):
    v = violations_of(faultserver, [b'EHLO x\r\n', b'MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n'
                                    b'DATA\r\nhi\r\n.\r\n'], caps=('PIPELINING',))
    assert any('before the reply to DATA' in x for x in v)


def test_ehlo_must_wait(faultserver):
    v = violations_of(faultserver, [b'EHLO x\r\nMAIL FROM:<a@x.test>\r\n'], caps=('PIPELINING',))
    assert any('before the reply to EHLO' in x for x in v)


def test_speaking_before_the_greeting_is_flagged(faultserver):
    v = violations_of(faultserver, [b'EHLO x\r\n'], settle=0.3, greet_first=False)
    assert any('before the greeting' in x for x in v)


def test_smtplib_is_a_clean_client(faultserver):
    for caps in ([], ['PIPELINING', '8BITMIME', 'SIZE 100000', 'DSN']):
        srv = faultserver(responder={'caps': caps})
        c = smtp(srv)
        c.sendmail('a@example.test', ['b@example.test'], MSG)
        c.quit()
        finish(srv)
        assert srv.violations == [] and srv.errors == []


def test_line_and_data_violations(faultserver):
    v = violations_of(faultserver, [b'EHLO x\r\n', b'MAIL FROM:<a@x.test>\n'])
    assert any('not terminated by CRLF' in x for x in v)
    v = violations_of(faultserver, [b'EHLO x\r\n', b'MAIL FROM:<a@x.test>\r\n', b'RCPT TO:<b@x.test>\r\n',
                                    b'DATA\r\n', b'bare\nLF and bare\rCR \xe9\r\n.\r\n'], caps=())
    assert any('bare LF in DATA' in x for x in v)
    assert any('bare CR in DATA' in x for x in v)
    assert any('8-bit DATA without BODY=8BITMIME' in x for x in v)
    v = violations_of(faultserver, [b'EHLO x\r\n', b'MAIL FROM:<a@x.test>\r\n', b'RCPT TO:<b@x.test>\r\n',
                                    b'DATA\r\n', b'x' * 1200 + b'\r\n.\r\n'])
    assert any('DATA line of 1200 octets' in x for x in v)


def test_parameter_and_order_violations(faultserver):
    v = violations_of(faultserver, [b'MAIL FROM:<a@x.test>\r\n'])
    assert any('MAIL before a successful EHLO' in x for x in v)
    v = violations_of(faultserver, [b'EHLO x\r\n', b'MAIL FROM:<a@x.test> SIZE=10 RET=HDRS\r\n',
                                    b'RCPT TO:<b@x.test> NOTIFY=NEVER\r\n', b'STARTTLS\r\n'])
    assert any('SIZE=10' in x and 'SIZE' in x for x in v)
    assert any('RET=HDRS' in x and 'DSN' in x for x in v)
    assert any('NOTIFY=NEVER' in x for x in v)
    assert any('STARTTLS, which the server did not advertise' in x for x in v)
    v = violations_of(faultserver, [b'EHLO x\r\n', b'FROB\r\n'])
    assert any('unknown command' in x for x in v)


# --------------------------------------------------------------------------
# Command line

def test_command_line_server(tmp_path):
    script = tmp_path / 'x.case'
    script.write_text('# a case file works too\n[server]\nS: 220 cli\nC: ehlo *\nS: 250 ok\n'
                      'C: quit\nS: 221 bye\n[expect-exit]\n0\n')
    p = subprocess.Popen([sys.executable, os.path.join(HERE, 'faultserver.py'), '--script', str(script),
                          '--connections', '1'], stdout=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        port = int(re.search(r':(\d+)$', first.strip()).group(1))
        c = smtplib.SMTP('127.0.0.1', port, timeout=5)
        c.ehlo('cli.test')
        c.quit()
        out, _ = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, out
    assert 'C: ehlo cli.test\\r\\n' in out and 'S: 221 bye\\r\\n' in out
