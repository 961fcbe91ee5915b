"""protocol lmtp (RFC 2033): LHLO, and one reply per accepted recipient after
the data, each becoming that recipient's result."""

from postfix_server import postfix  # noqa: F401  (the fixture)

MSG = b'Subject: lmtp\n\nbody\n'

HEAD = ('S: 220 lmtp.test LMTP\nC: LHLO *\nS: 250-lmtp.test\\r\\n250-PIPELINING\\r\\n'
        '250 ENHANCEDSTATUSCODES\nC: MAIL FROM:<sender@example.test>\n'
        'C: RCPT TO:<a@example.test>\nC: RCPT TO:<b@example.test>\nC: DATA\n'
        'S: 250 2.1.0 ok\\r\\n250 2.1.5 ok\\r\\n250 2.1.5 ok\\r\\n354 go\nDATA\n')


def lmtp(run_mailcar, srv, *extra):
    return run_mailcar(['a@example.test', 'b@example.test'], server=srv, stdin=MSG,
                       config=['protocol lmtp'] + list(extra))


def test_each_recipient_gets_its_reply(faultserver, run_mailcar):
    srv = faultserver(script=HEAD + 'S: 250 2.0.0 <a> delivered\\r\\n250 2.0.0 <b> delivered\n'
                      'C: QUIT\nS: 221 bye\n', tls=False)
    r = lmtp(run_mailcar, srv)
    assert r.code == 0, r.describe() + srv.report()
    assert srv.errors == [], srv.report()


def test_one_recipient_fails_after_data(faultserver, run_mailcar):
    srv = faultserver(script=HEAD + 'S: 250 2.0.0 <a> delivered\\r\\n550 5.2.2 <b> mailbox full\n'
                      'C: QUIT\nS: 221 bye\n', tls=False)
    r = lmtp(run_mailcar, srv)
    assert r.code == 67, r.describe()
    assert b'<b@example.test> refused: 550 5.2.2 <b> mailbox full' in r.stderr
    assert b'<a@example.test>' not in r.stderr


def test_every_recipient_fails_temporarily(faultserver, run_mailcar):
    srv = faultserver(script=HEAD + 'S: 452 4.2.2 over quota\\r\\n451 4.3.0 later\n'
                      'C?: QUIT\nS: 221 bye\n', tls=False)
    r = lmtp(run_mailcar, srv)
    assert r.code == 75, r.describe()


def test_lhlo_refused(faultserver, run_mailcar):
    srv = faultserver(script='S: 220 x\nC: LHLO *\nS: 500 5.5.1 what\n', tls=False)
    r = lmtp(run_mailcar, srv)
    assert r.code == 69, r.describe()
    assert b'LHLO' in r.stderr


def test_dovecot_lmtp(postfix, run_mailcar):
    """Dovecot's own LMTP listener (started with the private Postfix) delivers
    into a Maildir per recipient."""
    import glob
    import os
    import pytest
    if not os.path.exists(postfix.lmtp_socket or ''):
        pytest.skip('dovecot-lmtpd is not installed (tests/setup-debian.sh installs it)')
    cfg = ['account default', 'protocol lmtp', 'socket %s' % postfix.lmtp_socket, 'tls off',
           'auth off', 'from alice@example.test', 'timeout 10']
    r = run_mailcar(['-v', 'alice@example.test', 'bob@example.test', 'carol@example.test'],
                    config=cfg, replace_config=True, stdin=b'Subject: lmtp to dovecot\n\nhello\n')
    assert r.code == 67, r.describe()      # carol has no mailbox there
    assert b'--> LHLO ' in r.stderr
    assert b'<carol@example.test> refused: 550 5.1.1' in r.stderr
    for user in ('alice@example.test', 'bob@example.test'):
        files = glob.glob(os.path.join(postfix.vmail, user, 'Maildir', 'new', '*'))
        assert len(files) >= 1, (user, os.listdir(postfix.vmail))
        assert b'Subject: lmtp to dovecot' in open(files[-1], 'rb').read()
