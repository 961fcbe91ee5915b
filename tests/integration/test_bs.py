"""-bs: SMTP on standard input and output, driven by Python's smtplib (as
Symfony Mailer and Alpine drive `sendmail -bs`), with every message going
upstream through the normal path to the fault server."""

import shutil
import smtplib
import socket
import subprocess

import pytest

import faultserver as fs


class PipeSMTP(smtplib.SMTP):
    """smtplib over a socketpair whose other end is mailcar's stdin/stdout."""

    def __init__(self, argv, env):
        mine, theirs = socket.socketpair()
        self.proc = subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=subprocess.PIPE,
                                     env=env)
        theirs.close()
        super().__init__()
        self.sock = mine
        self.file = None
        code, msg = self.getreply()
        assert code == 220, msg

    def finish(self, timeout=20):
        try:
            self.quit()
        except smtplib.SMTPServerDisconnected:
            pass
        if self.sock:
            self.sock.close()
        return self.proc.wait(timeout=timeout), self.proc.stderr.read()


def start(run_mailcar, srv, *extra):
    path, _ = run_mailcar.write_config(
        ['account default', 'host 127.0.0.1', 'port %d' % srv.port, 'tls off', 'auth off',
         'from sender@example.test', 'timeout 5'] + list(extra))
    return PipeSMTP([run_mailcar.binary, '-C', path, '-bs'], run_mailcar.env())


def assert_nothing_sent(s, srv):
    s.finish()
    srv.wait_idle()
    srv.stop()
    assert srv.messages == []


MSG = 'From: A <a@example.test>\r\nSubject: bs\r\n\r\n.leading dot\r\nbody\r\n'


def test_two_messages_one_session(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    s = start(run_mailcar, srv)
    code, caps = s.ehlo('app.example.test')
    assert code == 250 and b'PIPELINING' in caps and b'8BITMIME' in caps
    assert s.sendmail('a@example.test', ['x@example.test', 'y@example.test'], MSG) == {}
    assert s.sendmail('<>', ['z@example.test'], MSG.replace('bs', 'second')) == {}
    assert s.noop()[0] == 250
    status, err = s.finish()
    srv.wait_idle()
    srv.stop()
    assert status == 0, err
    assert len(srv.messages) == 2
    assert srv.messages[0].endswith(b'\r\n.leading dot\r\nbody\r\n')
    mails = [l for l in srv.text_lines if l.startswith('MAIL')]
    assert mails[0].startswith('MAIL FROM:<a@example.test>')
    assert mails[1].startswith('MAIL FROM:<>')
    assert sorted(l for l in srv.text_lines if l.startswith('RCPT'))[:2] == \
        ['RCPT TO:<x@example.test>', 'RCPT TO:<y@example.test>']


def test_upstream_temporary_failure_is_451(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(overrides={'MAIL': '452 4.3.1 full'}), tls=False)
    s = start(run_mailcar, srv)
    s.ehlo('app')
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail('a@example.test', ['x@example.test'], MSG)
    assert e.value.smtp_code == 451
    assert b'452 4.3.1 full' in e.value.smtp_error
    s.finish()


def test_refused_recipient_sends_nothing(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(rcpt={'bad@example.test': '550 5.1.1 unknown'}),
                      tls=False)
    s = start(run_mailcar, srv)
    s.ehlo('app')
    with pytest.raises(smtplib.SMTPDataError) as e:
        s.sendmail('a@example.test', ['good@example.test', 'bad@example.test'], MSG)
    assert e.value.smtp_code == 550
    assert_nothing_sent(s, srv)


def test_bad_message_is_554(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    s = start(run_mailcar, srv)
    s.ehlo('app')
    s.docmd('MAIL FROM:<a@example.test>')
    s.docmd('RCPT TO:<x@example.test>')
    assert s.docmd('DATA')[0] == 354
    s.send(b'Subject: x\r\n\r\nbare\rCR\r\n.\r\n')   # smtplib's sendmail would fix the CR
    code, text = s.getreply()
    assert code == 554
    assert b'bare CR' in text
    assert_nothing_sent(s, srv)


def test_envelope_checks(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    s = start(run_mailcar, srv)
    s.ehlo('app')
    assert s.docmd('RCPT TO:<x@example.test>')[0] == 503
    assert s.docmd('MAIL FROM:<-oops@example.test>')[0] == 553
    assert s.docmd('MAIL FROM:<a@example.test>')[0] == 250
    assert s.docmd('MAIL FROM:<a@example.test>')[0] == 503
    assert s.docmd('RCPT TO:<root>')[0] == 553
    assert s.docmd('RCPT TO:x@example.test')[0] == 501
    assert s.docmd('DATA')[0] == 554
    assert s.docmd('RSET')[0] == 250
    assert s.docmd('VRFY x')[0] == 252
    assert s.docmd('STARTTLS')[0] == 500
    assert s.docmd('X' * 5000)[0] == 500
    status, _ = s.finish()
    assert status == 0
    srv.stop()
    assert srv.lines == []


def test_pipelined_commands(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    path, _ = run_mailcar.write_config(
        ['account default', 'host 127.0.0.1', 'port %d' % srv.port, 'tls off', 'auth off',
         'from s@example.test'])
    session = (b'EHLO app\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<x@example.test>\r\n'
               b'DATA\r\nSubject: p\r\n\r\nhi\r\n.\r\nQUIT\r\n')
    p = subprocess.run([run_mailcar.binary, '-C', path, '-bs'], input=session,
                       capture_output=True, env=run_mailcar.env(), timeout=20)
    srv.wait_idle()
    srv.stop()
    codes = [l[:3] for l in p.stdout.split(b'\r\n') if l[3:4] == b' ']
    assert codes == [b'220', b'250', b'250', b'250', b'354', b'250', b'221'], p.stdout
    assert len(srv.messages) == 1


def test_end_of_input_inside_data(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    path, _ = run_mailcar.write_config(
        ['account default', 'host 127.0.0.1', 'port %d' % srv.port, 'tls off', 'auth off'])
    p = subprocess.run([run_mailcar.binary, '-C', path, '-bs'],
                       input=b'HELO a\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<x@example.test>\r\n'
                             b'DATA\r\nSubject: cut\r\n', capture_output=True,
                       env=run_mailcar.env(), timeout=20)
    srv.stop()
    assert p.returncode == 74, p.stderr
    assert b'input ended inside DATA' in p.stderr
    assert srv.messages == []


@pytest.mark.skipif(shutil.which('swaks') is None, reason='swaks is not installed')
def test_swaks_pipe(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    path, _ = run_mailcar.write_config(
        ['account default', 'host 127.0.0.1', 'port %d' % srv.port, 'tls off', 'auth off'])
    p = subprocess.run(['swaks', '--pipe', '%s -C %s -bs' % (run_mailcar.binary, path),
                        '--to', 'x@example.test', '--from', 'a@example.test'],
                       capture_output=True, env=run_mailcar.env(), timeout=30)
    srv.wait_idle()
    srv.stop()
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(srv.messages) == 1


PHP_CLIENT = r'''<?php
// An SMTP client over `sendmail -bs`, as PHP mailers (Symfony's sendmail
// transport in -bs mode) drive it: proc_open, then plain SMTP on the pipes.
$p = proc_open($argv[1], [0 => ['pipe', 'r'], 1 => ['pipe', 'w']], $pipes);
function reply($pipes) {
    $all = '';
    while (($line = fgets($pipes[1])) !== false) {
        $all .= $line;
        if (strlen($line) >= 4 && $line[3] === ' ') break;
    }
    return $all;
}
function say($pipes, $cmd, $want) {
    fwrite($pipes[0], $cmd . "\r\n");
    $r = reply($pipes);
    if (substr($r, 0, 3) !== $want) { fwrite(STDERR, "$cmd -> $r"); exit(1); }
}
if (substr(reply($pipes), 0, 3) !== '220') exit(1);
say($pipes, 'EHLO php.example.test', '250');
say($pipes, 'MAIL FROM:<app@example.test>', '250');
say($pipes, 'RCPT TO:<user@example.test>', '250');
say($pipes, 'DATA', '354');
say($pipes, "Subject: from PHP\r\n\r\n..dotted\r\nbye\r\n.", '250');
say($pipes, 'QUIT', '221');
fclose($pipes[0]); fclose($pipes[1]);
exit(proc_close($p));
'''


@pytest.mark.skipif(shutil.which('php') is None, reason='php-cli is not installed '
                    '(tests/setup-debian.sh installs it)')
def test_php_drives_bs(faultserver, run_mailcar, tmp_path):
    srv = faultserver(responder=fs.Responder(), tls=False)
    path, _ = run_mailcar.write_config(
        ['account default', 'host 127.0.0.1', 'port %d' % srv.port, 'tls off', 'auth off'])
    script = tmp_path / 'client.php'
    script.write_text(PHP_CLIENT)
    p = subprocess.run(['php', str(script), '%s -C %s -bs' % (run_mailcar.binary, path)],
                       capture_output=True, env=run_mailcar.env(), timeout=30)
    srv.wait_idle()
    srv.stop()
    assert p.returncode == 0, p.stderr
    assert len(srv.messages) == 1
    assert srv.messages[0].endswith(b'\r\n.dotted\r\nbye\r\n')
