"""Interop, callers: the real programs that call sendmail, from Debian's
packages, sending through mailcar to the private Postfix (tests/servers/pf.py),
each message checked as delivered.

Every caller runs a small recorder script as its sendmail: it appends the
argv it was given to a log, then execs mailcar with `-C CONFIG` in front, so
each test proves both the exact argv the program uses and that mailcar
delivers with it.  Debian's cron and sudo run in a private mount namespace
(`unshare -m`): cron with mailcar itself bind-mounted as /usr/sbin/sendmail
(its compiled-in path) and its configuration at the system path, sudo with a
private /etc/sudoers; the machine's own files are never touched.

Callers whose package would pull in an MTA (bsd-mailx, logwatch) or start a
service (fail2ban) are unpacked with `dpkg -x` into $MAILCAR_TEST_CACHE by
tests/setup-debian.sh; bsd-mailx runs from there, for logwatch and fail2ban
the argv is read from the configuration file the package ships.

Needs root (namespaces, the private Postfix) and `sudo sh tests/setup-debian.sh`.
Run: MAILCAR=$PWD/mailcar /usr/bin/python3 -m pytest -q tests/integration/test_interop_callers.py
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import pytest

from postfix_server import postfix  # noqa: F401  (the fixture)

CACHE = os.environ.get('MAILCAR_TEST_CACHE', '/var/cache/mailcar-test')
SETUP = 'run `sudo sh tests/setup-debian.sh`'
ALICE = 'alice@example.test'
BOB = 'bob@example.test'

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason='interop callers need root (mount namespaces, '
                                       'the private Postfix)')


def need(path, what):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip('%s not installed (%s missing); %s' % (what, path, SETUP))
    return path


def need_cmd(name, pkg):
    path = shutil.which(name, path='/usr/bin:/bin:/usr/sbin:/sbin')
    if not path:
        pytest.skip('%s not installed (package %s); %s' % (name, pkg, SETUP))
    return path


def config_lines(pf, mode='starttls'):
    """mailcar's account for the private Postfix: 'starttls' (587-style,
    STARTTLS + AUTH with the throwaway CA) or 'plain' (no TLS, no AUTH)."""
    lines = ['account default', 'host localhost', 'from %s' % ALICE,
             'qualify_domain example.test', 'timeout 10']
    if mode == 'plain':
        lines += ['port %d' % pf.plain, 'tls off', 'auth off']
    else:
        lines += ['port %d' % pf.submission, 'tls on', 'tls_starttls on',
                  'tls_trust_file %s' % pf.ca, 'auth on', 'user %s' % pf.user,
                  'password %s' % pf.password]
    return lines


def write_private(path, lines):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(''.join(l + '\n' for l in lines))
    os.chmod(path, 0o600)
    return path


class Recorder:
    """A `sendmail` that records its argv (NUL-separated, one call per line
    in .calls) and execs mailcar -C CONFIG with the same arguments."""

    def __init__(self, mailcar, pf, tmp, mode='starttls'):
        self.dir = str(tmp)
        self.home = os.path.join(self.dir, 'home')
        os.makedirs(self.home, exist_ok=True)
        self.config = write_private(os.path.join(self.dir, 'mailcar.conf'),
                                    config_lines(pf, mode))
        self.log = os.path.join(self.dir, 'argv.log')
        self.path = os.path.join(self.dir, 'sendmail')
        with open(self.path, 'w') as f:
            f.write('#!/bin/sh\n'
                    '{ for a in "$@"; do printf "%%s\\037" "$a"; done; printf "\\n"; } >> %s\n'
                    'exec %s -C %s "$@"\n'
                    % (shlex.quote(self.log), shlex.quote(mailcar), shlex.quote(self.config)))
        os.chmod(self.path, 0o755)
        open(self.log, 'w').close()

    @property
    def calls(self):
        with open(self.log) as f:
            return [line.rstrip('\n').split('\x1f')[:-1] for line in f if line.strip()]

    def env(self, **extra):
        env = {'PATH': '/usr/bin:/bin:/usr/sbin:/sbin', 'HOME': self.home, 'LC_ALL': 'C.UTF-8',
               'USER': 'root', 'LOGNAME': 'root', 'TMPDIR': self.dir}
        env.update(extra)
        return env


@pytest.fixture
def rec(mailcar, postfix, tmp_path):
    postfix.mark()
    return Recorder(mailcar, postfix, tmp_path)


def run(argv, env, stdin=b'', timeout=30, cwd=None):
    r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=timeout, cwd=cwd)
    assert r.returncode == 0, '%s: exit %d\n%s\n%s' % (argv, r.returncode,
                                                       r.stdout.decode(errors='replace'),
                                                       r.stderr.decode(errors='replace'))
    return r


def delivered(pf, n=1, timeout=15):
    return pf.wait_messages(n, timeout=timeout)


def body(m):
    return m.data.split(b'\n\n', 1)[1]


def header(m, name):
    mm = re.search(rb'^' + name.encode() + rb':[ \t]*(.*)$', m.headers(), re.M | re.I)
    return mm.group(1).decode('utf-8', 'replace') if mm else None


# --- cron ---------------------------------------------------------------------

def mailcar_direct(mailcar, pf, tmp_path, argv, stdin, mode='starttls'):
    cfg = write_private(str(tmp_path / 'mailcar.conf'), config_lines(pf, mode))
    pf.mark()
    r = subprocess.run([mailcar, '-C', cfg] + argv, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30,
                       env={'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'LC_ALL': 'C'})
    assert r.returncode == 0, r.stderr.decode(errors='replace')
    return r


def test_debian_cron_argv(mailcar, postfix, tmp_path):
    """Debian cron's compiled-in command line (strings /usr/sbin/cron):
    '%s -FCronDaemon -i -B8BITMIME -oem  %s' with the crontab's owner."""
    msg = (b'From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host> run-parts\n'
           b'Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n'
           b'job output: caf\xc3\xa9\n.\nafter a lone dot\n')
    mailcar_direct(mailcar, postfix, tmp_path,
                   ['-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'root'], msg, mode='plain')
    [m] = delivered(postfix)
    assert m.recipients == ['root@example.test']
    assert m.sender == ALICE
    assert body(m) == b'job output: caf\xc3\xa9\n.\nafter a lone dot\n'


def test_debian_cron_argv_root_through_aliases(mailcar, postfix, tmp_path):
    """The same argv with `root` mapped by an aliases file, as /etc/aliases
    maps it on a real system: the message reaches the admin, not root@."""
    aliases = tmp_path / 'aliases'
    aliases.write_text('postmaster: root\nroot: admin@example.test, bob@example.test\n')
    cfg = write_private(str(tmp_path / 'mailcar.conf'),
                        config_lines(postfix, 'plain') + ['aliases %s' % aliases])
    postfix.mark()
    r = subprocess.run([mailcar, '-C', cfg, '-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'root'],
                       input=b'From: root (Cron Daemon)\nTo: root\nSubject: Cron job\n\nout\n',
                       capture_output=True, timeout=30,
                       env={'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'LC_ALL': 'C'})
    assert r.returncode == 0, r.stderr.decode(errors='replace')
    [m] = delivered(postfix)
    assert sorted(m.recipients) == ['admin@example.test', BOB]


def test_cronie_argv(mailcar, postfix, tmp_path):
    """cronie / vixie-cron: -FCronDaemon -odi -oem -oi -t (recipients from To)."""
    msg = b'From: root (Cron Daemon)\nTo: bob\nSubject: Cron <root@host> job\n\nout\n'
    mailcar_direct(mailcar, postfix, tmp_path, ['-FCronDaemon', '-odi', '-oem', '-oi', '-t'], msg)
    [m] = delivered(postfix)
    assert m.recipients == [BOB]
    assert body(m) == b'out\n'


CRON_NS = r'''set -e
D=$1
mount --make-rprivate /
# nothing of the machine's cron state is seen or changed
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/spool/cron
mkdir -m 1730 /var/spool/cron/crontabs
mount -t tmpfs tmpfs /etc/cron.d
mount --bind "$D/crontab" /etc/crontab
# mailcar as /usr/sbin/sendmail (cron's compiled-in path), the rest of /usr/sbin as is
mount -t overlay overlay -o "lowerdir=$D/sbin:/usr/sbin" /usr/sbin
# its configuration at the system path (SYSCONFDIR of the build)
mkdir -p "$D/sysconf"
cp "$D/mailcar.conf" "$D/sysconf/$(basename "$SYSCONF")"
mount --bind "$D/sysconf" "$(dirname "$SYSCONF")"
exec /usr/sbin/cron -f -L 15
'''


def sysconf_path(mailcar):
    out = subprocess.run([mailcar, '--version'], stdout=subprocess.PIPE, check=True).stdout
    mm = re.search(rb'^system configuration: (/\S+)$', out, re.M)
    assert mm, out
    return mm.group(1).decode()


def test_debian_cron_daemon_mails_job_output(mailcar, postfix, tmp_path):
    """The real cron daemon runs an @reboot job (a fresh /run makes it the
    'system startup') and mails its output through /usr/sbin/sendmail = mailcar."""
    cron = need('/usr/sbin/cron', "Debian's cron (package cron)")
    need_cmd('unshare', 'util-linux')
    d = str(tmp_path)
    os.makedirs(os.path.join(d, 'sbin'))
    os.makedirs(os.path.join(d, 'home'))
    os.symlink(mailcar, os.path.join(d, 'sbin', 'sendmail'))
    write_private(os.path.join(d, 'mailcar.conf'), config_lines(postfix))
    sysconf = sysconf_path(mailcar)
    if not os.path.isdir(os.path.dirname(sysconf)):
        pytest.skip('the directory of the system configuration %s does not exist' % sysconf)
    token = 'cron-job-output-%d' % os.getpid()
    with open(os.path.join(d, 'crontab'), 'w', encoding='utf-8') as f:
        f.write('SHELL=/bin/sh\nHOME=%s/home\n@reboot root echo %s; echo "caf\u00e9 line 2"\n'
                % (d, token))
    postfix.mark()
    p = subprocess.Popen(['unshare', '-m', 'sh', '-c', CRON_NS, 'cron-ns', d],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env={'PATH': '/usr/bin:/bin:/usr/sbin:/sbin', 'SYSCONF': sysconf},
                         start_new_session=True)
    try:
        try:
            msgs = delivered(postfix, 1, timeout=20)
        except AssertionError:
            os.killpg(p.pid, signal.SIGTERM)
            out = p.communicate(timeout=5)[0]
            raise AssertionError('%s: no mail from the @reboot job\n%s'
                                 % (cron, out.decode(errors='replace')))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    [m] = [x for x in msgs if token.encode() in x.data]
    assert m.recipients == ['root@example.test']   # cron's `root`, qualify_domain
    assert header(m, 'From') == 'root (Cron Daemon)'
    assert token in header(m, 'Subject')
    assert body(m) == ('%s\ncaf\u00e9 line 2\n' % token).encode('utf-8')


# --- git send-email -----------------------------------------------------------

def git_repo(tmp_path):
    repo = str(tmp_path / 'repo')
    env = {'PATH': '/usr/bin:/bin', 'HOME': str(tmp_path), 'GIT_CONFIG_NOSYSTEM': '1',
           'GIT_AUTHOR_NAME': 'Alice', 'GIT_AUTHOR_EMAIL': ALICE,
           'GIT_COMMITTER_NAME': 'Alice', 'GIT_COMMITTER_EMAIL': ALICE, 'LC_ALL': 'C'}
    run(['git', 'init', '-q', repo], env)
    with open(os.path.join(repo, 'f'), 'w') as f:
        f.write('0\n')
    run(['git', 'add', 'f'], env, cwd=repo)
    run(['git', 'commit', '-qm', 'initial'], env, cwd=repo)
    for i in (1, 2, 3):
        with open(os.path.join(repo, 'f'), 'a') as f:
            f.write('%d\n' % i)
        run(['git', 'commit', '-qam', 'change %d' % i], env, cwd=repo)
    run(['git', 'format-patch', '-q', '-3', '-o', 'out'], env, cwd=repo)
    patches = sorted(os.path.join(repo, 'out', n) for n in os.listdir(os.path.join(repo, 'out')))
    assert len(patches) == 3
    return repo, env, patches


@pytest.mark.parametrize('how', ['sendmail-cmd', 'smtp-server'])
def test_git_send_email_series(rec, postfix, tmp_path, how):
    need_cmd('git', 'git')
    if not os.path.exists('/usr/lib/git-core/git-send-email'):
        pytest.skip('git send-email not installed (package git-email); ' + SETUP)
    repo, env, patches = git_repo(tmp_path)
    opt = ('--sendmail-cmd=%s' % rec.path if how == 'sendmail-cmd'
           else '--smtp-server=%s' % rec.path)
    env = dict(env, HOME=rec.home)
    run(['git', 'send-email', '--quiet', '--confirm=never', '--suppress-cc=all',
         '--to=%s' % BOB, '--envelope-sender=%s' % ALICE, opt] + patches, env, cwd=repo)
    msgs = delivered(postfix, 3)
    assert len(msgs) == 3
    subjects = sorted(header(m, 'Subject') for m in msgs)
    assert subjects == ['[PATCH %d/3] change %d' % (i, i) for i in (1, 2, 3)]
    for m in msgs:
        assert m.recipients == [BOB] and m.sender == ALICE
        assert b'\n+%d\n' % int(header(m, 'Subject')[7]) in body(m)
    assert rec.calls == [['-f', ALICE, '-i', BOB]] * 3


# --- mail user agents ---------------------------------------------------------

def test_mutt_batch(rec, postfix):
    mutt = need_cmd('mutt', 'mutt')
    rc = os.path.join(rec.dir, 'muttrc')
    with open(rc, 'w') as f:
        # mutt's default $sendmail is "/usr/sbin/sendmail -oem -oi"
        f.write('set sendmail="%s -oem -oi"\nset from="%s"\nset use_envelope_from=yes\n'
                'set use_8bitmime=yes\nset dsn_notify="failure,delay"\nset dsn_return=hdrs\n'
                'set charset="utf-8"\nset send_charset="utf-8"\n' % (rec.path, ALICE))
    run([mutt, '-n', '-F', rc, '-s', 'mutt interop', '--', BOB], rec.env(),
        stdin='h\u00e9llo from mutt\n'.encode())
    [m] = delivered(postfix)
    assert m.recipients == [BOB] and m.sender == ALICE
    assert header(m, 'Subject') == 'mutt interop'
    assert 'h\u00e9llo from mutt'.encode() in body(m)
    assert rec.calls == [['-oem', '-oi', '-B8BITMIME', '-f', ALICE, '-N', 'failure,delay',
                          '-R', 'hdrs', '--', BOB]]


def test_s_nail(rec, postfix):
    snail = need_cmd('s-nail', 's-nail')
    run([snail, '-n', '-S', 'mta=%s' % rec.path, '-S', 'from=%s' % ALICE, '-s', 's-nail interop',
         BOB], rec.env(MAILRC='/dev/null'), stdin=b'hello from s-nail\n')
    [m] = delivered(postfix)
    assert m.recipients == [BOB]
    assert header(m, 'Subject') == 's-nail interop'
    assert b'hello from s-nail' in body(m)
    assert rec.calls == [['-i', '--', BOB]]


def test_bsd_mailx(rec, postfix):
    """bsd-mailx depends on mail-transport-agent: run from its dpkg -x copy."""
    mailx = need(os.path.join(CACHE, 'bsd-mailx/usr/bin/bsd-mailx'), 'bsd-mailx (dpkg -x copy)')
    mailrc = os.path.join(rec.dir, 'mailrc')
    with open(mailrc, 'w') as f:
        f.write('set sendmail=%s\n' % rec.path)
    r = run([mailx, '-n', '-v', '-s', 'bsd-mailx interop', BOB], rec.env(MAILRC=mailrc),
            stdin=b'hello from bsd-mailx\n')
    [m] = delivered(postfix)
    assert m.recipients == [BOB]
    assert header(m, 'Subject') == 'bsd-mailx interop'
    assert b'hello from bsd-mailx' in body(m)
    # Debian's bsd-mailx hands the recipients over in the header: -t
    assert rec.calls == [['-i', '-t', '-v']]
    assert b'--> ' in r.stderr     # -v reached mailcar: the transcript


# --- PHP ----------------------------------------------------------------------

def test_php_mail(rec, postfix):
    """PHP mail() with php.ini's default flags: sendmail_path = "... -t -i"."""
    php = need_cmd('php', 'php-cli')
    run([php, '-d', 'sendmail_path=%s -t -i' % rec.path, '-r',
         'exit(mail("%s", "php mail interop", "hello from php\\n", "From: %s") ? 0 : 1);'
         % (BOB, ALICE)], rec.env())
    [m] = delivered(postfix)
    assert m.recipients == [BOB]
    assert header(m, 'To') == BOB and header(m, 'Subject') == 'php mail interop'
    assert rec.calls == [['-t', '-i']]


PHPMAILER = r'''<?php
require '/usr/share/php/libphp-phpmailer/autoload.php';
$m = new PHPMailer\PHPMailer\PHPMailer(true);
$m->isSendmail();
$m->Sendmail = $argv[1];
$m->setFrom('alice@example.test', 'Alice');
$m->addAddress('bob@example.test');
$m->addBCC('carol@example.test');
$m->Subject = 'phpmailer interop';
$m->Body = "hello from PHPMailer\n";
$m->send();
'''


def test_phpmailer(rec, postfix):
    php = need_cmd('php', 'php-cli')
    if not os.path.exists('/usr/share/php/libphp-phpmailer/autoload.php'):
        pytest.skip('PHPMailer not installed (package libphp-phpmailer); ' + SETUP)
    script = os.path.join(rec.dir, 'pm.php')
    with open(script, 'w') as f:
        f.write(PHPMAILER)
    run([php, script, rec.path], rec.env())
    [m] = delivered(postfix)
    assert m.sender == ALICE
    assert sorted(m.recipients) == [BOB, 'carol@example.test']
    assert header(m, 'Bcc') is None
    assert b'X-Mailer: PHPMailer' in m.headers()
    # PHPMailer 6 glues the sender to -f: '%s -oi -f%s -t'
    assert rec.calls == [['-oi', '-f' + ALICE, '-t']]


# --- system tools -------------------------------------------------------------

def test_sudo_mail_always(rec, postfix):
    """sudo's own mailer call (mailerflags default "-t"), with a private
    /etc/sudoers bind-mounted in a mount namespace."""
    sudo = need_cmd('sudo', 'sudo')
    need_cmd('unshare', 'util-linux')
    sudoers = os.path.join(rec.dir, 'sudoers')
    with open(sudoers, 'w') as f:
        f.write('Defaults mail_always\nDefaults mailto="%s"\nDefaults mailerpath="%s"\n'
                'Defaults mailsub="sudo interop %%h"\nroot ALL=(ALL:ALL) ALL\n'
                % (BOB, rec.path))
    os.chmod(sudoers, 0o440)
    ns = ('mount --make-rprivate / && mount --bind "$1" /etc/sudoers && '
          'exec %s -u nobody /bin/true' % sudo)
    run(['unshare', '-m', 'sh', '-c', ns, 'sudo-ns', sudoers], rec.env())
    msgs = delivered(postfix, 1)
    time.sleep(0.5)
    msgs += postfix.new_messages()
    ms = [m for m in msgs if b'COMMAND=/bin/true' in m.data]
    assert ms, msgs
    for m in ms:
        assert m.recipients == [BOB]
        assert header(m, 'Subject').startswith('sudo interop')
    assert rec.calls and all(c == ['-t'] for c in rec.calls)


def shipped_mailer(path, key):
    """The sendmail command line a package ships in its configuration."""
    with open(path) as f:
        for line in f:
            mm = re.match(r'\s*%s\s*=\s*(.*)$' % key, line)
            if mm:
                value = mm.group(1).strip()
                if value.startswith('"') and value.endswith('"') and value.count('"') == 2:
                    value = value[1:-1]     # logwatch: mailer = "/usr/sbin/sendmail -t"
                return shlex.split(value)
    raise AssertionError('%s not set in %s' % (key, path))


def test_logwatch_argv(mailcar, postfix, tmp_path):
    """logwatch depends on an MTA: its shipped `mailer` line, run directly."""
    conf = os.path.join(CACHE, 'logwatch/usr/share/logwatch/default.conf/logwatch.conf')
    if not os.path.exists(conf):
        pytest.skip('logwatch (dpkg -x copy) not found at %s; %s' % (conf, SETUP))
    argv = shipped_mailer(conf, 'mailer')
    assert argv == ['/usr/sbin/sendmail', '-t']
    msg = b'To: bob@example.test\nFrom: Logwatch <alice@example.test>\nSubject: Logwatch\n\nok\n'
    mailcar_direct(mailcar, postfix, tmp_path, argv[1:], msg)
    [m] = delivered(postfix)
    assert m.recipients == [BOB] and body(m) == b'ok\n'


def test_unattended_upgrades_argv(mailcar, postfix, tmp_path):
    """unattended-upgrades: `/usr/sbin/sendmail -oi -t` (run directly: the
    program itself needs a real apt run)."""
    msg = (b'To: bob@example.test\nSubject: unattended-upgrades result\n'
           b'Content-Type: text/plain; charset="utf-8"\n\nPackages upgraded: none\n.\n')
    mailcar_direct(mailcar, postfix, tmp_path, ['-oi', '-t'], msg)
    [m] = delivered(postfix)
    assert m.recipients == [BOB]
    assert body(m) == b'Packages upgraded: none\n.\n'


def test_fail2ban_argv(mailcar, postfix, tmp_path):
    """fail2ban's shipped `mailcmd = /usr/sbin/sendmail -f "<sender>" "<dest>"`
    (action.d/sendmail-common.conf), tags substituted, run directly."""
    conf = os.path.join(CACHE, 'fail2ban/etc/fail2ban/action.d/sendmail-common.conf')
    if not os.path.exists(conf):
        pytest.skip('fail2ban (dpkg -x copy) not found at %s; %s' % (conf, SETUP))
    argv = shipped_mailer(conf, 'mailcmd')
    assert argv == ['/usr/sbin/sendmail', '-f', '<sender>', '<dest>']
    argv = [{'<sender>': 'fail2ban@example.test', '<dest>': BOB}.get(a, a) for a in argv[1:]]
    msg = (b'Subject: [Fail2Ban] sshd: banned 192.0.2.1 from host\n'
           b'From: Fail2Ban <fail2ban@example.test>\nTo: bob@example.test\n\n'
           b'The IP 192.0.2.1 has just been banned.\n')
    mailcar_direct(mailcar, postfix, tmp_path, argv, msg)
    [m] = delivered(postfix)
    assert m.sender == 'fail2ban@example.test' and m.recipients == [BOB]

