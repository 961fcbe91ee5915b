"""Failover: a host list and fallback_account, across three fault servers
(one down, one answering 421, one up); a permanent failure does not fail
over; every failed attempt is logged."""

import faultserver as fs

MSG = b'Subject: failover\n\nbody\n'


def servers(faultserver):
    down = fs.free_port()
    busy = faultserver(responder=fs.Responder(greeting='421 4.3.2 too busy'), tls=False)
    up = faultserver(responder=fs.Responder(), tls=False)
    return down, busy, up


def test_host_list(faultserver, run_mailcar, tmp_path):
    down, busy, up = servers(faultserver)
    log = tmp_path / 'log'
    # One port for the whole list, so the hosts differ by address: the fault
    # server listens on 127.0.0.1 only, so 127.0.0.2 and 127.0.0.3 refuse.
    cfg = ['account default', 'host 127.0.0.2, 127.0.0.3', 'port %d' % up.port, 'tls off',
           'auth off', 'from s@example.test', 'logfile %s' % log]
    r = run_mailcar(['-v', 'rcpt@example.test'], config=cfg, replace_config=True, stdin=MSG)
    assert r.code == 75, r.describe()
    assert b'127.0.0.2 failed' in r.stderr
    cfg[1] = 'host 127.0.0.2, 127.0.0.1'
    r = run_mailcar(['-v', 'rcpt@example.test'], server=up, config=cfg, replace_config=True,
                    stdin=MSG)
    assert r.code == 0, r.describe()
    assert len(up.messages) == 1
    lines = log.read_text().splitlines()
    assert any('host=127.0.0.2' in l and 'exitcode=75' in l for l in lines)


def test_fallback_accounts_down_busy_up(faultserver, run_mailcar, tmp_path):
    down, busy, up = servers(faultserver)
    log = tmp_path / 'log'
    cfg = ['defaults', 'tls off', 'auth off', 'from s@example.test', 'logfile %s' % log,
           'account up', 'host 127.0.0.1', 'port %d' % up.port,
           'account busy', 'host 127.0.0.1', 'port %d' % busy.port, 'fallback_account up',
           'account default', 'host 127.0.0.1', 'port %d' % down, 'fallback_account busy']
    r = run_mailcar(['-v', 'rcpt@example.test'], server=up, config=cfg, replace_config=True,
                    stdin=MSG)
    assert r.code == 0, r.describe()
    assert b'trying fallback account busy' in r.stderr
    assert b'trying fallback account up' in r.stderr
    assert len(up.messages) == 1
    text = log.read_text()
    assert 'Connection refused' in text and '421 4.3.2 too busy' in text


def test_permanent_failure_does_not_fail_over(faultserver, run_mailcar):
    refusing = faultserver(responder=fs.Responder(greeting='554 5.7.1 go away'), tls=False)
    up = faultserver(responder=fs.Responder(), tls=False)
    cfg = ['account up', 'host 127.0.0.1', 'port %d' % up.port, 'tls off', 'auth off',
           'from s@example.test',
           'account default', 'host 127.0.0.1', 'port %d' % refusing.port, 'tls off',
           'auth off', 'from s@example.test', 'fallback_account up']
    r = run_mailcar(['rcpt@example.test'], config=cfg, replace_config=True, stdin=MSG)
    assert r.code == 69, r.describe()
    up.stop()
    assert up.lines == []


def test_fallback_loop_is_bounded(run_mailcar):
    port = fs.free_port()
    cfg = ['defaults', 'tls off', 'auth off', 'host 127.0.0.1', 'port %d' % port,
           'account a', 'fallback_account b', 'account b', 'fallback_account a',
           'account default : a']
    r = run_mailcar(['rcpt@example.test'], config=cfg, replace_config=True, stdin=MSG)
    assert r.code == 75, r.describe()
    assert b'gave up after 8 fallback accounts' in r.stderr


def test_unknown_fallback_account(run_mailcar):
    port = fs.free_port()
    cfg = ['account default', 'host 127.0.0.1', 'port %d' % port, 'tls off',
           'fallback_account nowhere']
    r = run_mailcar(['rcpt@example.test'], config=cfg, replace_config=True, stdin=MSG)
    assert r.code == 78, r.describe()
    assert b'fallback_account' in r.stderr and b'nowhere' in r.stderr
