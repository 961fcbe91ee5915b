"""Configuration file discovery, the informational modes (--pretend,
--version, --help) and input-file errors."""

import os

import faultserver as fs

MSG = b'Subject: more\n\nbody\n'


def plain_account(port, name='default', sender='sender@example.test'):
    return ('account %s\nhost 127.0.0.1\nport %d\ntls off\nauth off\nfrom %s\n'
            % (name, port, sender))


def write(path, text, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, mode)


def test_user_config_locations(faultserver, run_mailcar):
    """$XDG_CONFIG_HOME/mailcar/config first, then ~/.mailcarrc."""
    xdg = os.path.join(run_mailcar.xdg, 'mailcar', 'config')
    rc = os.path.join(run_mailcar.home, '.mailcarrc')
    srv = faultserver(responder=fs.Responder(), tls=False)
    write(rc, plain_account(srv.port, sender='rc@example.test'))
    r = run_mailcar(['rcpt@example.test'], server=srv, use_config=False, stdin=MSG,
                    stop_server=False)
    assert r.code == 0, r.describe()
    write(xdg, plain_account(srv.port, sender='xdg@example.test'))
    r = run_mailcar(['rcpt@example.test'], server=srv, use_config=False, stdin=MSG)
    assert r.code == 0, r.describe()
    senders = [l for l in srv.text_lines if l.startswith('MAIL')]
    assert senders == ['MAIL FROM:<rc@example.test>', 'MAIL FROM:<xdg@example.test>']


def test_dot_config_when_xdg_unset(faultserver, run_mailcar):
    path = os.path.join(run_mailcar.home, '.config', 'mailcar', 'config')
    srv = faultserver(responder=fs.Responder(), tls=False)
    write(path, plain_account(srv.port, sender='dotconfig@example.test'))
    r = run_mailcar(['rcpt@example.test'], server=srv, use_config=False, stdin=MSG,
                    env={'XDG_CONFIG_HOME': None})
    assert r.code == 0, r.describe()
    assert 'MAIL FROM:<dotconfig@example.test>' in srv.text_lines


def test_dash_C_replaces_user_file(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    write(os.path.join(run_mailcar.home, '.mailcarrc'), 'account default\nhost 127.0.0.1\nport 1\n')
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG)
    assert r.code == 0, r.describe()


def test_missing_dash_C_file(run_mailcar, tmp_path):
    r = run_mailcar(['-C', str(tmp_path / 'nope'), 'rcpt@example.test'], use_config=False,
                    stdin=MSG)
    assert r.code == 78, r.describe()
    assert str(tmp_path / 'nope').encode() in r.stderr


def test_no_configuration_at_all(run_mailcar):
    r = run_mailcar(['rcpt@example.test'], use_config=False, stdin=MSG)
    assert r.code == 78, r.describe()
    assert b"add 'host NAME'" in r.stderr


def test_unknown_key_names_file_and_line(run_mailcar):
    r = run_mailcar(['rcpt@example.test'], config=['hots mail.example.test'], stdin=MSG)
    assert r.code == 78, r.describe()
    assert b":8: unknown key 'hots'" in r.stderr


def test_duplicate_key_warns(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    path, _ = run_mailcar.write_config(
        ['account default', 'host 127.0.0.1', 'port %d' % srv.port, 'tls off', 'tls off',
         'from s@example.test'])
    r = run_mailcar(['-C', path, 'rcpt@example.test'], server=srv, use_config=False, stdin=MSG)
    assert r.code == 0, r.describe()
    assert b"warning:" in r.stderr and b"set twice" in r.stderr


def test_pretend_masks_secrets(run_mailcar):
    r = run_mailcar(['--pretend'], config=['user alice', 'password hunter2-secret',
                                           'tls_trust_file /etc/ssl/certs/ca-certificates.crt'])
    assert r.code == 0, r.describe()
    out = r.stdout.decode()
    assert 'hunter2-secret' not in out
    assert '********' in out
    assert 'host' in out and '127.0.0.1' in out
    assert '# effective' in out


def test_pretend_shows_account_choice(run_mailcar):
    cfg = ['account default', 'host 127.0.0.1', 'from d@example.test',
           'account work', 'host 127.0.0.2', 'from *@work.test']
    r = run_mailcar(['--pretend', '-f', 'me@work.test'], config=cfg, replace_config=True)
    assert r.code == 0, r.describe()
    assert b'account: work' in r.stdout
    assert b'127.0.0.2' in r.stdout


def test_version_lists_features(run_mailcar):
    r = run_mailcar(['--version'], use_config=False)
    assert r.code == 0
    out = r.stdout.decode()
    assert out.startswith('mailcar ')
    for word in ('OpenSSL', 'SCRAM-SHA-256', 'PIPELINING', 'CHUNKING'):
        assert word in out


def test_help(run_mailcar):
    r = run_mailcar(['--help'], use_config=False)
    assert r.code == 0
    assert b'Usage: mailcar' in r.stdout and b'--tls-starttls' in r.stdout


def test_missing_input_file(run_mailcar, tmp_path):
    r = run_mailcar(['--input', str(tmp_path / 'missing.eml'), 'rcpt@example.test'])
    assert r.code == 74, r.describe()
    assert b'cannot open input' in r.stderr


def test_bad_input_file_names_it(faultserver, run_mailcar, tmp_path):
    bad = tmp_path / 'bad.eml'
    bad.write_bytes(b'Subject: x\n\nbare\rCR\n')
    srv = faultserver(responder=fs.Responder(), tls=False)
    r = run_mailcar(['--input', str(bad), 'rcpt@example.test'], server=srv)
    assert r.code == 65, r.describe()
    assert str(bad).encode() in r.stderr and b'bare CR' in r.stderr
    assert srv.lines == []


def test_verbose_transcript_format(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    r = run_mailcar(['-v', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert r.code == 0, r.describe()
    lines = r.stderr.decode().splitlines()
    assert any(l.startswith('--> EHLO ') for l in lines)
    assert any(l.startswith('<-- 220 ') for l in lines)
    assert '--> MAIL FROM:<sender@example.test>' in lines
    assert all(l.startswith(('--> ', '<-- ', 'mailcar: ')) for l in lines)


def test_server_text_escaped_in_transcript(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(greeting='220 hi \x1b[31mred'), tls=False)
    r = run_mailcar(['-v', 'rcpt@example.test'], server=srv, stdin=MSG)
    assert r.code == 0, r.describe()
    assert b'\x1b' not in r.stderr
    assert b'\\x1b[31mred' in r.stderr
