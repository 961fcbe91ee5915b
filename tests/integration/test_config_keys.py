"""Every configuration key mailcar honours, end to end against the fault server.

Each test changes one key (or a pair that only works together) from the
default plain account that conftest writes, and checks what reached the
server, what the client printed, and the exit status.
"""

import hashlib
import os
import re
import socket
import ssl
import subprocess

import pytest

import faultserver as fs

MSG = b'Subject: keys\n\nbody\n'
FULL = (b'From: Head <head@example.test>\nTo: to@example.test\nCc: cc@example.test\n'
        b'Bcc: hidden@example.test\nSubject: keys\nDate: Mon, 01 Jan 2024 00:00:00 +0000\n'
        b'Message-ID: <keys@example.test>\n\nbody\n')


def plain(faultserver, **kw):
    return faultserver(responder=fs.Responder(**kw), tls=False)


def send(run_mailcar, srv, config=(), args=('rcpt@example.test',), stdin=MSG, **kw):
    r = run_mailcar(list(args), server=srv, config=list(config), stdin=stdin, **kw)
    return r


def header_block(message):
    return message.split(b'\r\n\r\n', 1)[0].decode()


def test_host_and_port(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = run_mailcar(['rcpt@example.test'], config=['host localhost', 'port %d' % srv.port],
                    stdin=MSG, server=srv)
    assert r.code == 0, r.describe()
    assert len(srv.messages) == 1


def test_no_host_is_a_config_error(run_mailcar):
    r = run_mailcar(['rcpt@example.test'], replace_config=True,
                    config=['account default', 'tls off', 'from a@example.test'], stdin=MSG)
    assert r.code == 78, r.describe()
    assert b"add 'host NAME'" in r.stderr
    assert r.stderr.count(b'\n') == 1


def test_bad_port_value(run_mailcar):
    r = run_mailcar(['rcpt@example.test'], config=['port 70000'], stdin=MSG)
    assert r.code == 78, r.describe()
    assert b'port' in r.stderr and b'70000' in r.stderr


def test_domain_is_ehlo_name(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['domain client.example.test'])
    assert r.code == 0, r.describe()
    assert 'EHLO client.example.test' in srv.text_lines
    # and the right-hand side of the generated Message-ID
    assert re.search(r'Message-ID: <[0-9a-f]+@client\.example\.test>', header_block(srv.messages[0]))


def test_domain_with_space_refused(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['domain "a b"'])
    assert r.code == 78, r.describe()
    assert srv.lines == []


def test_from_is_envelope_sender(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['from other@example.test'])
    assert r.code == 0, r.describe()
    assert 'MAIL FROM:<other@example.test>' in srv.text_lines
    assert 'From: other@example.test' in header_block(srv.messages[0])


def test_from_full_name(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['from_full_name Cron Daemon'])
    assert r.code == 0, r.describe()
    assert 'From: Cron Daemon <sender@example.test>' in header_block(srv.messages[0])


def test_allow_from_override_off(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['allow_from_override off'],
             args=['-f', 'forged@example.test', 'rcpt@example.test'])
    assert r.code == 0, r.describe()
    assert 'MAIL FROM:<sender@example.test>' in srv.text_lines


def test_allow_from_override_on_by_default(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, args=['-f', 'other@example.test', 'rcpt@example.test'])
    assert r.code == 0, r.describe()
    assert 'MAIL FROM:<other@example.test>' in srv.text_lines


def test_read_envelope_from(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['read_envelope_from on'], stdin=FULL)
    assert r.code == 0, r.describe()
    assert 'MAIL FROM:<head@example.test>' in srv.text_lines


def test_read_recipients(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['read_recipients on'], args=[], stdin=FULL)
    assert r.code == 0, r.describe()
    rcpts = sorted(l for l in srv.text_lines if l.startswith('RCPT'))
    assert rcpts == ['RCPT TO:<cc@example.test>', 'RCPT TO:<hidden@example.test>',
                     'RCPT TO:<to@example.test>']
    assert 'hidden@' not in header_block(srv.messages[0])


def test_remove_bcc_headers_off(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['remove_bcc_headers off'], stdin=FULL)
    assert r.code == 0, r.describe()
    assert 'Bcc: hidden@example.test' in header_block(srv.messages[0])


@pytest.mark.parametrize('key,header', [('set_date_header', 'Date:'),
                                        ('set_msgid_header', 'Message-ID:'),
                                        ('set_from_header', 'From:')])
def test_set_header_off(faultserver, run_mailcar, key, header):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['%s off' % key])
    assert r.code == 0, r.describe()
    assert header not in header_block(srv.messages[0])


def test_set_from_header_on_replaces(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['set_from_header on'], stdin=FULL)
    assert r.code == 0, r.describe()
    head = header_block(srv.messages[0])
    assert 'head@example.test' not in head
    assert 'From: sender@example.test' in head


def test_set_to_header(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['set_to_header on'])
    assert r.code == 0, r.describe()
    assert 'To: undisclosed-recipients:;' in header_block(srv.messages[0])


def test_bad_tristate_value(faultserver, run_mailcar):
    r = run_mailcar(['rcpt@example.test'], config=['set_date_header sometimes'], stdin=MSG)
    assert r.code == 78, r.describe()
    assert b'set_date_header' in r.stderr


def test_dsn_keys(faultserver, run_mailcar):
    srv = plain(faultserver, caps=['PIPELINING', 'DSN'])
    r = send(run_mailcar, srv, ['dsn_notify failure,delay', 'dsn_return headers'])
    assert r.code == 0, r.describe()
    assert 'MAIL FROM:<sender@example.test> RET=HDRS' in srv.text_lines
    assert 'RCPT TO:<rcpt@example.test> NOTIFY=failure,delay' in srv.text_lines


def test_dsn_not_offered_warns(faultserver, run_mailcar):
    srv = plain(faultserver, caps=['PIPELINING'])
    r = send(run_mailcar, srv, ['dsn_notify failure'])
    assert r.code == 0, r.describe()
    assert b'warning: server does not offer DSN' in r.stderr
    assert 'RCPT TO:<rcpt@example.test>' in srv.text_lines


def test_dsn_required(faultserver, run_mailcar):
    srv = plain(faultserver, caps=['PIPELINING'])
    r = send(run_mailcar, srv, ['dsn_notify failure', 'dsn_required on'])
    assert r.code == 69, r.describe()
    assert srv.messages == []


def test_partial_delivery_off(faultserver, run_mailcar):
    srv = plain(faultserver, rcpt={'bad@example.test': '550 5.1.1 no such user'})
    r = send(run_mailcar, srv, ['partial_delivery off'],
             args=['good@example.test', 'bad@example.test'])
    assert r.code == 67, r.describe()
    assert srv.messages == []
    assert b'<bad@example.test> refused: 550 5.1.1 no such user' in r.stderr


def test_partial_delivery_default_on(faultserver, run_mailcar):
    srv = plain(faultserver, rcpt={'bad@example.test': '550 5.1.1 no such user'})
    r = send(run_mailcar, srv, args=['good@example.test', 'bad@example.test'])
    assert r.code == 67, r.describe()
    assert len(srv.messages) == 1
    assert b'<bad@example.test> refused' in r.stderr


def test_timeout_key(faultserver, run_mailcar):
    srv = plain(faultserver, overrides={'MAIL': 'STALL 30'})
    r = send(run_mailcar, srv, ['timeout 1'], wait_server=0.5)
    assert r.code == 75, r.describe()
    assert r.elapsed < 10
    assert b'timed out' in r.stderr


def test_deadline_key(faultserver, run_mailcar):
    # Each reply comes within the step timeout, but the whole exchange cannot.
    srv = plain(faultserver, overrides={'EHLO': 'DRIP 0.3 250-faultserver.test\r\n250 8BITMIME'})
    r = send(run_mailcar, srv, ['timeout 5', 'deadline 2'], wait_server=0.5)
    assert r.code == 75, r.describe()
    assert b'overall deadline' in r.stderr
    assert r.elapsed < 8


def test_connect_timeout_key(run_mailcar):
    # A listener that never accepts: the kernel backlog completes the handshake,
    # so use an unroutable loopback port instead: nothing listens, refused at once.
    port = fs.free_port()
    r = run_mailcar(['rcpt@example.test'], port=port, config=['connect_timeout 2'], stdin=MSG)
    assert r.code == 75, r.describe()
    assert b'cannot connect to 127.0.0.1 port %d' % port in r.stderr


def test_source_ip(run_mailcar):
    # A bare listener that records where the connection came from.
    lsock = socket.socket()
    lsock.bind(('127.0.0.1', 0))
    lsock.listen(1)
    lsock.settimeout(10)
    port = lsock.getsockname()[1]
    r = run_mailcar(['rcpt@example.test'], port=port, config=['source_ip 127.0.0.2'],
                    stdin=MSG, timeout=10)
    conn, peer = lsock.accept()
    conn.close()
    lsock.close()
    assert peer[0] == '127.0.0.2'
    assert r.code == 75, r.describe()   # the listener never greeted


@pytest.mark.parametrize('value', ['not-an-address', '::1'])
def test_source_ip_unusable(faultserver, run_mailcar, value):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['source_ip %s' % value], wait_server=0.2)
    assert r.code == 78, r.describe()
    assert b'source_ip' in r.stderr


def test_address_family(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['address_family ipv6', 'host localhost'], wait_server=0.2)
    # The server listens on 127.0.0.1 only: an IPv6-only client cannot reach it.
    assert r.code in (68, 75), r.describe()
    assert srv.lines == []


def test_logfile(faultserver, run_mailcar, tmp_path):
    srv = plain(faultserver)
    log = tmp_path / 'mailcar.log'
    r = send(run_mailcar, srv, ['logfile %s' % log], stdin=FULL)
    assert r.code == 0, r.describe()
    line = log.read_text()
    assert line.count('\n') == 1
    for part in ('host=127.0.0.1', 'tls=none', 'from=sender@example.test',
                 'recipients=rcpt@example.test', 'msgid=<keys@example.test>', 'exitcode=0',
                 'reply='):
        assert part in line, line
    assert os.stat(log).st_mode & 0o077 == 0


def test_logfile_records_failure(faultserver, run_mailcar, tmp_path):
    srv = plain(faultserver, overrides={'MAIL': '452 4.3.1 full'})
    log = tmp_path / 'mailcar.log'
    r = send(run_mailcar, srv, ['logfile %s' % log])
    assert r.code == 75, r.describe()
    assert 'exitcode=75' in log.read_text()
    assert '452 4.3.1 full' in log.read_text()


def test_logfile_names_refused_recipients(faultserver, run_mailcar, tmp_path):
    srv = plain(faultserver, rcpt={'bad@example.test': '550 5.1.1 no such user'})
    log = tmp_path / 'mailcar.log'
    r = send(run_mailcar, srv, ['logfile %s' % log], args=['good@example.test', 'bad@example.test'])
    assert r.code == 67, r.describe()
    assert 'refused="bad@example.test (550 5.1.1 no such user)"' in log.read_text()


def test_logfile_unwritable(faultserver, run_mailcar, tmp_path):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['logfile %s/no/such/dir/log' % tmp_path])
    assert r.code == 0, r.describe()   # the message went; the log failure is reported
    assert b'cannot write log file' in r.stderr


def test_syslog_bad_facility(run_mailcar):
    r = run_mailcar(['rcpt@example.test'], config=['syslog LOG_NOWHERE'], stdin=MSG)
    assert r.code == 78, r.describe()
    assert b'syslog' in r.stderr


@pytest.mark.parametrize('line', ['tls_crl_file /etc/ssl/crl.pem', 'undisclosed_recipients on'])
def test_unsupported_keys_refused(run_mailcar, line):
    r = run_mailcar(['rcpt@example.test'], config=[line], stdin=MSG)
    assert r.code == 78, r.describe()
    assert b'not supported by this version' in r.stderr


def test_harmless_unsupported_key_warns(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['logfile_time_format %Y'])
    assert r.code == 0, r.describe()
    assert b'warning:' in r.stderr and b'logfile_time_format' in r.stderr


# --- TLS and AUTH keys against the fault server ------------------------------

def tls_server(faultserver, implicit=False, **kw):
    caps = kw.pop('caps', ['PIPELINING', 'AUTH PLAIN LOGIN'] + ([] if implicit else ['STARTTLS']))
    responder = fs.Responder(caps=caps, **kw)
    if implicit:   # the handshake first, then a normal server inside TLS
        return faultserver(script='TLS\nRESPONDER', responder=responder)
    return faultserver(responder=responder)


def tls_config(certs, implicit=False):
    return ['tls on', 'tls_starttls %s' % ('off' if implicit else 'on'),
            'tls_trust_file %s' % certs.ca]


def test_starttls_verified(faultserver, run_mailcar, tls_certs):
    srv = tls_server(faultserver)
    r = send(run_mailcar, srv, tls_config(tls_certs) + ['host localhost'])
    assert r.code == 0, r.describe()
    assert 'STARTTLS' in srv.text_lines
    assert len(srv.messages) == 1


def test_implicit_tls(faultserver, run_mailcar, tls_certs):
    srv = tls_server(faultserver, implicit=True)
    r = send(run_mailcar, srv, tls_config(tls_certs, implicit=True))
    assert r.code == 0, r.describe()
    assert 'STARTTLS' not in srv.text_lines
    assert len(srv.messages) == 1


def test_untrusted_certificate_refused(faultserver, run_mailcar, tls_certs):
    srv = tls_server(faultserver)
    r = send(run_mailcar, srv, ['tls on'], wait_server=0.5)   # system store: test CA unknown
    assert r.code == 75, r.describe()
    assert b'certificate' in r.stderr
    assert srv.messages == []


def test_certcheck_off_warns_loudly(faultserver, run_mailcar):
    srv = tls_server(faultserver)
    r = send(run_mailcar, srv, ['tls on', 'tls_certcheck off'], args=['-v', 'rcpt@example.test'])
    assert r.code == 0, r.describe()
    assert b'NOT verified' in r.stderr


def test_host_override(faultserver, run_mailcar, tls_certs):
    srv = tls_server(faultserver)
    r = send(run_mailcar, srv, tls_config(tls_certs) + ['tls_host_override wrong.example'],
             wait_server=0.5)
    assert r.code == 75, r.describe()
    r = send(run_mailcar, tls_server(faultserver),
             tls_config(tls_certs) + ['host 127.0.0.1', 'tls_host_override localhost'])
    assert r.code == 0, r.describe()


def cert_fingerprints(certs):
    der = ssl.PEM_cert_to_DER_cert(open(certs.cert).read())
    cert_fp = hashlib.sha256(der).hexdigest()
    spki = subprocess.run(['openssl', 'x509', '-in', certs.cert, '-pubkey', '-noout'],
                          capture_output=True, check=True).stdout
    key_der = subprocess.run(['openssl', 'pkey', '-pubin', '-outform', 'DER'], input=spki,
                             capture_output=True, check=True).stdout
    return cert_fp, hashlib.sha256(key_der).hexdigest()


def colon(hexstr):
    return ':'.join(hexstr[i:i + 2] for i in range(0, len(hexstr), 2)).upper()


def test_fingerprint_pins(faultserver, run_mailcar, tls_certs):
    cert_fp, key_fp = cert_fingerprints(tls_certs)
    for pin in (colon(cert_fp), key_fp):
        srv = tls_server(faultserver)
        r = send(run_mailcar, srv, ['tls on', 'tls_fingerprint %s' % pin])
        assert r.code == 0, r.describe()
    srv = tls_server(faultserver)
    r = send(run_mailcar, srv, ['tls on', 'tls_fingerprint ' + colon('00' * 32)], wait_server=0.5)
    assert r.code == 75, r.describe()
    assert b'does not match tls_fingerprint' in r.stderr
    assert srv.messages == []


def test_tls_min_version(faultserver, run_mailcar, tls_certs):
    srv = tls_server(faultserver)
    r = send(run_mailcar, srv, tls_config(tls_certs) + ['tls_min_version tls1.3', 'host localhost'])
    assert r.code == 0, r.describe()
    r = run_mailcar(['rcpt@example.test'], config=['tls_min_version ssl3'], stdin=MSG)
    assert r.code == 78, r.describe()


def test_tls_ciphers_bad(run_mailcar):
    r = run_mailcar(['rcpt@example.test'], config=['tls on', 'tls_ciphers NO-SUCH-CIPHER',
                                                   'host localhost'], stdin=MSG)
    assert r.code in (75, 78), r.describe()


def test_tls_priorities_mapped(faultserver, run_mailcar, tls_certs):
    for value in ('NORMAL', 'SECURE256:-VERS-ALL:+VERS-TLS1.3', 'PFS:%SERVER_PRECEDENCE'):
        srv = tls_server(faultserver)
        r = send(run_mailcar, srv, tls_config(tls_certs) + ['host localhost',
                                                             'tls_priorities %s' % value])
        assert r.code == 0, r.describe()


def test_tls_priorities_unmappable_refused(run_mailcar):
    for value in ('NONE:+AES-128-GCM', 'NORMAL:-CIPHER-ALL'):
        r = run_mailcar(['rcpt@example.test'], config=['tls_priorities %s' % value], stdin=MSG)
        assert r.code == 78, r.describe()
        assert b'tls_ciphers' in r.stderr


def auth_config(certs, *extra):
    return tls_config(certs) + ['host localhost', 'auth on', 'user alice'] + list(extra)


def test_auth_password(faultserver, run_mailcar, tls_certs):
    srv = tls_server(faultserver, credentials=('alice', 's3cret'))
    r = send(run_mailcar, srv, auth_config(tls_certs, 'password s3cret'),
             args=['-v', 'rcpt@example.test'])
    assert r.code == 0, r.describe()
    assert b'AUTH PLAIN <redacted>' in r.stderr
    assert b's3cret' not in r.stderr and b'czNjcmV0' not in r.stderr


def test_auth_wrong_password(faultserver, run_mailcar, tls_certs):
    srv = tls_server(faultserver, credentials=('alice', 's3cret'))
    r = send(run_mailcar, srv, auth_config(tls_certs, 'password wrong'))
    assert r.code == 77, r.describe()
    assert srv.messages == []


def test_auth_forced_mechanism(faultserver, run_mailcar, tls_certs):
    srv = tls_server(faultserver, credentials=('alice', 's3cret'))
    r = send(run_mailcar, srv, auth_config(tls_certs, 'password s3cret', 'auth login'))
    assert r.code == 0, r.describe()
    assert 'AUTH LOGIN' in srv.text_lines


def test_auth_bad_mechanism_name(run_mailcar):
    r = run_mailcar(['rcpt@example.test'], config=['auth magic'], stdin=MSG)
    assert r.code == 78, r.describe()


def test_passwordeval(faultserver, run_mailcar, tls_certs, tmp_path):
    srv = tls_server(faultserver, credentials=('alice', 's3cret'))
    # stdin of the command is /dev/null: it cannot eat the message.
    r = send(run_mailcar, srv, auth_config(tls_certs, 'passwordeval "cat; echo s3cret"'))
    assert r.code == 0, r.describe()
    assert srv.messages[0].endswith(b'body\r\n')


def test_passwordeval_failure(faultserver, run_mailcar, tls_certs):
    srv = tls_server(faultserver, credentials=('alice', 's3cret'))
    r = send(run_mailcar, srv, auth_config(tls_certs, 'passwordeval "echo s3cret; exit 3"'),
             wait_server=0.2)
    assert r.code == 78, r.describe()
    assert b'exit status 3' in r.stderr
    assert srv.lines == []


def test_password_file(faultserver, run_mailcar, tls_certs, tmp_path):
    pw = tmp_path / 'pw'
    pw.write_text('s3cret\n')
    os.chmod(pw, 0o600)
    srv = tls_server(faultserver, credentials=('alice', 's3cret'))
    r = send(run_mailcar, srv, auth_config(tls_certs, 'password_file %s' % pw))
    assert r.code == 0, r.describe()
    os.chmod(pw, 0o644)
    r = run_mailcar(['rcpt@example.test'], config=auth_config(tls_certs, 'password_file %s' % pw),
                    stdin=MSG)
    assert r.code == 78, r.describe()
    assert b'chmod 600' in r.stderr


def test_config_with_password_must_be_private(run_mailcar):
    r = run_mailcar(['rcpt@example.test'], config=['password x'], stdin=MSG)
    assert r.code != 78, r.describe()      # the runner writes mode 600: accepted
    os.chmod(r.config_path, 0o644)
    r2 = run_mailcar(['-C', r.config_path, 'rcpt@example.test'], use_config=False, stdin=MSG)
    assert r2.code == 78, r2.describe()
    assert b'chmod 600' in r2.stderr


def test_qualify_domain(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['qualify_domain example.test'], args=['root', 'www-data'])
    assert r.code == 0, r.describe()
    assert 'RCPT TO:<root@example.test>' in srv.text_lines
    assert 'RCPT TO:<www-data@example.test>' in srv.text_lines


def test_unqualified_without_qualify_domain(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, args=['root'], wait_server=0.2)
    assert r.code == 65, r.describe()
    assert b'"root" has no domain' in r.stderr
    assert srv.lines == []


def test_account_chosen_by_bracketed_f(faultserver, run_mailcar):
    srv = plain(faultserver)
    cfg = ['account default', 'host 127.0.0.1', 'port 1', 'tls off', 'from d@example.test',
           'account work', 'host 127.0.0.1', 'port %d' % srv.port, 'tls off',
           'from me@work.test']
    r = run_mailcar(['-f', '<me@work.test>', 'rcpt@example.test'], server=srv, config=cfg,
                    replace_config=True, stdin=MSG)
    assert r.code == 0, r.describe()
    assert 'MAIL FROM:<me@work.test>' in srv.text_lines


def test_glob_from_is_not_a_sender(faultserver, run_mailcar):
    srv = plain(faultserver)
    r = send(run_mailcar, srv, ['from *@example.test', 'domain host.example.test'])
    assert r.code == 0, r.describe()
    mail = next(l for l in srv.text_lines if l.startswith('MAIL'))
    assert '*' not in mail and mail.endswith('@host.example.test>')


def test_typed_values_checked_with_line(run_mailcar):
    r = run_mailcar(['rcpt@example.test'], config=['set_from_header maybe'], stdin=MSG)
    assert r.code == 78, r.describe()
    assert re.search(rb'mailcarrc-\d+:\d+: ', r.stderr), r.stderr


def test_unsupported_option_on_command_line(run_mailcar):
    r = run_mailcar(['--tls-crl-file=/etc/ssl/crl.pem', 'rcpt@example.test'], stdin=MSG)
    assert r.code == 78, r.describe()
    assert b'option --tls-crl-file is not supported' in r.stderr


def test_default_port_hint_for_msmtp_files(run_mailcar):
    # An msmtprc without 'port' relied on msmtp's default 25; nothing listens on 587 here.
    r = run_mailcar(['rcpt@example.test'], replace_config=True, stdin=MSG,
                    config=['account default', 'host 127.0.0.1', 'tls off', 'from a@example.test'])
    if b'port 587' not in r.stderr:
        pytest.skip('something listens on 127.0.0.1:587 on this machine')
    assert r.code == 75, r.describe()
    assert b"add 'port 25'" in r.stderr


def openssl_conf(tmp_path, body):
    path = tmp_path / 'openssl.cnf'
    path.write_text('openssl_conf = init\n[init]\nssl_conf = ssl\n[ssl]\n'
                    'system_default = sys\n[sys]\n' + body)
    return str(path)


def test_system_openssl_policy_applies(faultserver, run_mailcar, tls_certs, tmp_path):
    """openssl.cnf's MinProtocol is a distribution's crypto policy: it outranks our default."""
    conf = openssl_conf(tmp_path, 'MinProtocol = TLSv1.3\n')
    for env, want in (({}, 0), ({'OPENSSL_CONF': conf}, 75)):
        srv = tls_server(faultserver)
        srv.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
        r = send(run_mailcar, srv, tls_config(tls_certs) + ['host localhost'], env=env,
                 wait_server=0.5)
        assert r.code == want, r.describe()
    assert b'protocol' in r.stderr or b'version' in r.stderr, r.describe()

