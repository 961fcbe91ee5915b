"""OpenSSL is opened on first use (src/ossl.c), not linked: a run that needs
no TLS never loads it, and without the library a TLS run stops before
sending anything, says which file it could not load, and exits 71."""

import os
import subprocess

import pytest

import faultserver as fs

MSG = b'Subject: loading\n\nbody\n'


def dlopen_build(binary):
    out = subprocess.run(['ldd', binary], capture_output=True, text=True).stdout
    return 'libssl' not in out


@pytest.fixture
def needs_dlopen(mailcar):
    if not dlopen_build(mailcar):
        pytest.skip('this build links OpenSSL (configure --disable-openssl-dlopen)')


def loaded_files(run_mailcar, args, server=None, config=()):
    r = run_mailcar(args, server=server, config=config, stdin=MSG, env={'LD_DEBUG': 'files'})
    return r, r.stderr.decode('utf-8', 'replace')


def test_plain_send_and_version_do_not_load_openssl(needs_dlopen, faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    r, log = loaded_files(run_mailcar, ['rcpt@example.test'], server=srv)
    assert r.code == 0, r.describe()
    assert 'libssl' not in log and 'libcrypto' not in log
    r, log = loaded_files(run_mailcar, ['--version'])
    assert r.code == 0 and b'loaded on first use' in r.stdout, r.describe()
    assert 'libssl' not in log


def test_starttls_loads_openssl(needs_dlopen, faultserver, run_mailcar, tls_certs):
    srv = faultserver(responder=fs.Responder(caps=['PIPELINING', 'STARTTLS']))
    r, log = loaded_files(run_mailcar, ['rcpt@example.test'], server=srv,
                          config=['tls on', 'tls_trust_file %s' % tls_certs.ca,
                                  'host localhost'])
    assert r.code == 0, r.describe()
    assert 'libssl' in log and 'libcrypto' in log
    assert len(srv.messages) == 1


def replace_prefix(path, by):
    """argv prefix: run with the file at path replaced by the file by (root only)."""
    return ['unshare', '-m', 'sh', '-c', 'mount --bind "$1" "$0" && shift && exec "$@"', path, by]


def lib_path(name):
    # The file the dynamic linker would find for name.
    out = subprocess.run(['ldconfig', '-p'], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if name + ' ' in line and '=>' in line:
            return line.split('=>')[1].strip()
    return None


# libssl.so.3 as an empty file (cannot be loaded), or as libcrypto (loads, lacks SSL_*).
@pytest.mark.parametrize('by, why', [('/dev/null', b'cannot load OpenSSL, needed for TLS: '),
                                     ('libcrypto.so.3', b'OpenSSL (libssl.so.3) lacks ')],
                         ids=['missing', 'wrong-library'])
def test_without_openssl_tls_exits_71_before_sending(needs_dlopen, faultserver, run_mailcar,
                                                     tls_certs, by, why):
    if os.geteuid() != 0:
        pytest.skip('replacing the library needs root (a private mount namespace)')
    path = lib_path('libssl.so.3')
    if not by.startswith('/'):
        by = lib_path(by)
    if path is None or by is None:
        pytest.skip('ldconfig does not list libssl.so.3 and libcrypto.so.3')
    srv = faultserver(responder=fs.Responder(caps=['PIPELINING', 'STARTTLS']))
    cfg, _ = run_mailcar.write_config(['account default', 'host localhost', 'port %d' % srv.port,
                                       'tls on', 'tls_trust_file %s' % tls_certs.ca,
                                       'from s@example.test', 'timeout 5'])
    argv = replace_prefix(path, by) + [run_mailcar.binary, '-C', cfg, 'rcpt@example.test']
    p = subprocess.run(argv, input=MSG, capture_output=True, env=run_mailcar.env(), timeout=30)
    srv.wait_idle(2)
    srv.stop()
    assert p.returncode == 71, p.stderr
    assert p.stderr.startswith(b'mailcar: ' + why), p.stderr
    assert len(p.stderr.splitlines()) == 1, p.stderr
    assert srv.messages == []
    assert not any(l.startswith(b'MAIL') for l in srv.commands.splitlines())
