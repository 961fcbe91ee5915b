"""Name resolution outcomes and their exit statuses, against a fake DNS
server on loopback (the test never asks a real resolver)."""

import subprocess


import faultserver as fs
from dnsfake import dns, needs_fake_dns, resolver_prefix  # noqa: F401  (dns: a fixture)

MSG = b'Subject: dns\n\nbody\n'

pytestmark = needs_fake_dns


def run(run_mailcar, tmp_path, host, port=25):
    path, _ = run_mailcar.write_config(['account default', 'host %s' % host, 'port %d' % port,
                                        'tls off', 'from s@example.test', 'timeout 5'])
    argv = resolver_prefix(tmp_path) + [run_mailcar.binary, '-C', path, 'rcpt@example.test']
    return subprocess.run(argv, input=MSG, capture_output=True, env=run_mailcar.env(), timeout=30)


def test_host_not_found_is_68(dns, run_mailcar, tmp_path):
    p = run(run_mailcar, tmp_path, 'mail.nx.test')
    assert p.returncode == 68, p.stderr
    assert p.stderr == b"mailcar: host 'mail.nx.test' not found\n"
    assert any(q[0] == 'mail.nx.test' for q in dns.queries)


def test_servfail_is_temporary(dns, run_mailcar, tmp_path):
    p = run(run_mailcar, tmp_path, 'mail.servfail.test')
    assert p.returncode == 75, p.stderr
    assert b"looking up 'mail.servfail.test'" in p.stderr


def test_no_answer_is_temporary(dns, run_mailcar, tmp_path):
    p = run(run_mailcar, tmp_path, 'mail.silent.test')
    assert p.returncode == 75, p.stderr


def test_resolved_name_is_used(dns, run_mailcar, tmp_path, faultserver):
    srv = faultserver(responder=fs.Responder(), tls=False)
    p = run(run_mailcar, tmp_path, 'relay.example.test', srv.port)
    srv.wait_idle()
    srv.stop()
    assert p.returncode == 0, p.stderr
    assert len(srv.messages) == 1
