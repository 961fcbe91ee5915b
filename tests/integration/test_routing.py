"""Connection routes: IPv6 and IPv4 raced (RFC 8305), address_family, a
Unix domain socket (`socket`), a SOCKS5 proxy (`proxy_host`) that resolves
the name itself."""

import os
import re
import socket
import struct
import subprocess
import threading

import pytest

import faultserver as fs

MSG = b'Subject: route\n\nbody\n'


def pump(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def splice(client, port):
    upstream = socket.create_connection(('127.0.0.1', port))
    threading.Thread(target=pump, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()


class Relay:
    """Accepts on `listener` (any family) and passes each connection to 127.0.0.1:port."""

    def __init__(self, listener, port):
        self.sock = listener
        self.sock.listen(4)
        self.target = port
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            splice(c, self.target)


def unix_relay(path, port):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    return Relay(sock, port)


def v6_relay(port):
    """Listens on [::1] only."""
    sock = socket.socket(socket.AF_INET6)
    sock.bind(('::1', 0))
    relay = Relay(sock, port)
    relay.port = sock.getsockname()[1]
    return relay


class Socks5:
    """A no-authentication SOCKS5 server that maps every name to one port."""

    def __init__(self, port, creds=None):
        self.target = port
        self.creds = creds          # (user, password): require RFC 1929 login
        self.logins = []
        self.requests = []
        self.methods = []
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.loop, daemon=True).start()

    def recv(self, c, n):
        data = b''
        while len(data) < n:
            chunk = c.recv(n - len(data))
            if not chunk:
                raise OSError('closed')
            data += chunk
        return data

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                ver, n = self.recv(c, 2)
                self.methods.append(self.recv(c, n))
                if self.creds:
                    c.sendall(b'\x05\x02')
                    ver, ul = self.recv(c, 2)
                    user = self.recv(c, ul).decode()
                    password = self.recv(c, self.recv(c, 1)[0]).decode()
                    self.logins.append((user, password))
                    ok = (user, password) == self.creds
                    c.sendall(b'\x01\x00' if ok else b'\x01\x01')
                    if not ok:
                        c.close()
                        continue
                else:
                    c.sendall(b'\x05\x00')
                ver, cmd, _, atyp = self.recv(c, 4)
                if atyp == 3:
                    host = self.recv(c, self.recv(c, 1)[0]).decode()
                else:
                    host = socket.inet_ntoa(self.recv(c, 4))
                port = struct.unpack('>H', self.recv(c, 2))[0]
                self.requests.append((atyp, host, port))
                c.sendall(b'\x05\x00\x00\x01\x7f\x00\x00\x01' + struct.pack('>H', 9))
                splice(c, self.target)
            except OSError:
                c.close()


def test_unix_socket(faultserver, run_mailcar, tmp_path):
    srv = faultserver(responder=fs.Responder(), tls=False)
    path = str(tmp_path / 'smtp.sock')
    unix_relay(path, srv.port)
    r = run_mailcar(['-v', 'rcpt@example.test'], server=srv, stdin=MSG,
                    config=['socket %s' % path])
    assert r.code == 0, r.describe()
    assert len(srv.messages) == 1
    assert ('connected to 127.0.0.1' not in r.stderr.decode())


def test_unix_socket_missing(run_mailcar, tmp_path):
    r = run_mailcar(['rcpt@example.test'], stdin=MSG, config=['socket %s' % (tmp_path / 'none')])
    assert r.code == 75, r.describe()
    assert b"cannot connect to socket" in r.stderr


def test_socks5_resolves_name_remotely(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    proxy = Socks5(srv.port)
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=['host relay.internal.example', 'port 2525',
                            'proxy_host 127.0.0.1', 'proxy_port %d' % proxy.port])
    assert r.code == 0, r.describe()
    assert proxy.requests == [(3, 'relay.internal.example', 2525)]
    assert proxy.methods == [b'\x00']
    assert len(srv.messages) == 1


def test_socks5_login(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    proxy = Socks5(srv.port, creds=('alice', 'pr0xy-pw'))
    base = ['host relay.example', 'proxy_host 127.0.0.1', 'proxy_port %d' % proxy.port,
            'proxy_user alice']
    r = run_mailcar(['-v', 'rcpt@example.test'], server=srv, stdin=MSG, stop_server=False,
                    config=base + ['proxy_password pr0xy-pw'])
    assert r.code == 0, r.describe()
    assert proxy.methods == [b'\x02'] and proxy.logins == [('alice', 'pr0xy-pw')]
    assert b'pr0xy-pw' not in r.stderr
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=base + ['proxy_password wrong'])
    assert r.code == 78, r.describe()
    assert b"refused proxy_user 'alice'" in r.stderr
    assert len(srv.messages) == 1


def test_socks5_proxy_wants_login_we_lack(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    proxy = Socks5(srv.port, creds=('alice', 'x'))
    r = run_mailcar(['rcpt@example.test'], stdin=MSG,
                    config=['host relay.example', 'proxy_host 127.0.0.1',
                            'proxy_port %d' % proxy.port])
    assert r.code == 78, r.describe()
    assert b'set proxy_user' in r.stderr


REMOTE_PROXY = r"""
import socket, subprocess, sys, threading
subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
subprocess.run(['ip', 'addr', 'add', '192.0.2.1/32', 'dev', 'lo'], check=True)
got = []
s = socket.socket(); s.bind(('192.0.2.1', 1080)); s.listen(1)
def serve():
    c, _ = s.accept()
    c.recv(3); c.sendall(b'\x05\x02')
    c.settimeout(2)
    try:
        got.append(c.recv(600))
    except OSError:
        pass
    c.close()
threading.Thread(target=serve, daemon=True).start()
p = subprocess.run(sys.argv[1:], input=b'Subject: x\n\nx\n', capture_output=True, timeout=20)
sys.stdout.write('%d\n%r\n' % (p.returncode, got))
sys.stderr.write(p.stderr.decode())
"""


@pytest.mark.skipif(os.geteuid() != 0, reason='needs root for a private network namespace')
def test_socks5_login_only_to_a_local_proxy(run_mailcar, tmp_path):
    """In a network namespace of the test's own, the proxy sits on 192.0.2.1,
    an address of that namespace that is not loopback: no credentials go out."""
    path, _ = run_mailcar.write_config(['account default', 'host relay.example', 'tls off',
                                        'auth off', 'proxy_host 192.0.2.1', 'proxy_user alice',
                                        'proxy_password pr0xy-pw', 'from s@example.test'])
    p = subprocess.run(['unshare', '-n', '/usr/bin/python3', '-c', REMOTE_PROXY,
                        run_mailcar.binary, '-C', path, 'rcpt@example.test'],
                       capture_output=True, env=run_mailcar.env(), timeout=40)
    if p.returncode != 0:
        pytest.skip('cannot build a network namespace here: %s' % p.stderr.decode()[-200:])
    code, got = p.stdout.decode().splitlines()[:2]
    assert code == '78', p.stderr
    assert b'not on this machine' in p.stderr
    assert 'pr0xy-pw' not in got


def test_socks5_refusal(run_mailcar):
    lsock = socket.socket()
    lsock.bind(('127.0.0.1', 0))
    lsock.listen(1)

    def refuse():
        c, _ = lsock.accept()
        c.recv(3)
        c.sendall(b'\x05\x00')
        c.recv(300)
        c.sendall(b'\x05\x05\x00\x01\x00\x00\x00\x00\x00\x00')   # connection refused
        c.close()
    threading.Thread(target=refuse, daemon=True).start()
    r = run_mailcar(['rcpt@example.test'], stdin=MSG,
                    config=['host relay.example', 'proxy_host 127.0.0.1',
                            'proxy_port %d' % lsock.getsockname()[1]])
    assert r.code == 75, r.describe()
    assert re.search(rb'SOCKS proxy could not reach relay.example port \d+: connection refused',
                     r.stderr), r.stderr


def test_socks5_proxy_down(run_mailcar):
    port = fs.free_port()
    r = run_mailcar(['rcpt@example.test'], stdin=MSG,
                    config=['host relay.example', 'proxy_host 127.0.0.1', 'proxy_port %d' % port])
    assert r.code == 75, r.describe()
    assert b'cannot connect to proxy 127.0.0.1' in r.stderr


def ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(('::1', 0))
        s.close()
        return True
    except OSError:
        return False


def run_with_hosts(run_mailcar, tmp_path, port, *extra):
    """mailcar with an /etc/hosts of its own (a private mount namespace):
    dual.test has both ::1 and 127.0.0.1."""
    hosts = tmp_path / 'hosts'
    hosts.write_text('::1 dual.test\n127.0.0.1 dual.test\n')
    path, _ = run_mailcar.write_config(['account default', 'host dual.test', 'port %d' % port,
                                        'tls off', 'auth off', 'from s@example.test',
                                        'timeout 5'] + list(extra))
    argv = ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
            run_mailcar.binary, '-v', '-C', path, 'rcpt@example.test']
    return subprocess.run(argv, input=MSG, capture_output=True, env=run_mailcar.env(), timeout=30)


needs_dual = pytest.mark.skipif(not ipv6_loopback() or os.geteuid() != 0,
                                reason='needs IPv6 loopback and root (a private /etc/hosts)')


@needs_dual
@pytest.mark.parametrize('listen', ['ipv6', 'ipv4'])
def test_dual_stack(faultserver, run_mailcar, tmp_path, listen):
    """The server listens on one family only: IPv6 first, and when nothing
    answers on [::1], IPv4 wins the race."""
    srv = faultserver(responder=fs.Responder(), tls=False)
    port = v6_relay(srv.port).port if listen == 'ipv6' else srv.port
    p = run_with_hosts(run_mailcar, tmp_path, port)
    srv.wait_idle()
    srv.stop()
    assert p.returncode == 0, p.stderr
    assert len(srv.messages) == 1


@needs_dual
def test_address_family_ipv6_only(faultserver, run_mailcar, tmp_path):
    srv = faultserver(responder=fs.Responder(), tls=False)
    p = run_with_hosts(run_mailcar, tmp_path, srv.port, 'address_family ipv6')
    srv.stop()
    assert p.returncode == 75, p.stderr
    assert srv.lines == []


def test_ipv4_only_server(faultserver, run_mailcar):
    srv = faultserver(responder=fs.Responder(), tls=False)
    r = run_mailcar(['rcpt@example.test'], server=srv, stdin=MSG,
                    config=['host localhost', 'address_family ipv4'])
    assert r.code == 0, r.describe()
