"""Interactive use: progress for sends over 1 MB and a coloured error line,
only when standard error is a terminal (a pty here), never with NO_COLOR,
and never when standard error is a pipe or file (every other test)."""

import os
import pty
import select
import subprocess
import time

import pytest

from conftest import default_config

BIG = b'Subject: big\n\n' + (b'x' * 76 + b'\n') * 26000      # ~2 MB
SMALL = b'Subject: small\n\nhello\n'


def run_on_pty(mailcar, tmp_path, args, stdin, env_extra=None, port=None):
    """Run mailcar with stderr on a pty; (exit code, bytes written to the pty)."""
    conf = tmp_path / 'tty.conf'
    lines = default_config(port) if port else ['account default', 'host 127.0.0.1',
                                               'port 1', 'tls off', 'auth off',
                                               'from s@example.test', 'timeout 5']
    conf.write_text('\n'.join(lines) + '\n')
    os.chmod(conf, 0o600)
    master, slave = pty.openpty()
    env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'HOME': str(tmp_path),
           'TERM': 'xterm'}
    for k in ('ASAN_OPTIONS', 'UBSAN_OPTIONS', 'LSAN_OPTIONS', 'LD_LIBRARY_PATH'):
        if k in os.environ:
            env[k] = os.environ[k]
    env.update(env_extra or {})
    p = subprocess.Popen([mailcar, '-C', str(conf)] + args, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    p.stdin.write(stdin)
    p.stdin.close()
    out = b''
    deadline = time.time() + 20
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
        elif p.poll() is not None:
            break
    code = p.wait(timeout=10)
    os.close(master)
    return code, out


def test_progress_on_a_terminal(mailcar, faultserver, tmp_path):
    srv = faultserver(tls=False)
    code, out = run_on_pty(mailcar, tmp_path, ['rcpt@example.test'], BIG, port=srv.port)
    assert code == 0, out
    assert b'\rmailcar: sending ' in out, out
    last = out.replace(b'\r\n', b'\n').split(b'\r')[-1]
    assert b'2.0 of 2.0 MB (100%)' in last, out
    srv.wait_idle()
    assert srv.messages and len(srv.messages[0]) > 1900000


def test_no_progress_for_small_messages(mailcar, faultserver, tmp_path):
    srv = faultserver(tls=False)
    code, out = run_on_pty(mailcar, tmp_path, ['rcpt@example.test'], SMALL, port=srv.port)
    assert code == 0 and b'sending' not in out, out


def test_no_progress_when_not_a_terminal(faultserver, run_mailcar):
    srv = faultserver(tls=False)
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=BIG)
    assert r.code == 0, r.describe()
    assert r.stderr == b'', r.describe()


def test_no_progress_with_v(mailcar, faultserver, tmp_path):
    srv = faultserver(tls=False)
    code, out = run_on_pty(mailcar, tmp_path, ['-v', 'rcpt@example.test'], BIG, port=srv.port)
    assert code == 0 and b'mailcar: sending' not in out, out


def test_error_in_colour_on_a_terminal(mailcar, tmp_path):
    code, out = run_on_pty(mailcar, tmp_path, ['rcpt@example.test'], SMALL)
    assert code == 75, out
    assert b'\x1b[1;31mmailcar:\x1b[0m cannot connect' in out, out


@pytest.mark.parametrize('value', ['1', 'yes'])
def test_no_colour_with_no_color(mailcar, tmp_path, value):
    code, out = run_on_pty(mailcar, tmp_path, ['rcpt@example.test'], SMALL, {'NO_COLOR': value})
    assert code == 75, out
    assert b'\x1b' not in out and b'mailcar: cannot connect' in out, out


def test_no_colour_when_not_a_terminal(run_mailcar):
    r = run_mailcar(['rcpt@example.test'], port=1, stdin=SMALL)
    assert r.code == 75 and b'\x1b' not in r.stderr, r.describe()
