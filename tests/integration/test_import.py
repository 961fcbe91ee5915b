"""mailcar --import: the configuration files of msmtp, ssmtp, dma and nullmailer,
as their own packages and manuals write them, turned into mailcar's.

Every converted file is then loaded by mailcar itself (-C FILE --pretend), so
the output is not only plausible text but a configuration mailcar accepts,
with the values the source meant.

Sources of the fixtures (Debian 12 packages):
  msmtp 1.8.23   /usr/share/doc/msmtp/examples/msmtprc-{user,system}.example
  ssmtp 2.64     the ssmtp.conf its postinst writes, the keys of ssmtp.conf(5),
                 /etc/ssmtp/revaliases as shipped
  dma 0.13       /usr/share/dma/dma.conf as shipped (with SMARTHOST set by
                 debconf and the TLS lines uncommented), /etc/dma/auth.conf
  nullmailer 2.2 the remotes example of nullmailer-send(8); me, defaultdomain
                 and adminaddr as its postinst writes them
"""

import os
import re


MSMTP_USER = """\
# Example for a user configuration file ~/.msmtprc

# Set default values: use the mail submission port 587, and always use TLS.
# On this port, TLS is activated via STARTTLS.
defaults
port 587
tls on
tls_starttls on

# Define a mail account at a freemail service
account freemail
# Host name of the SMTP server
host smtp.freemail.example
# Envelope-from address
from joe_smith@freemail.example
# Authentication
auth on
user joe.smith
passwordeval gpg2 --no-tty -q -d ~/.msmtp-password.gpg

# A second mail address at the same freemail service: it uses the same settings
# and just changes the envelope from address
account freemail2 : freemail
from joey@freemail.example

# Some other mail service
account company
host mail.company.example
from smithjoe@company.example
auth on
user company12345
# this assumes the password is stored in the keyring

# Set a default account
account default : freemail
"""

MSMTP_SYSTEM = """\
# Example for a system wide configuration file
account default

# The SMTP smarthost
host mail.oursite.example

# Use TLS on port 465. On this port, TLS starts without STARTTLS.
port 465
tls on
tls_starttls off

# Construct envelope-from addresses of the form "user@oursite.example"
from %U@oursite.example
# Do not allow programs to override this envelope-from address via -f
allow_from_override off
# Always set a From header that matches the envelope-from address
set_from_header on

# Syslog logging with facility LOG_MAIL instead of the default LOG_USER
syslog LOG_MAIL
"""

# What ssmtp's postinst writes, plus the TLS and AUTH keys of ssmtp.conf(5).
SSMTP_CONF = """\
#
# Config file for sSMTP sendmail
#
# The person who gets all mail for userids < 1000
# Make this empty to disable rewriting.
root=postmaster

# The place where the mail goes. The actual machine name is required no 
# MX records are consulted. Commonly mailhosts are named mail.domain.com
mailhub=smtp.example.org:587

# Where will the mail seem to come from?
rewriteDomain=example.org

# The full hostname
hostname=host.example.org

# Are users allowed to set their own From: address?
# YES - Allow the user to specify their own From: address
# NO - Use the system generated From: address
FromLineOverride=YES
UseSTARTTLS=YES
AuthUser=alice
AuthPass=s3cret pass
AuthMethod=cram-md5
"""

SSMTP_REVALIASES = """\
# sSMTP aliases
# 
# Format:	local_account:outgoing_address:mailhub
#
# Example: root:your_login@your.domain:mailhub.your.domain[:port]
# where [:port] is an optional port number that defaults to 25.
root:alice@example.org:smtp.example.org:587
"""

DMA_CONF = """\
# $DragonFly: src/etc/dma/dma.conf,v 1.2 2008/02/04 10:11:41 matthias Exp $
#
# Your smarthost (also called relayhost).  Leave blank if you don't want
# smarthost support.
SMARTHOST mail.example.com

# Use this SMTP port.  Most users will be fine with the default (25)
PORT 587

# Path to your alias file.  Just stay with the default.
#ALIASES /etc/aliases

# SMTP authentication
AUTHPATH {authpath}

# Uncomment if you want TLS/SSL support
SECURETRANSFER

# Uncomment if you want STARTTLS support (only used in combination with
# SECURETRANSFER)
STARTTLS

# Uncomment if you have specified STARTTLS above and it should be allowed
# to fail
OPPORTUNISTIC_TLS

# If you want to use plain text SMTP login without using encryption, change
# the SECURE entry below to INSECURE.
#SECURE

# The internet hostname dma uses to identify the host.
MAILNAME /etc/mailname

# MASQUERADE herb@ert  will send all mails as herb@ert
MASQUERADE herb@example.com
"""

DMA_AUTH = """\
# $DragonFly: src/etc/dma/auth.conf,v 1.1 2008/02/02 18:24:00 matthias Exp $
#
# SMTP authentication entries (currently AUTH LOGIN only)
# Format: user|my.smarthost.example.com:password
herb|mail.example.com:horse battery
other|elsewhere.example.com:nope
"""

NULLMAILER_REMOTES = ("smarthost.dom smtp port=2525 starttls user=user pass='my pass phrase'\n"
                      "backup.dom smtp --tls --insecure\n"
                      "qmqp.dom qmqp\n")


def write(path, text, mode=0o600):
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, mode)
    return str(path)


def pretend(run_mailcar, tmp_path, text, account=None):
    """Load the converted text with mailcar itself: key -> value of --pretend."""
    conf = write(tmp_path / 'converted.conf', text)
    args = ['-C', conf, '--pretend'] + (['-a', account] if account else [])
    code, out, err = run_mailcar(args, use_config=False)
    assert code == 0, err.decode()
    values = {}
    for line in out.decode().splitlines():
        m = re.match(r'^(\w+)\s+(.*?)\s+# ', line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


def do_import(run_mailcar, path):
    r = run_mailcar(['--import', str(path)], use_config=False)
    assert r.code == 0, r.describe()
    return r.stdout.decode()


def test_msmtp_user_example(run_mailcar, tmp_path):
    src = write(tmp_path / 'msmtprc', MSMTP_USER)
    out = do_import(run_mailcar, src)
    assert '(msmtp)' in out.splitlines()[0]
    assert 'keyring' in out        # the company account's password cannot come along
    v = pretend(run_mailcar, tmp_path, out)
    assert v['host'] == 'smtp.freemail.example'
    assert v['port'] == '587' and v['tls_starttls'] == 'on'
    assert v['passwordeval'].startswith('gpg2')
    v2 = pretend(run_mailcar, tmp_path, out, 'freemail2')
    assert v2['from'] == 'joey@freemail.example' and v2['user'] == 'joe.smith'


def test_msmtp_system_example(run_mailcar, tmp_path):
    src = write(tmp_path / 'msmtprc-system.example', MSMTP_SYSTEM)
    out = do_import(run_mailcar, src)
    assert re.search(r'^# not carried over .*from %U@oursite.example$', out, re.M)
    v = pretend(run_mailcar, tmp_path, out)
    assert v['port'] == '465' and v['tls_starttls'] == 'off'
    assert v['syslog'] == 'LOG_MAIL'
    assert 'from' not in v


def test_msmtp_unsupported_keys_are_comments(run_mailcar, tmp_path):
    src = write(tmp_path / '.msmtprc', 'account default\nhost h.example\nproxy_host socks.example\n'
                'tls_crl_file /etc/crl.pem\nnosuchkey 1\n')
    out = do_import(run_mailcar, src)
    assert "# not carried over ('proxy_host' is not supported" in out
    assert "# not carried over (mailcar has no 'nosuchkey')" in out
    assert 'tls and port' in out      # msmtp's defaults differ from mailcar's
    assert pretend(run_mailcar, tmp_path, out)['host'] == 'h.example'


def test_ssmtp(run_mailcar, tmp_path):
    d = tmp_path / 'ssmtp'
    d.mkdir()
    src = write(d / 'ssmtp.conf', SSMTP_CONF)
    write(d / 'revaliases', SSMTP_REVALIASES)
    out = do_import(run_mailcar, src)
    assert '(ssmtp)' in out.splitlines()[0]
    assert '# Root=postmaster' in out
    assert '#   root:alice@example.org:smtp.example.org:587' in out
    v = pretend(run_mailcar, tmp_path, out)
    assert v['host'] == 'smtp.example.org' and v['port'] == '587'
    assert v['tls'] == 'on' and v['tls_starttls'] == 'on'
    assert v['auth'] == 'cram-md5' and v['user'] == 'alice'
    assert v['password'] == '********'
    assert v['domain'] == 'example.org' and v['allow_from_override'] == 'on'
    assert 'password "s3cret pass"' in out or 'password s3cret pass' in out


def test_ssmtp_plain_defaults_port_25(run_mailcar, tmp_path):
    src = write(tmp_path / 'ssmtp.conf', 'root=postmaster\nmailhub=mail\nhostname=box.example.org\n')
    out = do_import(run_mailcar, src)
    v = pretend(run_mailcar, tmp_path, out)
    assert v['host'] == 'mail' and v['port'] == '25' and v['tls'] == 'off'
    assert v['domain'] == 'box.example.org'


def test_ssmtp_password_without_tls_gets_tls(run_mailcar, tmp_path):
    src = write(tmp_path / 'ssmtp.conf', 'mailhub=mail.example.org\nAuthUser=bob\nAuthPass=pw\n')
    out = do_import(run_mailcar, src)
    assert 'sent the password without TLS' in out
    v = pretend(run_mailcar, tmp_path, out)
    assert v['tls'] == 'on' and v['auth'] == 'on'


def test_dma(run_mailcar, tmp_path):
    auth = write(tmp_path / 'secret-auth.conf', DMA_AUTH)
    src = write(tmp_path / 'dma.conf', DMA_CONF.format(authpath=auth))
    out = do_import(run_mailcar, src)
    assert '(dma)' in out.splitlines()[0]
    assert 'OPPORTUNISTIC_TLS: mailcar never falls back' in out
    assert "entry for 'elsewhere.example.com'" in out and 'nope' not in out
    v = pretend(run_mailcar, tmp_path, out)
    assert v['host'] == 'mail.example.com' and v['port'] == '587'
    assert v['tls'] == 'on' and v['tls_starttls'] == 'on'
    assert v['user'] == 'herb' and v['password'] == '********'
    assert v['from'] == 'herb@example.com'


def test_dma_shipped_file_no_smarthost(run_mailcar, tmp_path):
    """The dma.conf exactly as shipped: nothing set but MAILNAME; auth.conf beside it."""
    text = re.sub(r'^(SMARTHOST|PORT|AUTHPATH|SECURETRANSFER|STARTTLS|OPPORTUNISTIC_TLS|MASQUERADE)',
                  r'#\1', DMA_CONF, flags=re.M)
    src = write(tmp_path / 'dma.conf', text)
    write(tmp_path / 'auth.conf', DMA_AUTH)
    out = do_import(run_mailcar, src)
    assert "no server in the dma configuration: add 'host NAME'" in out
    assert 'MX' in out
    v = pretend(run_mailcar, tmp_path, out)
    assert v['port'] == '25' and v['tls'] == 'off'


def test_nullmailer_folder(run_mailcar, tmp_path):
    d = tmp_path / 'nullmailer'
    d.mkdir()
    write(d / 'remotes', NULLMAILER_REMOTES)
    write(d / 'me', 'box\n', 0o644)
    write(d / 'defaultdomain', 'example.net\n', 0o644)
    write(d / 'adminaddr', 'admin@example.net\n', 0o644)
    for arg in (d, d / 'remotes'):
        out = do_import(run_mailcar, arg)
        assert '(nullmailer)' in out.splitlines()[0]
        assert '# adminaddr admin@example.net' in out
        assert 'mailcar speaks SMTP, not qmqp' in out
        v = pretend(run_mailcar, tmp_path, out)
        assert v['host'] == 'smarthost.dom' and v['port'] == '2525'
        assert v['tls'] == 'on' and v['tls_starttls'] == 'on'
        assert v['user'] == 'user' and v['password'] == '********'
        assert v['domain'] == 'box.example.net' and v['qualify_domain'] == 'box.example.net'
        assert 'password "my pass phrase"' in out or 'password my pass phrase' in out
        b = pretend(run_mailcar, tmp_path, out, 'remote2')
        assert b['host'] == 'backup.dom' and b['port'] == '465'
        assert b['tls_starttls'] == 'off' and b['tls_certcheck'] == 'off'


def test_detect_by_content(run_mailcar, tmp_path):
    src = write(tmp_path / 'old-config', 'mailhub=relay.example.org\n')
    assert '(ssmtp)' in do_import(run_mailcar, src)
    src = write(tmp_path / 'other', 'SMARTHOST relay.example.org\n')
    assert '(dma)' in do_import(run_mailcar, src)


def test_errors(run_mailcar, tmp_path):
    r = run_mailcar(['--import', str(tmp_path / 'missing')], use_config=False)
    assert r.code == 74 and b"cannot read" in r.stderr, r.describe()
    src = write(tmp_path / 'random', 'hello world\n')
    r = run_mailcar(['--import', src], use_config=False)
    assert r.code == 78 and b'not an msmtp, ssmtp, dma or nullmailer configuration' in r.stderr
    d = tmp_path / 'empty-nullmailer'
    d.mkdir()
    write(d / 'remotes', '# nothing\n')
    r = run_mailcar(['--import', str(d)], use_config=False)
    assert r.code == 78 and b'no remote server listed' in r.stderr, r.describe()
    r = run_mailcar(['--import'], use_config=False)
    assert r.code == 64
