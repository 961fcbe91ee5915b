"""The durable queue, against the fault server.

With `queue on`, a temporary failure at any stage queues the message exactly
once and mailcar exits 0; `mailcar -q` then delivers it exactly once, over
one connection per account, never re-sending to a recipient the server
already took.  Retries back off; after queue_lifetime one RFC 3464 bounce
goes to the sender (never to <>, never for a bounce).  kill -9 at every
step of enqueue and flush (MAILCAR_TEST_CRASH) loses nothing; 200
concurrent enqueues during a flush lose and duplicate nothing.  Time is
moved with MAILCAR_NOW.
"""

import json
import os
import random
import re
import signal
import subprocess
import time

import pytest

import faultserver as fs
from conftest import default_config, merge_config

SENDER = 'sender@example.test'
RCPT = 'rcpt@example.test'
HOUR = 3600
DAY = 86400


def message(n=0):
    return ('Subject: queued %d\n\nbody %d\n' % (n, n)).encode()


@pytest.fixture
def qdir(run_mailcar):
    return os.path.join(run_mailcar.tmpdir, 'queue')


def qconf(qdir, *extra):
    return ['queue on', 'queue_dir %s' % qdir] + list(extra)


def diag(res, srv=None):
    out = res.describe()
    if srv is not None:
        out += '\n--- server transcript:\n' + srv.report()
    return out


def accepted(srv):
    """Messages the server confirmed with a 2xx."""
    return [m for m in srv.all_messages() if m.get('reply') and m['reply'].startswith('2')]


def queue_json(run_mailcar, qdir, env=None):
    r = run_mailcar(['-bp', '--json'], config=qconf(qdir), env=env)
    assert r.code in (0, 75), r.describe()
    return json.loads(r.stdout)['queue']


def files(qdir):
    return sorted(os.listdir(qdir)) if os.path.isdir(qdir) else []


def enqueue(run_mailcar, qdir, n=0, args=(RCPT,), extra=(), env=None):
    """A message queued because nothing listens on the port."""
    r = run_mailcar(['-f', SENDER] + list(args), config=qconf(qdir, *extra), stdin=message(n),
                    env=env)
    assert r.code == 0, r.describe()
    assert b'queued as' in r.stderr, r.describe()
    return re.search(rb'queued as (\S+)', r.stderr).group(1).decode()


def flush(run_mailcar, qdir, srv, args=(), later=HOUR, extra=(), env=None):
    e = {'MAILCAR_NOW': '+%d' % later}
    e.update(env or {})
    return run_mailcar(['-q'] + list(args), server=srv, config=qconf(qdir, *extra), env=e)


# ---- enqueue -----------------------------------------------------------------

def test_temporary_failure_is_queued_and_exits_0(run_mailcar, qdir):
    qid = enqueue(run_mailcar, qdir)
    assert sorted(files(qdir)) == [qid + '.env', qid + '.msg']
    q = queue_json(run_mailcar, qdir)
    assert [m['id'] for m in q] == [qid]
    assert q[0]['from'] == SENDER and q[0]['attempts'] == 1
    assert [r['address'] for r in q[0]['recipients']] == [RCPT]
    assert 'connect' in q[0]['last_error']
    assert 0 < q[0]['next_attempt'] - time.time() <= 301
    assert q[0]['argv'][-3:] == ['-f', SENDER, RCPT]     # the original call, for the record
    st = os.stat(qdir)
    assert st.st_mode & 0o777 == 0o700


def test_without_queue_a_temporary_failure_still_exits_75(run_mailcar, qdir):
    r = run_mailcar([RCPT], stdin=message(), config=['queue_dir %s' % qdir])
    assert r.code == 75, r.describe()
    assert files(qdir) == []


def test_permanent_failure_is_never_queued(run_mailcar, faultserver, qdir):
    srv = faultserver(responder=fs.Responder(rcpt={RCPT: '550 5.1.1 no such user'}), tls=False)
    r = run_mailcar([RCPT], server=srv, stdin=message(), config=qconf(qdir))
    assert r.code == 67, diag(r, srv)
    assert [f for f in files(qdir) if f.endswith('.env')] == []


def test_mailq_text_and_exit_status(run_mailcar, qdir):
    r = run_mailcar([], argv0='mailq', config=qconf(qdir))
    assert r.code == 0 and b'Mail queue is empty' in r.stdout, r.describe()
    qid = enqueue(run_mailcar, qdir)
    r = run_mailcar(['-bp'], config=qconf(qdir))
    assert r.code == 75, r.describe()
    line = r.stdout.decode().splitlines()[0]
    assert line.startswith(qid + '  ')
    assert '<%s>' % SENDER in line and '<%s>' % RCPT in line and 'next: in' in line
    assert 'attempts: 1' in line and 'error: cannot connect' in line


STAGES = {
    'greeting 421': {'greeting': '421 4.3.2 try later'},
    'EHLO 421': {'overrides': {'EHLO': '421 4.3.2 shutting down'}},
    'MAIL 451': {'overrides': {'MAIL': '451 4.3.0 try later'}},
    'RCPT 451': {'rcpt': {RCPT: '451 4.2.0 mailbox busy'}},
    'DATA 451': {'overrides': {'DATA': '451 4.3.0 not now'}},
    'end of data 451': {'overrides': {'DATA-END': '451 4.3.0 not stored'}},
    'close at MAIL': {'overrides': {'MAIL': 'CLOSE'}},
    'reset at DATA': {'overrides': {'DATA': 'RESET'}},
}


@pytest.mark.parametrize('stage', sorted(STAGES))
def test_fault_at_every_stage_queued_once_delivered_once(run_mailcar, faultserver, qdir, stage):
    bad = faultserver(responder=fs.Responder(**STAGES[stage]), tls=False)
    r = run_mailcar(['-f', SENDER, RCPT], server=bad, stdin=message(7), config=qconf(qdir))
    assert r.code == 0, diag(r, bad)
    assert b'queued as' in r.stderr
    assert accepted(bad) == []
    q = queue_json(run_mailcar, qdir)
    assert len(q) == 1, q
    good = faultserver(tls=False)
    r = flush(run_mailcar, qdir, good)
    assert r.code == 0, diag(r, good)
    got = accepted(good)
    assert len(got) == 1, diag(r, good)
    assert got[0]['rcpts'] == [RCPT] and got[0]['mail_from'] == SENDER
    assert b'body 7' in fs.unstuff(got[0]['data'])
    assert files(qdir) == []
    again = faultserver(tls=False)
    r = flush(run_mailcar, qdir, again, later=DAY)
    assert r.code == 0 and accepted(again) == [], diag(r, again)


def test_partial_delivery_queues_only_the_refused_recipient(run_mailcar, faultserver, qdir):
    other = 'other@example.test'
    srv = faultserver(responder=fs.Responder(rcpt={other: '452 4.2.2 over quota'}), tls=False)
    r = run_mailcar(['-f', SENDER, RCPT, other], server=srv, stdin=message(), config=qconf(qdir))
    assert r.code == 0, diag(r, srv)
    assert [m['rcpts'] for m in accepted(srv)] == [[RCPT]]
    q = queue_json(run_mailcar, qdir)
    assert [x['address'] for x in q[0]['recipients']] == [other]
    good = faultserver(tls=False)
    r = flush(run_mailcar, qdir, good)
    assert r.code == 0, diag(r, good)
    assert [m['rcpts'] for m in accepted(good)] == [[other]]
    assert files(qdir) == []


def test_flush_sends_several_messages_over_one_connection(run_mailcar, faultserver, qdir):
    for i in range(5):
        enqueue(run_mailcar, qdir, i)
    srv = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv)
    assert r.code == 0, diag(r, srv)
    assert len(srv.connections) == 1
    bodies = sorted(fs.unstuff(m['data']).split(b'\r\n\r\n', 1)[1] for m in accepted(srv))
    assert bodies == [b'body %d\r\n' % i for i in range(5)]
    assert files(qdir) == []
    assert b'5 delivered' in r.stderr


def test_a_refused_message_does_not_stop_the_others(run_mailcar, faultserver, qdir):
    ids = [enqueue(run_mailcar, qdir, i) for i in range(3)]
    calls = []

    def mail(conn, line):
        calls.append(1)
        return '451 4.3.0 not this one' if len(calls) == 2 else None

    # A failed transaction is ended with RSET, then the next one follows.
    srv = faultserver(responder=fs.Responder(overrides={'MAIL': mail}), tls=False)
    r = flush(run_mailcar, qdir, srv)
    assert r.code == 0, diag(r, srv)
    assert len(srv.connections) == 1
    assert len(accepted(srv)) == 2
    assert 'RSET' in srv.text_lines
    assert [m['id'] for m in queue_json(run_mailcar, qdir)] == [ids[1]]


def test_retry_schedule_backs_off_and_due_only(run_mailcar, faultserver, qdir):
    enqueue(run_mailcar, qdir, extra=('queue_retry 10m',))
    srv = faultserver(tls=False)
    r = run_mailcar(['-q'], server=srv, config=qconf(qdir, 'queue_retry 10m'))
    assert r.code == 0 and srv.connections == [], diag(r, srv)   # not due yet
    busy = fs.Responder(overrides={'MAIL': '451 4.3.0 later'})
    waits = []
    for k in range(1, 5):
        now = int(time.time()) + k * DAY
        s = faultserver(responder=busy, tls=False)
        r = flush(run_mailcar, qdir, s, later=k * DAY, extra=('queue_retry 10m',
                                                               'queue_retry_max 1h'))
        assert r.code == 0, diag(r, s)
        q = queue_json(run_mailcar, qdir)
        assert q[0]['attempts'] == k + 1
        waits.append(q[0]['next_attempt'] - now)
        assert '451 4.3.0 later' in q[0]['last_error']
    assert [round(w / 600.0) * 600 for w in waits] == [1200, 2400, 3600, 3600]


def test_qI_and_qR_force_a_run(run_mailcar, faultserver, qdir):
    a = enqueue(run_mailcar, qdir, 1, args=('a@one.test',))
    b = enqueue(run_mailcar, qdir, 2, args=('b@two.test',))
    srv = faultserver(tls=False)
    r = run_mailcar(['-qI', a], server=srv, config=qconf(qdir))
    assert r.code == 0, diag(r, srv)
    assert [m['rcpts'] for m in accepted(srv)] == [['a@one.test']]
    srv = faultserver(tls=False)
    r = run_mailcar(['-qR', 'two.test'], server=srv, config=qconf(qdir))
    assert r.code == 0, diag(r, srv)
    assert [m['rcpts'] for m in accepted(srv)] == [['b@two.test']]
    assert files(qdir) == []
    assert b != a


def test_hold_release_delete(run_mailcar, faultserver, qdir):
    a = enqueue(run_mailcar, qdir, 1)
    b = enqueue(run_mailcar, qdir, 2)
    r = run_mailcar(['--queue-hold', a], config=qconf(qdir))
    assert r.code == 0 and b'held' in r.stderr, r.describe()
    assert [m['held'] for m in queue_json(run_mailcar, qdir)] == [True, False]
    srv = faultserver(tls=False)
    r = run_mailcar(['-qI', a], server=srv, config=qconf(qdir))
    assert r.code == 0 and accepted(srv) == [], diag(r, srv)
    r = run_mailcar(['--queue-delete', b], config=qconf(qdir))
    assert r.code == 0, r.describe()
    r = run_mailcar(['--queue-release', a], config=qconf(qdir))
    assert r.code == 0, r.describe()
    srv = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv)
    assert r.code == 0 and len(accepted(srv)) == 1, diag(r, srv)
    assert files(qdir) == []
    r = run_mailcar(['--queue-delete', 'nosuchid'], config=qconf(qdir))
    assert r.code == 65 and b'nosuchid' in r.stderr, r.describe()
    r = run_mailcar(['--queue-delete', '../etc'], config=qconf(qdir))
    assert r.code == 64, r.describe()


# ---- expiry and bounces --------------------------------------------------------

def test_expiry_sends_one_rfc3464_bounce(run_mailcar, faultserver, qdir):
    qid = enqueue(run_mailcar, qdir)
    srv = faultserver(responder=fs.Responder(rcpt={RCPT: '451 4.2.0 mailbox busy'}), tls=False)
    r = flush(run_mailcar, qdir, srv, later=6 * DAY)
    assert r.code == 0, diag(r, srv)
    got = accepted(srv)
    assert len(got) == 1, diag(r, srv)
    bounce = fs.unstuff(got[0]['data'])
    assert got[0]['mail_from'] == '' and got[0]['rcpts'] == [SENDER]
    assert b'multipart/report; report-type=delivery-status' in bounce
    assert b'Content-Type: message/delivery-status' in bounce
    assert b'Final-Recipient: rfc822; ' + RCPT.encode() in bounce
    assert b'Action: failed' in bounce and b'Status: 4.4.7' in bounce
    assert b'X-Mailcar-Queue-ID: ' + qid.encode() in bounce
    assert b'Subject: queued 0' in bounce           # the original headers come back
    assert len(srv.connections) == 1                # the bounce rode the same connection
    assert files(qdir) == []
    again = faultserver(tls=False)
    r = flush(run_mailcar, qdir, again, later=30 * DAY)
    assert accepted(again) == [], diag(r, again)


def test_permanent_failure_in_the_queue_bounces_with_the_servers_status(
        run_mailcar, faultserver, qdir):
    enqueue(run_mailcar, qdir)
    srv = faultserver(responder=fs.Responder(rcpt={RCPT: '550 5.1.1 gone'}), tls=False)
    r = flush(run_mailcar, qdir, srv)
    assert r.code == 0, diag(r, srv)
    got = accepted(srv)
    assert [m['rcpts'] for m in got] == [[SENDER]]
    assert b'Status: 5.1.1' in fs.unstuff(got[0]['data'])


def test_no_bounce_to_the_null_sender(run_mailcar, faultserver, qdir):
    r = run_mailcar(['-f', '<>', RCPT], config=qconf(qdir), stdin=message())
    assert r.code == 0, r.describe()
    srv = faultserver(responder=fs.Responder(rcpt={RCPT: '451 4.2.0 busy'}), tls=False)
    r = flush(run_mailcar, qdir, srv, later=6 * DAY)
    assert r.code == 0, diag(r, srv)
    assert accepted(srv) == [] and b'no bounce' in r.stderr
    assert files(qdir) == []


def test_never_a_bounce_of_a_bounce(run_mailcar, faultserver, qdir):
    enqueue(run_mailcar, qdir)
    refuse = fs.Responder(overrides={'RCPT': '451 4.2.0 busy'})
    srv = faultserver(responder=refuse, tls=False)
    r = flush(run_mailcar, qdir, srv, later=6 * DAY)
    assert r.code == 0 and accepted(srv) == [], diag(r, srv)
    q = queue_json(run_mailcar, qdir)
    assert len(q) == 1 and q[0]['bounce'] and q[0]['from'] == ''
    srv = faultserver(responder=refuse, tls=False)
    r = flush(run_mailcar, qdir, srv, later=12 * DAY)
    assert r.code == 0 and accepted(srv) == [], diag(r, srv)
    assert files(qdir) == []


# ---- format ------------------------------------------------------------------

def test_unknown_format_version_is_left_alone(run_mailcar, faultserver, qdir):
    qid = enqueue(run_mailcar, qdir)
    path = os.path.join(qdir, qid + '.env')
    with open(path, 'rb') as f:
        data = f.read()
    assert data.startswith(b'mailcar-queue 1\n') and data.endswith(b'end\n')
    with open(path, 'wb') as f:
        f.write(data.replace(b'mailcar-queue 1\n', b'mailcar-queue 2\n', 1))
    r = run_mailcar(['-bp'], config=qconf(qdir))
    assert r.code == 74 and b'version 2 is not supported' in r.stderr, r.describe()
    srv = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv)
    assert r.code == 74 and accepted(srv) == [], diag(r, srv)
    assert os.path.exists(path)


def test_truncated_envelope_is_reported_not_sent(run_mailcar, faultserver, qdir):
    qid = enqueue(run_mailcar, qdir)
    path = os.path.join(qdir, qid + '.env')
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:-4])
    r = run_mailcar(['-bp'], config=qconf(qdir))
    assert r.code == 74 and b'corrupt queue file' in r.stderr, r.describe()


# ---- crashes ---------------------------------------------------------------------

ENQUEUE_STEPS = ['enqueue-body', 'enqueue-env', 'enqueue-link', 'enqueue-rename']


@pytest.mark.parametrize('step', ENQUEUE_STEPS)
def test_kill_at_every_enqueue_step(run_mailcar, faultserver, qdir, step):
    r = run_mailcar(['-f', SENDER, RCPT], config=qconf(qdir), stdin=message(3),
                    env={'MAILCAR_TEST_CRASH': step})
    assert r.code == -signal.SIGKILL, r.describe()
    listed = queue_json(run_mailcar, qdir)
    # Committed exactly when ID.env was renamed into place.
    assert len(listed) == (1 if step == 'enqueue-rename' else 0)
    srv = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv, later=2 * HOUR)
    assert r.code == 0, diag(r, srv)
    assert len(accepted(srv)) == len(listed)
    assert files(qdir) == []          # debris swept


FLUSH_STEPS = ['flush-locked', 'flush-sent', 'remove-env']


@pytest.mark.parametrize('step', FLUSH_STEPS)
def test_kill_at_every_flush_step(run_mailcar, faultserver, qdir, step):
    enqueue(run_mailcar, qdir, 4)
    srv = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv, env={'MAILCAR_TEST_CRASH': step})
    assert r.code == -signal.SIGKILL, diag(r, srv)
    first = len(accepted(srv))
    srv2 = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv2, later=2 * HOUR)
    assert r.code == 0, diag(r, srv2)
    second = len(accepted(srv2))
    # Never lost; sent twice only when the crash fell between the server's
    # 250 and the queue's record of it (the at-least-once window).
    assert first + second >= 1
    if step == 'flush-locked':
        assert (first, second) == (0, 1)
    if step == 'remove-env':
        assert (first, second) == (1, 0)
    assert files(qdir) == []


def test_kill_at_bounce_marked_never_sends_two_bounces(run_mailcar, faultserver, qdir):
    enqueue(run_mailcar, qdir)
    srv = faultserver(responder=fs.Responder(rcpt={RCPT: '550 5.1.1 gone'}), tls=False)
    r = flush(run_mailcar, qdir, srv, env={'MAILCAR_TEST_CRASH': 'flush-bounce-marked'})
    assert r.code == -signal.SIGKILL, diag(r, srv)
    srv2 = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv2, later=2 * HOUR)
    assert r.code == 0, diag(r, srv2)
    assert len(accepted(srv)) + len(accepted(srv2)) <= 1
    assert files(qdir) == []


def spawn(run_mailcar, args, lines, stdin=b'', env=None):
    path, _ = run_mailcar.write_config(lines)
    return subprocess.Popen([run_mailcar.binary, '-C', path] + list(args), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=run_mailcar.env(env), cwd=run_mailcar.tmpdir)


def wait_stopped(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open('/proc/%d/stat' % pid) as f:
            if f.read().rsplit(')', 1)[1].split()[0] == 'T':
                return
        time.sleep(0.01)
    raise AssertionError('process %d did not stop' % pid)


def test_queue_run_between_envelope_and_rename_keeps_the_enqueue(run_mailcar, faultserver,
                                                                 qdir):
    """A queue run whose clock is hours ahead (MAILCAR_NOW, or a clock step) sweeps
    temporary files by age: it must not take an enqueue's envelope, written and not
    yet renamed, for debris.  The enqueue stops itself at that instant."""
    lines = merge_config(default_config(fs.free_port()), qconf(qdir))
    p = spawn(run_mailcar, ['-f', SENDER, RCPT], lines, env={'MAILCAR_TEST_STOP': 'enqueue-env'})
    p.stdin.write(message(7))
    p.stdin.close()
    try:
        wait_stopped(p.pid)
        assert any(f.startswith('.tmp-') and '.env.' in f for f in files(qdir)), files(qdir)
        r = flush(run_mailcar, qdir, faultserver(tls=False), later=3 * HOUR)
        assert r.code == 0, r.describe()
    finally:
        p.send_signal(signal.SIGCONT)
    assert p.wait(30) == 0, p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    assert [m['from'] for m in queue_json(run_mailcar, qdir)] == [SENDER]
    srv = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv, later=4 * HOUR)
    assert r.code == 0, r.describe()
    assert len(accepted(srv)) == 1
    assert files(qdir) == []


def test_kill_9_at_random_instants_loses_nothing(run_mailcar, faultserver, qdir):
    lines = merge_config(default_config(fs.free_port()), qconf(qdir))
    rng = random.Random(4)
    survived = 0
    for i in range(30):
        p = spawn(run_mailcar, ['-f', SENDER, RCPT], lines)
        p.stdin.write(message(i))
        p.stdin.close()
        time.sleep(rng.uniform(0, 0.02))
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        p.stderr.close()
        survived += p.returncode == 0
    listed = queue_json(run_mailcar, qdir)
    assert len(listed) >= survived
    srv = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv, later=2 * HOUR)
    assert r.code == 0, diag(r, srv)
    assert len(accepted(srv)) == len(listed)
    assert files(qdir) == []


def test_200_concurrent_enqueues_during_a_flush(run_mailcar, faultserver, qdir):
    for i in range(20):
        enqueue(run_mailcar, qdir, 1000 + i)
    # settle=0: no pause before each reply, so 220 messages fit the time limit under load.
    srv = faultserver(tls=False, max_connections=500, settle=0)
    good = merge_config(default_config(srv.port), qconf(qdir))
    down = merge_config(default_config(fs.free_port()), qconf(qdir))
    flusher = spawn(run_mailcar, ['-q'], good, env={'MAILCAR_NOW': '+%d' % HOUR})
    procs = []
    for i in range(200):
        p = spawn(run_mailcar, ['-f', SENDER, RCPT], down)
        p.stdin.write(message(i))
        p.stdin.close()
        procs.append(p)
        if len(procs) % 50 == 0:
            for q in procs[-50:]:
                q.wait(30)
    for p in procs:
        assert p.wait(30) == 0, p.stderr.read()
        p.stdout.close()
        p.stderr.close()
    out, err = flusher.communicate(timeout=60)
    assert flusher.returncode == 0, err
    mid = len(accepted(srv))
    assert mid >= 20
    srv2 = faultserver(tls=False, max_connections=500, settle=0)
    r = flush(run_mailcar, qdir, srv2, later=2 * HOUR)
    assert r.code == 0, diag(r, srv2)
    msgs = accepted(srv) + accepted(srv2)
    bodies = [fs.unstuff(m['data']).split(b'\r\n\r\n', 1)[1] for m in msgs]
    want = sorted([b'body %d\r\n' % i for i in range(200)] +
                  [b'body %d\r\n' % (1000 + i) for i in range(20)])
    assert sorted(bodies) == want          # nothing lost, nothing twice
    assert files(qdir) == []


def test_successful_send_flushes_due_mail_in_the_background(run_mailcar, faultserver, qdir):
    enqueue(run_mailcar, qdir, 1)
    srv = faultserver(tls=False)
    r = run_mailcar(['-f', SENDER, RCPT], server=srv, config=qconf(qdir), stdin=message(2),
                    env={'MAILCAR_NOW': '+%d' % HOUR}, stop_server=False)
    assert r.code == 0 and r.elapsed < 2, diag(r, srv)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (len(accepted(srv)) < 2 or files(qdir)):
        time.sleep(0.05)
    bodies = sorted(fs.unstuff(m['data']).split(b'\r\n\r\n', 1)[1] for m in accepted(srv))
    assert bodies == [b'body 1\r\n', b'body 2\r\n'], diag(r, srv)
    assert files(qdir) == []
    srv.stop()


def test_not_due_mail_waits_after_a_successful_send(run_mailcar, faultserver, qdir):
    enqueue(run_mailcar, qdir, 1)
    srv = faultserver(tls=False)
    r = run_mailcar(['-f', SENDER, RCPT], server=srv, config=qconf(qdir), stdin=message(2))
    assert r.code == 0, diag(r, srv)
    time.sleep(0.3)
    assert len(accepted(srv)) == 1 and len(queue_json(run_mailcar, qdir)) == 1


def test_q_interval_loop_runs_again(run_mailcar, faultserver, qdir):
    enqueue(run_mailcar, qdir, 1)
    srv = faultserver(tls=False)
    lines = merge_config(default_config(srv.port), qconf(qdir))
    p = spawn(run_mailcar, ['-q1s'], lines, env={'MAILCAR_NOW': '+%d' % HOUR})
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(accepted(srv)) < 1:
            time.sleep(0.05)
        enqueue(run_mailcar, qdir, 2, env={'MAILCAR_NOW': '-%d' % HOUR})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(accepted(srv)) < 2:
            time.sleep(0.05)
        assert p.poll() is None          # still looping
    finally:
        p.kill()
        p.communicate()
    assert len(accepted(srv)) == 2


def test_a_locked_message_never_blocks_the_others(run_mailcar, faultserver, qdir):
    import fcntl
    a = enqueue(run_mailcar, qdir, 1)
    b = enqueue(run_mailcar, qdir, 2)
    with open(os.path.join(qdir, a + '.msg'), 'rb') as held:
        fcntl.flock(held, fcntl.LOCK_EX)      # as if another run were stuck on it
        srv = faultserver(tls=False)
        r = flush(run_mailcar, qdir, srv)
        assert r.code == 0, diag(r, srv)
        assert len(accepted(srv)) == 1
        r = run_mailcar(['--queue-delete', a], config=qconf(qdir))
        assert r.code == 65 and b'being delivered' in r.stderr, r.describe()
    assert [m['id'] for m in queue_json(run_mailcar, qdir)] == [a]
    assert not any(f.startswith(b) for f in files(qdir))


def test_message_of_a_removed_account_is_retried_then_expires(run_mailcar, faultserver, qdir):
    work = ['account work', 'host 127.0.0.1', 'port %d' % fs.free_port(), 'tls off',
            'auth off', 'from work@example.test', 'queue on', 'queue_dir %s' % qdir]
    r = run_mailcar(['-a', 'work', RCPT], config=qconf(qdir) + work, stdin=message())
    assert r.code == 0 and b'queued as' in r.stderr, r.describe()
    srv = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv)            # the account is no longer configured
    assert r.code == 0 and b'work' in r.stderr, diag(r, srv)
    q = queue_json(run_mailcar, qdir)
    assert q[0]['account'] == 'work' and q[0]['attempts'] == 2 and 'work' in q[0]['last_error']
    srv = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv, later=6 * DAY)   # expired: the bounce cannot go either
    assert r.code == 0 and accepted(srv) == [], diag(r, srv)
    q = queue_json(run_mailcar, qdir)
    assert len(q) == 1 and q[0]['bounce']
    srv = faultserver(tls=False)
    r = flush(run_mailcar, qdir, srv, later=12 * DAY)  # and the bounce is dropped in the end
    assert r.code == 0 and files(qdir) == [], diag(r, srv)


def test_queue_unusable_keeps_the_temporary_status(run_mailcar, tmp_path):
    blocker = tmp_path / 'not-a-dir'
    blocker.write_text('x')
    r = run_mailcar([RCPT], config=qconf(str(blocker / 'queue')), stdin=message())
    assert r.code == 75, r.describe()
    assert b'cannot queue the message' in r.stderr


def test_kill_9_during_flushes_at_random_instants_loses_nothing(run_mailcar, faultserver, qdir):
    for i in range(10):
        enqueue(run_mailcar, qdir, i)
    srv = faultserver(tls=False, max_connections=500, settle=0)
    lines = merge_config(default_config(srv.port), qconf(qdir))
    rng = random.Random(9)
    kills = 0
    for _ in range(40):
        if not queue_json(run_mailcar, qdir):
            break
        p = spawn(run_mailcar, ['-q'], lines, env={'MAILCAR_NOW': '+%d' % DAY})
        time.sleep(rng.uniform(0, 0.03))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.communicate()
    r = flush(run_mailcar, qdir, srv, later=2 * DAY)
    assert r.code == 0, diag(r, srv)
    bodies = [fs.unstuff(m['data']).split(b'\r\n\r\n', 1)[1] for m in accepted(srv)]
    assert set(bodies) == {b'body %d\r\n' % i for i in range(10)}    # nothing lost
    assert len(bodies) - 10 <= kills          # a repeat only where a kill hit the window
    assert files(qdir) == []
