#!/usr/bin/python3
"""Soak: N submissions from P parallel callers, a tenth of them faulted.

    /usr/bin/python3 tests/soak.py [--n N] [--p P] [--quick] [--mailcar PATH]

Starts a throwaway private Postfix (tests/servers/pf.py; needs root and
tests/setup-debian.sh) and, in-process, three fault servers
(tests/integration/faultserver.py) that answer 421 to RCPT, close the
connection after the final dot, or stall at DATA past the client's timeout.
Every caller runs `mailcar` with `queue on` and one shared queue directory:

  * about 1 in 10 messages goes to a fault server: exit 0, "queued as";
  * about 1 in 50 goes to Postfix for reject@example.test: exit 67 (550 at
    RCPT), never queued, never delivered;
  * the rest go to Postfix's plain port: exit 0, delivered.

Then one `mailcar -q` (MAILCAR_NOW=+3600 makes every retry due) sends the
queue to Postfix.  Afterwards every message is counted, not sampled, by its
X-Soak-Id header in Postfix's sink: each message meant to arrive arrived
exactly once, each refused one never arrived and exited 67, and the queue is
empty.  Exit 0 when all of that holds, 1 otherwise, 77 when the private
Postfix cannot run here (not root, not installed).

`make soak` runs N=10000 P=20; --quick (CI, tests/check-all.sh) N=300 P=10.
"""

import argparse
import collections
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'servers'))
sys.path.insert(0, os.path.join(HERE, 'integration'))
import pf  # noqa: E402
import faultserver as fs  # noqa: E402

SENDER = 'soak@example.test'
RCPT = 'rcpt@example.test'
FAULTS = {                     # name -> (responder overrides, extra config)
    '421-rcpt': ({'RCPT': '421 4.3.2 soak: closing'}, []),
    'close-after-dot': ({'DATA-END': 'CLOSE'}, []),
    'stall-data': ({'DATA': 'STALL 4'}, ['timeout 1']),
}


def log(msg):
    sys.stderr.write('soak: %s\n' % msg)
    sys.stderr.flush()


def write_config(d, name, port, extra=()):
    path = os.path.join(d, 'mailcarrc-' + name)
    lines = ['account default', 'host 127.0.0.1', 'port %d' % port, 'tls off', 'auth off',
             'from %s' % SENDER, 'timeout 30', 'deadline 120', 'queue on',
             'queue_dir %s' % os.path.join(d, 'queue')] + list(extra)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(''.join(l + '\n' for l in lines))
    return path


def message(run, n):
    return ('From: Soak <%s>\nTo: %s\nSubject: soak %s %d\nMessage-ID: <soak-%d.%s@example.test>\n'
            'X-Soak-Id: %s-%d\n\nmessage %d of the soak run %s\n'
            % (SENDER, RCPT, run, n, n, run, run, n, n, run)).encode()


def plan(n):
    """Message number -> its kind: a fault name, 'reject' or 'ok'."""
    names = sorted(FAULTS)
    kinds = {}
    for i in range(n):
        if i % 10 == 7:
            kinds[i] = names[(i // 10) % len(names)]
        elif i % 50 == 23:
            kinds[i] = 'reject'
        else:
            kinds[i] = 'ok'
    return kinds


def delivered_ids(maildir, run):
    """X-Soak-Id counter -> how many times it is in the sink."""
    count = collections.Counter()
    pat = re.compile(rb'^X-Soak-Id: ' + re.escape(run.encode()) + rb'-(\d+)\s*$', re.M | re.I)
    for name in os.listdir(maildir):
        if not name.endswith('.eml') or name.startswith('.'):
            continue
        with open(os.path.join(maildir, name), 'rb') as f:
            head = f.read().split(b'\n\n', 1)[0]
        for m in pat.finditer(head):
            count[int(m.group(1))] += 1
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--n', type=int, default=10000)
    ap.add_argument('--p', type=int, default=20)
    ap.add_argument('--quick', action='store_true', help='N=300 P=10 (for CI)')
    ap.add_argument('--mailcar', default=os.environ.get('MAILCAR')
                    or os.path.join(HERE, '..', 'mailcar'))
    ap.add_argument('--keep', action='store_true', help='keep the work directory')
    a = ap.parse_args()
    if a.quick:
        a.n, a.p = 300, 10
    binary = os.path.abspath(a.mailcar)
    if not os.access(binary, os.X_OK):
        log('no mailcar binary at %s (build it or pass --mailcar)' % binary)
        return 1
    if os.geteuid() != 0:
        log('SKIP: the private Postfix needs root')
        return 77
    why = pf.missing_prerequisites()
    if why:
        log('SKIP: %s' % why)
        return 77

    t_start = time.monotonic()
    work = tempfile.mkdtemp(prefix='mailcar-soak-')
    os.chmod(work, 0o755)          # Postfix's unprivileged daemons live under it
    pfdir = os.path.join(work, 'pf')
    os.mkdir(pfdir)
    servers = []
    ok = False
    try:
        info = pf.start(pfdir)
        maildir = info['maildir']
        plain = info['ports']['plain']
        reject = info.get('reject_rcpt', pf.REJECT_RCPT)
        log('Postfix up in %.1f s (plain port %d)' % (time.monotonic() - t_start, plain))
        cfg = {'ok': write_config(work, 'ok', plain), 'reject': write_config(work, 'ok', plain)}
        for name, (overrides, extra) in FAULTS.items():
            srv = fs.FaultServer(responder=fs.Responder(overrides=overrides),
                                 max_connections=a.n + 10, linger=0.5).start()
            servers.append(srv)
            cfg[name] = write_config(work, name, srv.port, extra)
        home = os.path.join(work, 'home')
        os.makedirs(os.path.join(home, 'tmp'))
        env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'HOME': home,
               'TMPDIR': os.path.join(home, 'tmp'), 'LC_ALL': 'C'}
        for k in ('LD_LIBRARY_PATH', 'ASAN_OPTIONS', 'UBSAN_OPTIONS'):
            if k in os.environ:
                env[k] = os.environ[k]
        run = '%x' % int(time.time() * 1000)
        kinds = plan(a.n)

        def submit(i):
            kind = kinds[i]
            rcpt = reject if kind == 'reject' else RCPT
            t0 = time.monotonic()
            p = subprocess.run([binary, '-C', cfg[kind], '-f', SENDER, rcpt], input=message(run, i),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120)
            return i, p.returncode, p.stderr.decode('utf-8', 'replace'), time.monotonic() - t0

        t0 = time.monotonic()
        results = {}
        with concurrent.futures.ThreadPoolExecutor(a.p) as ex:
            for i, code, err, took in ex.map(submit, range(a.n)):
                results[i] = (code, err, took)
        t_submit = time.monotonic() - t0
        problems = []
        queued = set()
        for i, (code, err, took) in sorted(results.items()):
            kind = kinds[i]
            is_queued = code == 0 and 'queued as' in err
            if is_queued:
                queued.add(i)
            if kind == 'reject':
                if code != 67:
                    problems.append('message %d (refused recipient): exit %s, want 67: %s'
                                    % (i, code, err.strip()))
            elif kind == 'ok':
                if code != 0:
                    problems.append('message %d: exit %s, want 0: %s' % (i, code, err.strip()))
            elif not is_queued:
                problems.append('message %d (%s): exit %s, not queued: %s'
                                % (i, kind, code, err.strip()))
        faulted = sum(1 for k in kinds.values() if k in FAULTS)
        unexpected_q = sorted(i for i in queued if kinds[i] == 'ok')
        log('%d submissions, %d callers: %.1f s; %d faulted, %d queued (%d of them not faulted)'
            % (a.n, a.p, t_submit, faulted, len(queued), len(unexpected_q)))
        faultserver_accepted = sum(1 for s in servers for m in s.all_messages()
                                   if (m.get('reply') or '').startswith('2'))
        if faultserver_accepted:
            problems.append('a fault server accepted %d messages' % faultserver_accepted)
        for s in servers:
            s.stop()

        t0 = time.monotonic()
        p = subprocess.run([binary, '-C', cfg['ok'], '-q'], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=dict(env, MAILCAR_NOW='+3600'),
                           timeout=max(120, a.n // 10))
        t_flush = time.monotonic() - t0
        log('mailcar -q: exit %d in %.1f s' % (p.returncode, t_flush))
        if p.returncode != 0:
            problems.append('mailcar -q exited %d: %s' % (p.returncode, p.stderr.decode()[-2000:]))
        qdir = os.path.join(work, 'queue')
        left = [f for f in os.listdir(qdir) if not f.startswith('.')] if os.path.isdir(qdir) else []
        if left:
            problems.append('queue not empty after the flush: %d files (%s ...)'
                            % (len(left), ', '.join(sorted(left)[:4])))

        want = {i for i, k in kinds.items() if k != 'reject'}
        deadline = time.monotonic() + max(60, a.n / 20)
        while True:
            got = delivered_ids(maildir, run)
            if set(got) >= want or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        time.sleep(1.0)                       # late duplicates would show now
        got = delivered_ids(maildir, run)
        missing = sorted(want - set(got))
        dups = sorted(i for i, c in got.items() if c > 1)
        wrong = sorted(i for i in got if kinds.get(i) == 'reject' or i not in kinds)
        if missing:
            problems.append('%d messages never delivered: %s' % (len(missing), missing[:20]))
        if dups:
            problems.append('%d messages delivered more than once: %s'
                            % (len(dups), [(i, got[i], kinds[i]) for i in dups[:20]]))
        if wrong:
            problems.append('%d refused messages delivered: %s' % (len(wrong), wrong[:20]))
        rejected = sum(1 for k in kinds.values() if k == 'reject')
        log('counted: %d delivered exactly once of %d expected, %d refused with 67, '
            '%d missing, %d duplicated; total %.1f s'
            % (sum(1 for i in want if got.get(i) == 1), len(want), rejected, len(missing),
               len(dups), time.monotonic() - t_start))
        for pr in problems[:30]:
            log('FAIL: ' + pr)
        ok = not problems
        log('PASS' if ok else 'FAIL (%d problems)' % len(problems))
    finally:
        for s in servers:
            s.stop()
        try:
            pf.stop(pfdir, quiet=True)
        except Exception as e:             # noqa: BLE001 - report, keep cleaning
            log('stopping Postfix: %s' % e)
        if a.keep or not ok:
            log('work directory kept: %s' % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
