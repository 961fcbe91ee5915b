"""A real validating resolver on 127.0.0.1:53 for tests: Debian's Unbound
serving test zones from files (auth-zone), one of them DNSSEC-signed at
test time with ldns-signzone and trusted through its DS record, so the AD
bit, a bogus signature's SERVFAIL and an unsigned zone's missing AD all come
from the real validator.  Reached the way dnsfake.py's server is: through a
private mount namespace whose /etc/resolv.conf names 127.0.0.1
(dnsfake.resolver_prefix).

    with Unbound(tmpdir, signed=RECORDS, plain=RECORDS, tamper=fn) as ub: ...

RECORDS are zone-file lines relative to the zone (signed.test or plain.test);
tamper(text) -> text edits the signed zone after signing (a forged record)."""

import os
import shutil
import socket
import struct
import subprocess
import time

SIGNED, PLAIN = 'signed.test', 'plain.test'


def can_run_unbound():
    """None when the tests can run, else why not."""
    for tool in ('unbound', 'ldns-keygen', 'ldns-signzone'):
        if shutil.which(tool) is None:
            return '%s is not installed (apt-get install unbound ldnsutils)' % tool
    return None


def _zone(name, records):
    head = ['$ORIGIN %s.' % name, '$TTL 300',
            '@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300' % (name, name),
            '@ IN NS ns.%s.' % name, 'ns IN A 127.0.0.1']
    return '\n'.join(head + list(records)) + '\n'


class Unbound:
    def __init__(self, tmpdir, signed=(), plain=(), tamper=None):
        self.dir = os.path.join(str(tmpdir), 'unbound')
        os.makedirs(self.dir, exist_ok=True)
        j = lambda n: os.path.join(self.dir, n)
        with open(j('signed.zone'), 'w') as f:
            f.write(_zone(SIGNED, signed))
        with open(j('plain.zone'), 'w') as f:
            f.write(_zone(PLAIN, plain))
        key = subprocess.run(['ldns-keygen', '-a', 'ECDSAP256SHA256', '-k', SIGNED], cwd=self.dir,
                             check=True, capture_output=True, text=True).stdout.strip()
        subprocess.run(['ldns-signzone', '-o', SIGNED, 'signed.zone', key], cwd=self.dir,
                       check=True, capture_output=True)
        if tamper:
            with open(j('signed.zone.signed')) as f:
                text = tamper(f.read())
            with open(j('signed.zone.signed'), 'w') as f:
                f.write(text)
        conf = ['server:', '  interface: 127.0.0.1', '  port: 53', '  do-ip6: no',
                '  username: ""', '  chroot: ""', '  directory: "%s"' % self.dir,
                '  pidfile: "%s"' % j('unbound.pid'), '  use-syslog: no',
                '  logfile: "%s"' % j('unbound.log'), '  verbosity: 1', '  val-log-level: 2',
                '  do-not-query-localhost: no', '  local-zone: "test." nodefault',
                '  module-config: "validator iterator"',
                '  trust-anchor-file: "%s"' % j(key + '.ds'),
                '  domain-insecure: "%s"' % PLAIN]
        for zone, path in ((SIGNED, 'signed.zone.signed'), (PLAIN, 'plain.zone')):
            conf += ['auth-zone:', '  name: "%s."' % zone, '  zonefile: "%s"' % j(path),
                     '  for-downstream: no', '  for-upstream: yes', '  fallback-enabled: no']
        conf += ['remote-control:', '  control-enable: no']
        with open(j('unbound.conf'), 'w') as f:
            f.write('\n'.join(conf) + '\n')
        self.proc = subprocess.Popen(['unbound', '-d', '-c', j('unbound.conf')],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self):
        qname = b''.join(bytes([len(l)]) + l.encode() for l in SIGNED.split('.')) + b'\0'
        query = struct.pack('>HHHHHH', 1, 0x0100, 1, 0, 0, 0) + qname + struct.pack('>HH', 6, 1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('unbound exited: see %s' % os.path.join(self.dir, 'unbound.log'))
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(0.2)
            try:
                s.sendto(query, ('127.0.0.1', 53))
                if s.recv(4096):
                    return
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
        self.stop()
        raise RuntimeError('unbound did not answer within 10 s')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
