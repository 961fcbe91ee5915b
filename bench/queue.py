#!/usr/bin/python3
"""bench/queue.py [N] - the queue's speed, measured, never asserted.

Enqueues N messages with `queue on` while nothing listens on the port (each
run: connection refused, then the durable write: temp file, fsync, link,
rename, fsync the directory), then flushes them with one `mailcar -q` into
the fault server (tests/integration/faultserver.py, settle 0).  For
comparison it sends the same number of messages with one msmtp process per
message, which is what msmtpq's queue flush does.  msmtpq itself is in
Debian's msmtp package (/usr/libexec/msmtp/msmtpq/); benchmark 5 of
bench/run.sh measures it.  MAILCAR (default ./mailcar) picks the binary.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
import faultserver as fs  # noqa: E402

MC = os.path.abspath(os.environ.get('MAILCAR', os.path.join(HERE, '..', 'mailcar')))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
tmp = tempfile.mkdtemp(prefix='mailcar-qbench.')
qdir = os.path.join(tmp, 'queue')
env = dict(os.environ, HOME=tmp)


def config(port, name):
    path = os.path.join(tmp, name)
    with open(path, 'w') as f:
        f.write('account default\nhost 127.0.0.1\nport %d\ntls off\nauth off\n'
                'from s@example.test\nqueue on\nqueue_dir %s\ntimeout 5\n' % (port, qdir))
    os.chmod(path, 0o600)
    return path


down = config(fs.free_port(), 'down')
times = []
for i in range(N):
    t = time.monotonic()
    r = subprocess.run([MC, '-C', down, 'r@example.test'], input=b'Subject: %d\n\nbody\n' % i,
                       capture_output=True, env=env)
    times.append(time.monotonic() - t)
    assert r.returncode == 0, r.stderr
print('enqueue: %d processes, median %.2f ms each (connection refused + durable enqueue)'
      % (N, statistics.median(times) * 1000))

srv = fs.FaultServer(responder=fs.Responder(caps=['PIPELINING', '8BITMIME']), settle=0,
                     max_connections=N + 10).start()
good = config(srv.port, 'good')
t = time.monotonic()
r = subprocess.run([MC, '-C', good, '-q'], capture_output=True,
                   env=dict(env, MAILCAR_NOW='+3600'))
el = time.monotonic() - t
srv.wait_idle(5)
print('mailcar -q: %d messages in %.2f s = %.0f msg/s, %d connection(s), %d accepted'
      % (N, el, N / el, len(srv.connections), len(srv.all_messages())))
srv.stop()

if shutil.which('msmtp'):
    srv = fs.FaultServer(responder=fs.Responder(caps=['PIPELINING', '8BITMIME']), settle=0,
                         max_connections=N + 10).start()
    rc = os.path.join(tmp, 'msmtprc')
    with open(rc, 'w') as f:
        f.write('account default\nhost 127.0.0.1\nport %d\ntls off\nauth off\n'
                'from s@example.test\n' % srv.port)
    os.chmod(rc, 0o600)
    t = time.monotonic()
    for i in range(N):
        subprocess.run(['msmtp', '-C', rc, 'r@example.test'],
                       input=b'Subject: %d\n\nbody\n' % i, capture_output=True, env=env)
    el = time.monotonic() - t
    srv.wait_idle(5)
    print('msmtp, one process per message (msmtpq flush): %d in %.2f s = %.0f msg/s, '
          '%d connections' % (N, el, N / el, len(srv.connections)))
    srv.stop()
shutil.rmtree(tmp)
