"""The sendmail command line, tested against the fault server.

Written to the spec: historic options that mailcar ignores must still consume
exactly their argument (ssmtp and msmtp turned `-L tag`, `-oQ /dir` into
recipients), `-X FILE` never writes FILE (PHPMailer CVE-2016-10033), CR/LF
in an envelope address never reaches the server, argv[0] selects the mode.
"""

import os
import re
import socket

import pytest

SENDER = 'sender@example.test'
MSG = (b'From: Sender <sender@example.test>\n'
       b'To: rcpt@example.test\n'
       b'Subject: command line\n'
       b'Date: Mon, 01 Jan 2024 00:00:00 +0000\n'
       b'Message-ID: <cli@example.test>\n'
       b'\n'
       b'body\n')


def diag(res, srv=None):
    out = res.describe()
    if srv is not None:
        out += '\n--- server transcript:\n' + srv.report()
        out += ''.join('\n  server error: ' + e for e in srv.errors)
    return out


def verbs(srv):
    return [l.split(' ', 1)[0].split(':', 1)[0].upper() for l in srv.text_lines]


def rcpts(srv):
    out = []
    for l in srv.text_lines:
        m = re.match(r'(?i)RCPT TO:<([^>]*)>', l)
        if m:
            out.append(m.group(1))
    return out


def mail_line(srv):
    ls = [l for l in srv.text_lines if l.upper().startswith('MAIL ')]
    return ls[0] if ls else None


def rcpt_lines(srv):
    return [l for l in srv.text_lines if l.upper().startswith('RCPT ')]


def assert_clean(srv, res):
    assert srv.errors == [], diag(res, srv)
    assert srv.violations == [], diag(res, srv)


def one_error_line(res):
    lines = res.stderr.decode('utf-8', 'replace').splitlines()
    assert len(lines) == 1 and lines[0].startswith('mailcar: '), diag(res)


# --------------------------------------------------------------------------
# Ignored historic options

IGNORED = [
    ['-oem'], ['-oee'], ['-odi'], ['-odb'], ['-oi'], ['-om'],
    ['-oQ', '/x'], ['-O', 'opt=val'], ['-h', '5'], ['-L', 'tag'],
    ['-G'], ['-U'], ['-m'], ['-n'], ['-A', 'c'], ['-X', '%TMP%/xlog'],
]


@pytest.mark.parametrize('opts', IGNORED, ids=lambda o: '_'.join(o).replace('%TMP%/', ''))
def test_ignored_option_consumes_exactly_its_argument(opts, faultserver, run_mailcar, tmp_path):
    opts = [o.replace('%TMP%', str(tmp_path)) for o in opts]
    srv = faultserver(responder=True)
    res = run_mailcar(opts + ['-i', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert res.code == 0, diag(res, srv)
    assert rcpts(srv) == ['rcpt@example.test'], diag(res, srv)
    assert len(srv.data) == 1, diag(res, srv)
    assert_clean(srv, res)
    assert not os.path.exists(os.path.join(str(tmp_path), 'xlog')), '-X created its file'


def test_all_ignored_options_together(faultserver, run_mailcar, tmp_path):
    xfile = os.path.join(str(tmp_path), 'file')
    srv = faultserver(responder=True)
    args = ['-oem', '-oee', '-odi', '-odb', '-oQ', '/x', '-O', 'opt=val', '-h', '5', '-L', 'tag',
            '-G', '-U', '-m', '-n', '-A', 'c', '-X', xfile, '-i', 'rcpt@example.test']
    res = run_mailcar(args, server=srv, stdin=MSG)
    assert res.code == 0, diag(res, srv)
    assert rcpts(srv) == ['rcpt@example.test'], diag(res, srv)
    assert not os.path.exists(xfile), '-X must never create its file'
    assert_clean(srv, res)


def test_x_never_writes_even_an_existing_file(faultserver, run_mailcar, tmp_path):
    xfile = tmp_path / 'existing.log'
    xfile.write_bytes(b'untouched\n')
    srv = faultserver(responder=True)
    res = run_mailcar(['-X', str(xfile), '-i', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert res.code == 0, diag(res, srv)
    assert xfile.read_bytes() == b'untouched\n'


# --------------------------------------------------------------------------
# Option parsing errors

@pytest.mark.parametrize('opt', ['-Z', '--no-such-option'])
def test_unknown_option_is_a_usage_error(opt, faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar([opt, '-i', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert res.code == 64, diag(res, srv)
    one_error_line(res)
    assert srv.connections == [], diag(res, srv)


def test_no_recipients_is_a_usage_error(faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar(['-i'], server=srv, stdin=MSG)
    assert res.code == 64, diag(res, srv)
    one_error_line(res)
    assert srv.connections == []


def test_double_dash_ends_options(faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar(['-i', '--', 'a@example.test', 'b@example.test'], server=srv, stdin=MSG)
    assert res.code == 0, diag(res, srv)
    assert rcpts(srv) == ['a@example.test', 'b@example.test'], diag(res, srv)


def test_after_double_dash_nothing_is_an_option(faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar(['-i', '--', 'rcpt@example.test', '-v'], server=srv, stdin=MSG)
    assert '--> ' not in res.stderr.decode('utf-8', 'replace'), 'a -v after -- turned on the transcript'
    assert '-v' not in rcpts(srv), diag(res, srv)
    assert res.code in (64, 65), diag(res, srv)     # "-v" is not a valid recipient


def test_dash_argument_before_double_dash_is_never_a_recipient(faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar(['-i', '-xyz@example.test', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert res.code == 64, diag(res, srv)
    assert not any('xyz' in r for r in rcpts(srv)), diag(res, srv)
    assert srv.connections == [], diag(res, srv)


# --------------------------------------------------------------------------
# Modes

def test_bi_newaliases_is_a_no_op(faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar(['-bi'], server=srv, stdin=b'')
    assert res.code == 0, diag(res, srv)
    assert srv.connections == []


@pytest.mark.parametrize('args', [['-bp'], ['-q']], ids=['bp', 'q'])
def test_queue_commands_answer_clearly(args, faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar(args, server=srv, stdin=b'', timeout=10)
    assert res.code == 0, diag(res, srv)
    text = (res.stdout + res.stderr).decode('utf-8', 'replace')
    if args == ['-bp']:
        assert re.search(r'(?i)queue is empty', text), diag(res, srv)
    else:
        assert text == '', diag(res, srv)     # an empty queue run is silent, for cron
    assert srv.connections == []


def test_bv_verifies_without_data(faultserver, run_mailcar):
    srv = faultserver(responder={'caps': ['PIPELINING']})
    res = run_mailcar(['-bv', 'a@example.test', 'b@example.test'], server=srv, stdin=b'')
    assert res.code == 0, diag(res, srv)
    v = verbs(srv)
    assert 'MAIL' in v and v.count('RCPT') == 2 and 'RSET' in v, diag(res, srv)
    assert v.index('RSET') > max(i for i, x in enumerate(v) if x == 'RCPT'), diag(res, srv)
    assert 'DATA' not in v and srv.data == [], diag(res, srv)
    assert_clean(srv, res)


def test_bv_reports_a_refused_recipient(faultserver, run_mailcar):
    srv = faultserver(responder={'rcpt': {'bad@example.test': '550 5.1.1 unknown'}})
    res = run_mailcar(['-bv', 'good@example.test', 'bad@example.test'], server=srv, stdin=b'')
    assert res.code == 67, diag(res, srv)
    assert b'bad@example.test' in res.stdout + res.stderr, diag(res, srv)
    assert 'DATA' not in verbs(srv) and srv.data == []


# --------------------------------------------------------------------------
# Recipients and sender

def test_t_adds_command_line_recipients(faultserver, run_mailcar):
    msg = (b'From: Sender <sender@example.test>\nTo: to@example.test\nCc: cc@example.test\n'
           b'Subject: -t\nDate: Mon, 01 Jan 2024 00:00:00 +0000\nMessage-ID: <t@example.test>\n\nbody\n')
    srv = faultserver(responder=True)
    res = run_mailcar(['-t', '-i', 'extra@example.test'], server=srv, stdin=msg)
    assert res.code == 0, diag(res, srv)
    assert sorted(rcpts(srv)) == ['cc@example.test', 'extra@example.test', 'to@example.test'], \
        diag(res, srv)
    assert len(srv.data) == 1
    assert_clean(srv, res)


@pytest.mark.parametrize('sender', ['<>', 'MAILER-DAEMON'])
def test_null_sender(sender, faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar(['-f', sender, '-i', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert res.code == 0, diag(res, srv)
    assert re.match(r'(?i)^MAIL FROM:<>( |$)', mail_line(srv) or ''), diag(res, srv)


@pytest.mark.parametrize('opt', ['-f', '-r'])
def test_envelope_sender_option(opt, faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar([opt, 'other@example.test', '-i', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert res.code == 0, diag(res, srv)
    assert re.match(r'(?i)^MAIL FROM:<other@example\.test>( |$)', mail_line(srv) or ''), diag(res, srv)


@pytest.mark.parametrize('evil', [
    'a@example.test\r\nRCPT TO:<evil@example.test>',
    'a@example.test\nRCPT TO:<evil@example.test>',
    'a@example.test\rX',
], ids=['crlf', 'lf', 'cr'])
def test_line_breaks_in_sender_reach_nothing(evil, faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar(['-f', evil, '-i', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert res.code == 65, diag(res, srv)
    one_error_line(res)
    assert srv.connections == [], diag(res, srv)


def test_line_breaks_in_recipient_reach_nothing(faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar(['-i', 'rcpt@example.test\r\nDATA'], server=srv, stdin=MSG)
    assert res.code == 65, diag(res, srv)
    assert srv.connections == [], diag(res, srv)


def test_F_sets_the_name_in_the_added_from(faultserver, run_mailcar):
    msg = b'To: rcpt@example.test\nSubject: -F\n\nbody\n'
    srv = faultserver(responder=True)
    res = run_mailcar(['-F', 'Fred Example', '-i', 'rcpt@example.test'], server=srv, stdin=msg)
    assert res.code == 0, diag(res, srv)
    (payload,) = srv.data
    assert re.search(rb'(?m)^From: "?Fred Example"? <sender@example\.test>\r$', payload), diag(res, srv)


# --------------------------------------------------------------------------
# Extensions

def test_dsn_options_when_advertised(faultserver, run_mailcar):
    srv = faultserver(responder={'caps': ['PIPELINING', 'DSN']})
    res = run_mailcar(['-N', 'success,failure', '-R', 'hdrs', '-V', 'envid-123', '-i',
                       'rcpt@example.test'], server=srv, stdin=MSG)
    assert res.code == 0, diag(res, srv)
    mail = mail_line(srv) or ''
    assert re.search(r'(?i) RET=HDRS( |$)', mail), diag(res, srv)
    assert re.search(r'(?i) ENVID=envid-123( |$)', mail), diag(res, srv)
    (rcpt,) = rcpt_lines(srv)
    assert re.search(r'(?i) NOTIFY=SUCCESS,FAILURE( |$)', rcpt), diag(res, srv)
    assert_clean(srv, res)


def test_dsn_never(faultserver, run_mailcar):
    srv = faultserver(responder={'caps': ['DSN']})
    res = run_mailcar(['-N', 'never', '-i', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert res.code == 0, diag(res, srv)
    (rcpt,) = rcpt_lines(srv)
    assert re.search(r'(?i) NOTIFY=NEVER( |$)', rcpt), diag(res, srv)


def test_dsn_options_without_dsn_are_not_sent(faultserver, run_mailcar):
    srv = faultserver(responder={'caps': ['PIPELINING']})
    res = run_mailcar(['-N', 'success', '-R', 'full', '-V', 'x1', '-i', 'rcpt@example.test'],
                      server=srv, stdin=MSG)
    assert res.code == 0, diag(res, srv)
    assert not re.search(r'(?i)NOTIFY=|RET=|ENVID=', ' '.join(srv.text_lines)), diag(res, srv)
    assert_clean(srv, res)


def test_B_8bitmime(faultserver, run_mailcar):
    srv = faultserver(responder={'caps': ['PIPELINING', '8BITMIME']})
    res = run_mailcar(['-B8BITMIME', '-i', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert res.code == 0, diag(res, srv)
    assert re.search(r'(?i) BODY=8BITMIME( |$)', mail_line(srv) or ''), diag(res, srv)
    assert_clean(srv, res)


def test_B_8bitmime_separate_argument(faultserver, run_mailcar):
    srv = faultserver(responder={'caps': ['8BITMIME']})
    res = run_mailcar(['-B', '8BITMIME', '-i', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert res.code == 0, diag(res, srv)
    assert rcpts(srv) == ['rcpt@example.test'], diag(res, srv)
    assert re.search(r'(?i) BODY=8BITMIME( |$)', mail_line(srv) or ''), diag(res, srv)


# --------------------------------------------------------------------------
# argv[0]

def test_argv0_mailq_lists_the_queue(faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar([], server=srv, stdin=b'', argv0='mailq')
    assert res.code in (0, 69), diag(res, srv)
    assert re.search(r'(?i)queue', (res.stdout + res.stderr).decode('utf-8', 'replace')), diag(res)
    assert srv.connections == []


def test_argv0_newaliases_is_a_no_op(faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar([], server=srv, stdin=b'', argv0='newaliases')
    assert res.code == 0, diag(res, srv)
    assert srv.connections == []


@pytest.mark.parametrize('name', ['sendmail', 'send-mail'])
def test_argv0_sendmail_sends(name, faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar(['-i', 'rcpt@example.test'], server=srv, stdin=MSG, argv0=name)
    assert res.code == 0, diag(res, srv)
    assert rcpts(srv) == ['rcpt@example.test'] and len(srv.data) == 1, diag(res, srv)


# --------------------------------------------------------------------------
# Errors outside the SMTP dialogue

def _nxdomain(name):
    try:
        socket.getaddrinfo(name, 25)
    except socket.gaierror as e:
        return e.errno == socket.EAI_NONAME
    return False


def test_host_not_found(run_mailcar):
    host = 'no-such-host.invalid'
    if not _nxdomain(host):
        pytest.skip('the resolver here does not answer "no such name" for .invalid')
    res = run_mailcar(['-i', 'rcpt@example.test'], config=['host %s' % host], stdin=MSG)
    assert res.code == 68, diag(res)
    one_error_line(res)


@pytest.mark.parametrize('line', ['frobnicate yes', 'port not-a-number', 'tls maybe'])
def test_config_error(line, faultserver, run_mailcar):
    srv = faultserver(responder=True)
    res = run_mailcar(['-i', 'rcpt@example.test'], server=srv, config=[line], stdin=MSG)
    assert res.code == 78, diag(res, srv)
    assert res.stderr.decode('utf-8', 'replace').startswith('mailcar: '), diag(res)
    assert srv.connections == []
