"""A message that is a regular file (stdin redirected from one, or --input)
is checked and sent where it is, not copied to a spool (see msg.h).  The
server must get exactly the bytes a pipe would have given it, whatever the
line ends, dots, offsets and chunking; and a file that changes while it is
sent must never be delivered: the client stops before the end of data and
says why (exit 74)."""

import os

import pytest

import faultserver as fs

HEAD = (b'From: A <a@example.test>\nTo: r@example.test\nDate: Thu, 1 Jan 2026 00:00:00 +0000\n'
        b'Message-ID: <in-place@example.test>\nSubject: in place\n')


def big_body():
    """About 3 MB: many reads' worth, dots at line starts, a CRLF line now and then."""
    lines = []
    for i in range(40000):
        line = b'%s line %d of a large message, padded to a typical width........' % (
            b'.' if i % 97 == 0 else b'x', i)
        lines.append(line + (b'\r\n' if i % 1013 == 0 else b'\n'))
    return b''.join(lines)


MESSAGES = {
    'lf': HEAD + b'\nline 1\n.one dot\n..two dots\n\n.\nlast\n',
    'crlf': HEAD.replace(b'\n', b'\r\n') + b'\r\nline 1\r\n.dot\r\n',
    'mixed-ends': HEAD + b'\nline\r\nline 2\n\r\n.\r\n',
    'no-final-newline': HEAD + b'\nends without a newline',
    'no-final-newline-dot': HEAD + b'\n.',
    'no-header-block': b'just a body line\n.dot\n',
    'headers-only': HEAD,
    'empty-body': HEAD + b'\n',
    'eight-bit': HEAD + '\nna\u00efve caf\u00e9\n'.encode(),
    'long-line-reencoded': HEAD + b'\n' + b'y' * 3000 + b'\n.after\n',
    'big': HEAD + b'\n' + big_body(),
}


def normalise(payload):
    # Added Date/Message-ID fields differ from run to run; everything else must not.
    return b''.join(l for l in payload.splitlines(True)
                    if not l.startswith((b'Date:', b'Message-ID:')))


def send(run_mailcar, faultserver, message, how, tmp_path, args=('-i',), caps=None):
    srv = faultserver(responder=fs.Responder(caps=caps), tls=False)
    path = tmp_path / ('msg-%s.eml' % how)
    prefix = b'not part of the message\n' if how == 'offset' else b''
    path.write_bytes(prefix + message)
    argv = list(args) + ['r@example.test']
    if how == 'pipe':
        r = run_mailcar(argv, server=srv, stdin=message)
    elif how == '--input':
        r = run_mailcar(['--input', str(path)] + argv, server=srv)
    else:
        with open(path, 'rb') as f:
            f.seek(len(prefix))
            r = run_mailcar(argv, server=srv, stdin=f)
    assert r.code == 0, r.describe()
    got = [m['data'] for m in srv.all_messages()]
    assert len(got) == 1, r.describe()
    assert not srv.violations, srv.violations
    return normalise(got[0])


@pytest.mark.parametrize('name', sorted(MESSAGES))
@pytest.mark.parametrize('args', [('-i',), ()], ids=['-i', 'dot-ends'])
def test_file_sends_what_a_pipe_sends(run_mailcar, faultserver, tmp_path, name, args):
    msg = MESSAGES[name]
    want = send(run_mailcar, faultserver, msg, 'pipe', tmp_path, args)
    for how in ('file', 'offset', '--input'):
        assert send(run_mailcar, faultserver, msg, how, tmp_path, args) == want, how


@pytest.mark.parametrize('name', ['lf', 'no-final-newline', 'big', 'eight-bit'])
def test_file_with_bdat(run_mailcar, faultserver, tmp_path, name):
    caps = ['PIPELINING', '8BITMIME', 'CHUNKING']
    want = send(run_mailcar, faultserver, MESSAGES[name], 'pipe', tmp_path, caps=caps)
    assert send(run_mailcar, faultserver, MESSAGES[name], 'file', tmp_path, caps=caps) == want


def test_dot_stuffing_on_the_wire(run_mailcar, faultserver, tmp_path):
    srv = faultserver(responder=fs.Responder(), tls=False)
    path = tmp_path / 'm.eml'
    path.write_bytes(HEAD + b'\n.a\n..b\n.\nc\n')
    with open(path, 'rb') as f:
        r = run_mailcar(['-i', 'r@example.test'], server=srv, stdin=f)
    assert r.code == 0, r.describe()
    assert srv.data[0].endswith(b'\r\n\r\n..a\r\n...b\r\n..\r\nc\r\n.\r\n')


def changing(path, change, reply):
    """A reply that first changes the file."""
    def act(conn, line):
        change(path)
        return reply
    return act


def append(path):
    with open(path, 'ab') as f:
        f.write(b'appended while being sent\n')


def truncate(path):
    os.truncate(path, os.path.getsize(path) // 2)


def rewrite_same_size(path):
    data = bytearray(path.read_bytes())
    data[-2:-1] = b'Z'
    fd = os.open(path, os.O_WRONLY)
    os.write(fd, bytes(data))
    os.close(fd)


@pytest.mark.parametrize('change', [append, truncate, rewrite_same_size])
@pytest.mark.parametrize('caps', [None, ['PIPELINING', '8BITMIME', 'CHUNKING']],
                         ids=['data', 'bdat'])
def test_file_changed_while_sent_is_not_delivered(run_mailcar, faultserver, tmp_path,
                                                  change, caps):
    path = tmp_path / 'm.eml'
    path.write_bytes(MESSAGES['big'])
    os.utime(path, ns=(1, 1))   # an old mtime: any write changes it
    if caps:
        # BDAT carries the data with it: the file changes when RCPT is answered.
        over = {'RCPT': changing(path, change, '250 2.1.5 ok')}
    else:
        over = {'DATA': changing(path, change, '354 go ahead')}
    srv = faultserver(responder=fs.Responder(caps=caps, overrides=over), tls=False)
    with open(path, 'rb') as f:
        r = run_mailcar(['-i', 'r@example.test'], server=srv, stdin=f)
    assert r.code == 74, r.describe()
    assert b'the message file changed while it was being sent' in r.stderr, r.describe()
    assert srv.all_messages() == [], 'a changed file was delivered'


def test_queued_from_a_file(run_mailcar, faultserver, tmp_path):
    """Queued after a temporary failure, the message is the file's, as checked."""
    path = tmp_path / 'm.eml'
    path.write_bytes(MESSAGES['lf'])
    down = faultserver(responder=fs.Responder(overrides={'DATA': '451 4.3.0 try later'}),
                       tls=False)
    with open(path, 'rb') as f:
        r = run_mailcar(['-i', 'r@example.test'], server=down, stdin=f, config=['queue on'])
    assert r.code == 0, r.describe()
    up = faultserver(responder=fs.Responder(), tls=False)
    r = run_mailcar(['-q'], server=up, config=['queue on'], env={'MAILCAR_NOW': '+3600'})
    assert r.code == 0, r.describe()
    want = send(run_mailcar, faultserver, MESSAGES['lf'], 'pipe', tmp_path)
    assert [normalise(d) for d in up.data] == [want]

