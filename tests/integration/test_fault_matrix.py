"""The fault matrix (issue 6): every SMTP stage x every kind of fault.

Stages: greeting, EHLO, MAIL, RCPT, DATA, DATA-END in clear, and STARTTLS and
AUTH with TLS on.  Faults: a 4xx reply, a 5xx reply, 421 and close, a TCP
reset, a stall past the deadline, a garbage reply.  For each: the exit status,
that nothing but RSET/QUIT was sent after the failing command, and one
`mailcar: ` line on stderr.  For the temporary faults, with `queue on`: exit
0, queued exactly once, and a later `mailcar -q` against a healthy server
delivers it exactly once and empties the queue.

The server does not advertise PIPELINING, so "what was sent" is exact.
"""

import os
import re

import pytest

import faultserver as fs

RCPT = 'rcpt@example.test'
MSG = (b'From: Sender <sender@example.test>\n'
       b'To: rcpt@example.test\n'
       b'Subject: fault matrix\n'
       b'Message-ID: <fault-matrix@example.test>\n'
       b'\n'
       b'body\n')
CAPS = ['8BITMIME', 'ENHANCEDSTATUSCODES']
TLS_CAPS = CAPS + ['STARTTLS', 'AUTH PLAIN LOGIN']
FAST = ['timeout 1', 'deadline 2']

# stage -> (responder keys to override, the verbs sent up to and including it)
STAGES = {
    'greeting': (['GREETING'], []),
    'EHLO': (['EHLO', 'HELO'], ['EHLO']),
    'MAIL': (['MAIL'], ['EHLO', 'MAIL']),
    'RCPT': (['RCPT'], ['EHLO', 'MAIL', 'RCPT']),
    'DATA': (['DATA'], ['EHLO', 'MAIL', 'RCPT', 'DATA']),
    'DATA-END': (['DATA-END'], ['EHLO', 'MAIL', 'RCPT', 'DATA']),
    'STARTTLS': (['STARTTLS'], ['EHLO', 'STARTTLS']),
    'AUTH': (['AUTH'], ['EHLO', 'STARTTLS', 'EHLO', 'AUTH']),
}
TLS_STAGES = ('STARTTLS', 'AUTH')

FAULTS = {
    '4xx': '451 4.3.0 fault matrix: try later',
    '5xx': '554 5.3.0 fault matrix: refused',
    '421': '421 4.3.2 fault matrix: closing',
    'reset': 'RESET',
    'stall': 'STALL 6',
    'garbage': 'RAW \x01\x02 garbage, not a reply\r\n',
}
TEMPORARY = ('4xx', '421', 'reset', 'stall')


def expected_code(stage, fault):
    # Documented exceptions (mailcar(1) EXIT STATUS): a refused STARTTLS is a
    # temporary failure like a missing one (75), and anything but a reply
    # after the final dot means "may have been delivered" (75).
    if (stage, fault) in (('STARTTLS', '5xx'), ('DATA-END', 'garbage')):
        return 75
    if fault in TEMPORARY:
        return 75
    if fault == 'garbage':
        return 76
    return {'RCPT': 67, 'AUTH': 77}.get(stage, 69)


def verbs(srv):
    return [l.split(' ', 1)[0].split(':', 1)[0].upper() for l in srv.text_lines]


def diag(res, srv=None):
    out = res.describe()
    if srv is not None:
        out += '\n--- server transcript:\n' + srv.report()
    return out


def one_error_line(res, srv=None):
    lines = res.stderr.decode('utf-8', 'replace').splitlines()
    assert len(lines) == 1 and lines[0].startswith('mailcar: '), diag(res, srv)


def faulty(faultserver, stage, fault):
    keys, _ = STAGES[stage]
    tls = stage in TLS_STAGES
    return faultserver(responder=fs.Responder(
        caps=TLS_CAPS if tls else CAPS, credentials=('u', 'p'),
        overrides={k: FAULTS[fault] for k in keys}), tls=tls)


def healthy(faultserver, stage):
    tls = stage in TLS_STAGES
    return faultserver(responder=fs.Responder(caps=TLS_CAPS if tls else CAPS,
                                              credentials=('u', 'p')), tls=tls)


def config(stage, tls_certs, *extra):
    lines = list(FAST) + list(extra)
    if stage in TLS_STAGES:
        lines += ['tls on', 'tls_starttls on', 'tls_trust_file %s' % tls_certs.ca,
                  'host localhost', 'auth on', 'user u', 'password p']
    return lines


def accepted(srv):
    return [m for m in srv.all_messages() if m.get('reply') and m['reply'].startswith('2')]


def queued(qdir):
    return sorted(f for f in os.listdir(qdir) if f.endswith('.env')) if os.path.isdir(qdir) else []


def tls_fixture(request, stage):
    return request.getfixturevalue('tls_certs') if stage in TLS_STAGES else None


@pytest.mark.parametrize('fault', list(FAULTS))
@pytest.mark.parametrize('stage', list(STAGES))
def test_fault(stage, fault, faultserver, run_mailcar, request):
    certs = tls_fixture(request, stage)
    srv = faulty(faultserver, stage, fault)
    res = run_mailcar([RCPT], server=srv, config=config(stage, certs), stdin=MSG, timeout=15)
    assert res.code == expected_code(stage, fault), diag(res, srv)
    assert res.elapsed < 5, diag(res, srv)
    one_error_line(res, srv)
    sent = verbs(srv)
    upto = STAGES[stage][1]
    assert sent[:len(upto)] == upto, diag(res, srv)
    # After a refused EHLO the client may fall back to HELO (RFC 5321 3.2).
    allowed = {'RSET', 'QUIT'} | ({'HELO'} if stage == 'EHLO' else set())
    assert set(sent[len(upto):]) <= allowed, diag(res, srv)
    assert accepted(srv) == [], diag(res, srv)
    assert b'\0' not in srv.commands


@pytest.mark.parametrize('fault', TEMPORARY)
@pytest.mark.parametrize('stage', list(STAGES))
def test_fault_queued_then_delivered_once(stage, fault, faultserver, run_mailcar, request,
                                         tmp_path):
    certs = tls_fixture(request, stage)
    qdir = str(tmp_path / 'fmqueue')
    qconf = ['queue on', 'queue_dir %s' % qdir]
    srv = faulty(faultserver, stage, fault)
    res = run_mailcar([RCPT], server=srv, config=config(stage, certs, *qconf), stdin=MSG,
                      timeout=15)
    assert res.code == 0, diag(res, srv)
    assert re.search(rb'queued as \S+', res.stderr), diag(res, srv)
    assert len(queued(qdir)) == 1, diag(res, srv)
    assert accepted(srv) == [], diag(res, srv)

    good = healthy(faultserver, stage)
    res = run_mailcar(['-q'], server=good, config=config(stage, certs, *qconf),
                      env={'MAILCAR_NOW': '+3600'}, timeout=15)
    assert res.code == 0, diag(res, good)
    got = accepted(good)
    assert len(got) == 1, diag(res, good)
    assert b'Message-ID: <fault-matrix@example.test>' in got[0]['data'], diag(res, good)
    assert queued(qdir) == [], diag(res, good)
    assert [f for f in os.listdir(qdir) if f.endswith('.msg')] == [], diag(res, good)
