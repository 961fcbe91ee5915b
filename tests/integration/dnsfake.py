"""A tiny authoritative-for-everything DNS server on 127.0.0.1:53 for tests.

Names are answered by their first label's suffix rules:
    *.nx.test        NXDOMAIN          (mailcar: host not found, exit 68)
    *.servfail.test  SERVFAIL          (temporary failure, exit 75)
    *.silent.test    no answer at all  (the resolver times out, exit 75)
    anything else    A 127.0.0.1
SRV (type 33), TLSA (type 52) and MX (type 15) answers come from the .srv,
.tlsa and .mx dicts (name -> list of (priority, weight, port, target),
(usage, selector, matching type, bytes) or (preference, exchange)); other names have no such records
(NOERROR, empty).  .ad sets the AD bit (DNSSEC-validated) on every answer.
Queries are recorded in .queries.  Tests point a process at it by running
it in a private mount namespace where /etc/resolv.conf names 127.0.0.1
(see run_with_resolver).  Standard library only.
"""

import os
import socket
import struct
import subprocess
import threading

import pytest


class FakeDns:
    def __init__(self, host='127.0.0.1', port=53, srv=None, tlsa=None, ad=False, mx=None):
        self.mx = dict(mx or {})
        self.srv = dict(srv or {})
        self.tlsa = dict(tlsa or {})
        self.ad = ad
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.queries = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self.answer(data)
            if reply is not None:
                self.sock.sendto(reply, peer)

    @staticmethod
    def _qname(data):
        labels, i = [], 12
        while i < len(data) and data[i]:
            n = data[i]
            labels.append(data[i + 1:i + 1 + n].decode('ascii', 'replace'))
            i += 1 + n
        return '.'.join(labels).lower(), i + 1

    def answer(self, data):
        if len(data) < 12:
            return None
        qid, flags = struct.unpack('>HH', data[:4])
        name, end = self._qname(data)
        qtype = struct.unpack('>H', data[end:end + 2])[0] if end + 2 <= len(data) else 0
        question = data[12:end + 4]
        self.queries.append((name, qtype))
        rd = flags & 0x0100
        if name.endswith('.silent.test'):
            return None
        if name.endswith('.nx.test'):
            return struct.pack('>HHHHHH', qid, 0x8403 | rd, 1, 0, 0, 0) + question
        if name.endswith('.servfail.test'):
            return struct.pack('>HHHHHH', qid, 0x8002 | rd, 1, 0, 0, 0) + question
        ad = 0x0020 if self.ad else 0
        rdatas = []
        if qtype == 1:
            rdatas = [socket.inet_aton('127.0.0.1')]
        elif qtype == 33:
            rdatas = [struct.pack('>HHH', p, w, port) + self._name(t)
                      for p, w, port, t in self.srv.get(name, [])]
        elif qtype == 15:
            rdatas = [struct.pack('>H', pref) + self._name(t) for pref, t in self.mx.get(name, [])]
        elif qtype == 52:
            rdatas = [bytes([u, sel, m]) + data for u, sel, m, data in self.tlsa.get(name, [])]
        rrs = b''.join(b'\xc0\x0c' + struct.pack('>HHIH', qtype, 1, 60, len(d)) + d
                       for d in rdatas)
        return struct.pack('>HHHHHH', qid, 0x8400 | rd | ad, 1, len(rdatas), 0, 0) + question + rrs

    @staticmethod
    def _name(name):
        out = b''
        for label in name.strip('.').split('.') if name.strip('.') else []:
            out += bytes([len(label)]) + label.encode('ascii')
        return out + b'\0'

    def stop(self):
        self._stop.set()
        self.sock.close()
        self._thread.join(2)


def resolver_prefix(tmpdir, trust_ad=False):
    """argv prefix running a command with /etc/resolv.conf -> 127.0.0.1 (root only).
    trust_ad: glibc passes the resolver's AD bit on only with 'options trust-ad'."""
    conf = os.path.join(str(tmpdir), 'resolv.conf')
    with open(conf, 'w') as f:
        f.write('nameserver 127.0.0.1\noptions timeout:1 attempts:1%s\n'
                % (' trust-ad' if trust_ad else ''))
    return ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', conf]


def can_fake_dns():
    """None when the tests can run, else why not."""
    if os.geteuid() != 0:
        return 'needs root (a private mount namespace and port 53)'
    try:
        subprocess.run(['unshare', '-m', 'true'], check=True, capture_output=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return 'unshare -m is not permitted here'
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(('127.0.0.1', 53))
    except OSError as e:
        return '127.0.0.1:53 is not free (%s)' % e
    finally:
        s.close()
    return None


# For test modules: `from dnsfake import dns, needs_fake_dns` and
# `pytestmark = needs_fake_dns`.
needs_fake_dns = pytest.mark.skipif(can_fake_dns() is not None, reason=str(can_fake_dns()))


@pytest.fixture
def dns():
    d = FakeDns()
    yield d
    d.stop()
