"""Fixtures for mailcar's integration tests.

    mailcar         path of the binary under test: $MAILCAR, else ../../mailcar
                    relative to this directory; tests using it are skipped
                    when it does not exist.
    tls_certs       (session) a throwaway CA, a server certificate it signed
                    for localhost and 127.0.0.1, and a self-signed "rogue"
                    certificate, made with the openssl tool in a temporary
                    directory: .ca .cert .key .rogue_cert .rogue_key .dir
    faultserver     factory: faultserver(script=None, responder=None, tls=True,
                    **FaultServer options) -> a started FaultServer (see
                    faultserver.py); with tls the session certificate is
                    loaded so TLS / STARTTLS steps work.  Stopped at teardown.
    run_mailcar     run_mailcar(args, server=..., config=[...], stdin=b'...',
                    timeout=..., env={...}, argv0='mailq') -> RunResult, a
                    (code, stdout, stderr) tuple with .elapsed .argv
                    .config_path .timed_out and .describe().  Writes the
                    config (mode 600; default_config() with the `config`
                    lines merged in) and passes `-C FILE` first; HOME and
                    XDG_CONFIG_HOME point at empty temporary directories.
    postfix         from postfix_server.py, when that module exists.

Timeouts: a client run is killed after `timeout` seconds (default 10, never
more than $MAILCAR_TEST_TIMEOUT, default 20); code is then None.  After
$MAILCAR_TEST_MAX_HANGS (default 5) such kills in a session, later runs fail
at once without running the client.
"""

import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import faultserver as fs  # noqa: E402

try:
    from postfix_server import postfix  # noqa: F401,E402
except ImportError:
    pass

MAX_CLIENT_SECONDS = float(os.environ.get('MAILCAR_TEST_TIMEOUT', '20'))
# After this many runs killed by the timeout, later runs fail at once: a client
# that hangs everywhere must not keep the suite busy for half an hour.
MAX_HANGS = int(os.environ.get('MAILCAR_TEST_MAX_HANGS', '5'))
_hangs = []
SENDER = 'sender@example.test'
# Environment variables handed through to the client (sanitizers, valgrind, linker).
PASS_ENV = ('PATH', 'LD_LIBRARY_PATH', 'LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS',
            'LSAN_OPTIONS', 'MSAN_OPTIONS', 'TSAN_OPTIONS', 'OPENSSL_CONF', 'SSL_CERT_FILE',
            'SSL_CERT_DIR')


def default_config(port, host='127.0.0.1'):
    """The account every test starts from: plain SMTP to the test server."""
    return ['account default',
            'host %s' % host,
            'port %d' % port,
            'tls off',
            'auth off',
            'from %s' % SENDER,
            'timeout 5']


def merge_config(base, extra):
    """base + extra, where an extra line setting a key of the base account
    replaces that line (mailcar warns about keys set twice); extra lines after
    an `account` or `defaults` line of their own are appended as they are."""
    out = list(base)
    index = {l.split(None, 1)[0]: i for i, l in enumerate(out)
             if l.strip() and not l.startswith(('account', 'defaults', '#'))}
    tail = []
    for line in extra:
        words = line.split(None, 1)
        if tail or (words and words[0] in ('account', 'defaults')):
            tail.append(line)
        elif words and words[0] in index:
            out[index[words[0]]] = line
        else:
            out.append(line)
    return out + tail


class RunResult(tuple):
    """(code, stdout, stderr) plus .elapsed .argv .config_path .config .timed_out."""

    def __new__(cls, code, stdout, stderr, **extra):
        obj = tuple.__new__(cls, (code, stdout, stderr))
        obj.__dict__.update(extra)
        return obj

    code = property(lambda self: self[0])
    stdout = property(lambda self: self[1])
    stderr = property(lambda self: self[2])

    def describe(self):
        return '\n'.join([
            '--- mailcar: %s' % ' '.join(map(repr, self.argv)),
            '--- exit: %s%s (%.2fs)' % (self.code, ' (killed: timed out)' if self.timed_out else '',
                                       self.elapsed),
            '--- config:\n' + (self.config or '(none)'),
            '--- stdout:\n' + self.stdout.decode('utf-8', 'replace'),
            '--- stderr:\n' + self.stderr.decode('utf-8', 'replace'),
        ])


class MailcarRunner:
    """Runs the binary with a generated config in a private HOME."""

    def __init__(self, binary, tmpdir):
        self.binary = binary
        self.tmpdir = str(tmpdir)
        self.home = os.path.join(self.tmpdir, 'home')
        self.xdg = os.path.join(self.tmpdir, 'xdg')
        self.tmp = os.path.join(self.tmpdir, 'tmp')
        for d in (self.home, self.xdg, self.tmp):
            os.makedirs(d, exist_ok=True)
        self.runs = 0

    def env(self, extra=None):
        env = {k: os.environ[k] for k in PASS_ENV if k in os.environ}
        env.setdefault('PATH', '/usr/bin:/bin')
        env.update(HOME=self.home, XDG_CONFIG_HOME=self.xdg, TMPDIR=self.tmp,
                   LC_ALL='C', LANG='C', USER='mailcar-test', LOGNAME='mailcar-test')
        env.update(extra or {})
        return {k: v for k, v in env.items() if v is not None}

    def write_config(self, lines):
        self.runs += 1
        path = os.path.join(self.tmpdir, 'mailcarrc-%d' % self.runs)
        text = ''.join(l + '\n' for l in lines)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        return path, text

    def __call__(self, args=(), *, server=None, port=None, config=(), replace_config=False,
                 use_config=True, stdin=b'', timeout=10, env=None, argv0=None,
                 wait_server=3.0, stop_server=True):
        """Run mailcar; returns RunResult.

        server: a FaultServer (its port goes into the config; after the run
        the server is given `wait_server` seconds to finish, then stopped
        unless stop_server is false).  port: use this port instead; with
        neither, a port nothing listens on.  config: extra lines for the
        default account (a key it already has is replaced, others are
        appended; see merge_config), or the whole file with replace_config.  use_config=False: no -C at all.  argv0: run through
        a symlink of this name (mailq, newaliases, sendmail ...).  stdin:
        bytes or text, written through a pipe, or an open file, given to the
        client as its stdin (at the file's current offset).
        """
        if port is None:
            port = server.port if server is not None else fs.free_port()
        cfg_path = cfg_text = None
        argv = [self.binary]
        if argv0:
            bindir = os.path.join(self.tmpdir, 'bin')
            os.makedirs(bindir, exist_ok=True)
            link = os.path.join(bindir, argv0)
            if not os.path.lexists(link):
                os.symlink(self.binary, link)
            argv = [link]
        if use_config:
            lines = list(config) if replace_config else merge_config(default_config(port), config)
            # As root the default queue is /var/spool/mailcar: keep every test's queue private.
            if not replace_config and not any(l.startswith('queue_dir') for l in lines):
                lines.append('queue_dir %s' % os.path.join(self.tmpdir, 'queue'))
            cfg_path, cfg_text = self.write_config(lines)
            argv += ['-C', cfg_path]
        argv += list(args)
        if isinstance(stdin, str):
            stdin = stdin.encode('utf-8')
        # A file object is the client's stdin as it is (a regular file, read in place).
        stdin_fd = stdin if hasattr(stdin, 'fileno') else subprocess.PIPE
        stdin = None if hasattr(stdin, 'fileno') else stdin
        if len(_hangs) >= MAX_HANGS:
            pytest.fail('not run: mailcar was killed by the timeout %d times already in this '
                        'session (%s ...); fix the hang first or raise MAILCAR_TEST_MAX_HANGS'
                        % (len(_hangs), _hangs[0]), pytrace=False)
        timeout = min(timeout, MAX_CLIENT_SECONDS)
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=stdin_fd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env(env), cwd=self.tmpdir,
                             start_new_session=True)
        timed_out = False
        try:
            out, err = p.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                p.kill()
            out, err = p.communicate()
            _hangs.append(' '.join(os.path.basename(a) for a in argv[:1] + argv[3:]))
        elapsed = time.monotonic() - t0
        if server is not None:
            server.wait_idle(wait_server)
            if stop_server:
                server.stop()
        return RunResult(None if timed_out else p.returncode, out, err, elapsed=elapsed,
                         argv=argv, config_path=cfg_path, config=cfg_text, timed_out=timed_out)


@pytest.fixture(scope='session')
def mailcar():
    path = os.environ.get('MAILCAR') or os.path.join(HERE, '..', '..', 'mailcar')
    path = os.path.abspath(path)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip('mailcar binary not found at %s (build it or set MAILCAR)' % path)
    return path


@pytest.fixture(scope='session')
def tls_certs(tmp_path_factory):
    if not shutil.which('openssl'):
        pytest.skip('the openssl command is not installed')
    return fs.make_test_certs(str(tmp_path_factory.mktemp('tls')))


@pytest.fixture
def faultserver(request):
    servers = []

    def make(script=None, responder=None, tls=True, **kw):
        if tls and 'cert' not in kw and shutil.which('openssl'):
            certs = request.getfixturevalue('tls_certs')
            kw['cert'], kw['key'] = certs.cert, certs.key
        srv = fs.FaultServer(script, responder, **kw)
        servers.append(srv)
        return srv.start()

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def run_mailcar(mailcar, tmp_path):
    return MailcarRunner(mailcar, tmp_path)
