"""Aliases for local recipients (`aliases FILE`, /etc/aliases format).

Every local recipient is expanded, including the one after an expanded
alias (msmtp skips it); what stays unqualified gets qualify_domain or fails
naming the recipient, never `RCPT TO:<root>`.
"""

import os
import re

import faultserver as fs

MSG = b'Subject: aliases\n\nbody\n'


def rcpts(srv):
    return [m.group(1) for m in (re.match(r'(?i)RCPT TO:<([^>]*)>', l) for l in srv.text_lines) if m]


def write(run_mailcar, name, text):
    path = os.path.join(run_mailcar.tmpdir, name)
    with open(path, 'w') as f:
        f.write(text)
    return path


def test_alias_and_the_recipient_after_it(run_mailcar, faultserver):
    path = write(run_mailcar, 'aliases',
                 '# test\nroot: ops@example.org, admin@example.org\nwww-data: web@example.org\n'
                 'Postmaster: root\n')
    srv = faultserver(tls=False)
    r = run_mailcar(['root', 'www-data', 'bob@example.org', 'postmaster'], server=srv,
                    config=['aliases %s' % path], stdin=MSG)
    assert r.code == 0, r.describe() + srv.report()
    assert rcpts(srv) == ['ops@example.org', 'admin@example.org', 'web@example.org',
                          'bob@example.org']


def test_unqualified_left_over_is_qualified_or_refused(run_mailcar, faultserver):
    path = write(run_mailcar, 'aliases', 'root: root, ops@example.org\n')
    srv = faultserver(tls=False)
    r = run_mailcar(['root'], server=srv, config=['aliases %s' % path], stdin=MSG)
    assert r.code == 65 and b'root' in r.stderr, r.describe()
    assert srv.connections == []
    srv = faultserver(tls=False)
    r = run_mailcar(['root'], server=srv, stdin=MSG,
                    config=['aliases %s' % path, 'qualify_domain host.example.org'])
    assert r.code == 0, r.describe()
    assert rcpts(srv) == ['root@host.example.org', 'ops@example.org']


def test_default_include_and_t(run_mailcar, faultserver):
    inc = write(run_mailcar, 'team', 'alice@example.org\n# comment\nbob@example.org, root\n')
    path = write(run_mailcar, 'aliases',
                 'team: :include:%s\nroot: ops@example.org\ndefault: catch@example.org\n' % inc)
    srv = faultserver(tls=False)
    r = run_mailcar(['-t'], server=srv, config=['aliases %s' % path],
                    stdin=b'To: team, nobody\nSubject: x\n\nbody\n')
    assert r.code == 0, r.describe() + srv.report()
    assert rcpts(srv) == ['alice@example.org', 'bob@example.org', 'ops@example.org',
                          'catch@example.org']


def test_alias_loop_and_bad_files(run_mailcar, faultserver):
    chain = ''.join('a%d: a%d\n' % (i, i + 1) for i in range(40))
    path = write(run_mailcar, 'aliases', chain)
    r = run_mailcar(['a0'], config=['aliases %s' % path], stdin=MSG)
    assert r.code == 78 and b'deeper' in r.stderr, r.describe()
    r = run_mailcar(['a0'], config=['aliases /nonexistent/aliases'], stdin=MSG)
    assert r.code == 78 and b'/nonexistent/aliases' in r.stderr, r.describe()
    path = write(run_mailcar, 'aliases2', 'x: |/bin/sh -c evil\n')
    r = run_mailcar(['x'], config=['aliases %s' % path], stdin=MSG)
    assert r.code == 65 and b'pipes and files' in r.stderr, r.describe()


def test_rewrite_from_for_system_mail(run_mailcar, faultserver):
    srv = faultserver(tls=False)
    r = run_mailcar(['-f', 'root@localhost', 'rcpt@example.test'], server=srv,
                    config=['rewrite_from on', 'from cron@example.org', 'read_envelope_from on'],
                    stdin=b'From: root <root@localhost>\nSubject: cron\n\nbody\n')
    assert r.code == 0, r.describe() + srv.report()
    assert 'MAIL FROM:<cron@example.org>' in srv.text_lines
    head = fs.unstuff(srv.data[0]).split(b'\r\n\r\n', 1)[0]
    froms = [l for l in head.split(b'\r\n') if l.lower().startswith(b'from:')]
    assert len(froms) == 1 and froms[0].endswith(b'<cron@example.org>'), head
    assert b'root@localhost' not in head


def test_rewrite_from_needs_an_address(run_mailcar):
    r = run_mailcar(['rcpt@example.test'], config=['rewrite_from on', 'from *@example.org'],
                    stdin=MSG)
    assert r.code == 78 and b'rewrite_from' in r.stderr, r.describe()


def test_bv_verifies_the_expanded_addresses(run_mailcar, faultserver):
    path = write(run_mailcar, 'aliases', 'root: ops@example.org\n')
    srv = faultserver(tls=False)
    r = run_mailcar(['-bv', 'root'], server=srv, config=['aliases %s' % path])
    assert r.code == 0, r.describe() + srv.report()
    assert rcpts(srv) == ['ops@example.org']
    assert b'ops@example.org: deliverable' in r.stdout
