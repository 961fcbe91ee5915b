"""Password sources beyond the config file: --password-fd, netrc, the
terminal prompt; and their refusals."""

import os
import pty
import select
import subprocess
import time

import faultserver as fs

MSG = b'Subject: secret\n\nbody\n'


def auth_server(faultserver):
    return faultserver(responder=fs.Responder(caps=['PIPELINING', 'STARTTLS', 'AUTH PLAIN'],
                                              credentials=('alice', 'pw-42')))


def cfg(certs, *extra):
    return ['tls on', 'tls_trust_file %s' % certs.ca, 'host localhost', 'auth on',
            'user alice'] + list(extra)


def test_password_fd(faultserver, run_mailcar, tls_certs, tmp_path):
    srv = auth_server(faultserver)
    rfd, wfd = os.pipe()
    os.write(wfd, b'pw-42\n')
    os.close(wfd)
    path, _ = run_mailcar.write_config(
        ['account default', 'port %d' % srv.port, 'from s@example.test'] + cfg(tls_certs))
    p = subprocess.run([run_mailcar.binary, '-C', path, '--password-fd', str(rfd),
                        'rcpt@example.test'], input=MSG, capture_output=True,
                       env=run_mailcar.env(), pass_fds=(rfd,), timeout=20)
    os.close(rfd)
    srv.wait_idle()
    srv.stop()
    assert p.returncode == 0, p.stderr
    assert len(srv.messages) == 1


def test_password_fd_zero_refused(run_mailcar):
    r = run_mailcar(['--password-fd', '0', 'rcpt@example.test'], stdin=MSG)
    assert r.code == 64, r.describe()
    assert b'password-fd' in r.stderr


def test_netrc(faultserver, run_mailcar, tls_certs):
    netrc = os.path.join(run_mailcar.home, '.netrc')
    with open(netrc, 'w') as f:
        f.write('machine other.example login alice password wrong\n'
                'machine localhost login bob password wrong-too\n'
                'machine localhost\n  login alice\n  password pw-42\n')
    os.chmod(netrc, 0o600)
    srv = auth_server(faultserver)
    r = run_mailcar(['rcpt@example.test'], server=srv, config=cfg(tls_certs), stdin=MSG)
    assert r.code == 0, r.describe()
    os.chmod(netrc, 0o644)
    r = run_mailcar(['rcpt@example.test'], config=cfg(tls_certs), stdin=MSG)
    assert r.code == 78, r.describe()
    assert b'chmod 600' in r.stderr
    os.unlink(netrc)


def test_no_password_anywhere(faultserver, run_mailcar, tls_certs):
    srv = auth_server(faultserver)
    r = run_mailcar(['rcpt@example.test'], server=srv, config=cfg(tls_certs), stdin=MSG)
    assert r.code == 78, r.describe()
    assert b'password' in r.stderr
    assert not any(l.startswith('AUTH') for l in srv.text_lines)


def test_terminal_prompt(faultserver, run_mailcar, tls_certs, tmp_path):
    srv = auth_server(faultserver)
    msgfile = tmp_path / 'msg'
    msgfile.write_bytes(MSG)
    path, _ = run_mailcar.write_config(
        ['account default', 'port %d' % srv.port, 'from s@example.test'] + cfg(tls_certs))
    pid, master = pty.fork()
    if pid == 0:   # the child has the pty as its controlling terminal
        fd = os.open(str(msgfile), os.O_RDONLY)
        os.dup2(fd, 0)
        os.execve(run_mailcar.binary, [run_mailcar.binary, '-C', path, 'rcpt@example.test'],
                  run_mailcar.env())
    seen = b''
    deadline = time.monotonic() + 15
    while b'password for alice at localhost' not in seen and time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            seen += os.read(master, 1024)
    os.write(master, b'pw-42\n')
    rest = b''
    while time.monotonic() < deadline:
        if not select.select([master], [], [], 0.5)[0]:
            continue
        try:
            chunk = os.read(master, 1024)
        except OSError:
            break
        if not chunk:
            break
        rest += chunk
    # Never wait without a bound: a client stuck at its prompt is killed.
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > deadline + 5:
            break
        time.sleep(0.05)
    if not done:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        status = 1 << 8
    os.close(master)
    srv.wait_idle()
    srv.stop()
    assert os.WEXITSTATUS(status) == 0, seen + rest
    assert b'pw-42' not in rest        # echo was off
    assert len(srv.messages) == 1
