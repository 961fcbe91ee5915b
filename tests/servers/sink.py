"""Shared pieces of the private interop servers (exim.py, opensmtpd.py):
a throwaway CA and server certificate, free loopback ports, waiting for a
port, stopping a daemon by its pid file, and the delivery script every
server pipes accepted messages into.

The delivery script writes each message to MAILDIR/<ns>-<id>.eml (lines end
in LF, as the server hands them over) with MAILDIR/<same>.json next to it:
{"sender": ..., "recipients": [...], "queue_id": ...}; the .json is written
first and the .eml renamed into place, the layout pf.py uses, so
tests/integration/postfix_server.Delivered reads both.
Stdlib only; run with /usr/bin/python3.
"""

import json
import os
import signal
import sys
import socket
import subprocess
import time

HOST = "127.0.0.1"

DELIVER = r'''#!/usr/bin/python3
# deliver.py MAILDIR QUEUE_ID [SENDER RECIPIENT...] < message
# Without SENDER and RECIPIENTs the envelope is taken from the Return-path:
# and Envelope-to: headers the server put on top (Exim: tainted values may
# not be pipe arguments), and those two headers are removed.
import json, os, re, sys, time
d, qid, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
data = sys.stdin.buffer.read()
if rest:
    sender, rcpts = rest[0], rest[1:]
else:
    sender, rcpts = None, []
    while True:
        m = re.match(rb"(Return-path|Envelope-to):[ \t]*(.*?)\n(?![ \t])", data, re.S | re.I)
        if not m:
            break
        value = m.group(2).decode("utf-8", "replace")
        if m.group(1).lower() == b"return-path":
            sender = value.strip().strip("<>")
        else:
            rcpts += [a.strip() for a in value.replace("\n", " ").split(",") if a.strip()]
        data = data[m.end():]
base = "%020d-%s" % (time.time_ns(), qid.replace("/", "_"))
with open(os.path.join(d, base + ".json"), "w") as f:
    json.dump({"sender": sender, "recipients": rcpts, "queue_id": qid, "size": len(data)}, f)
tmp = os.path.join(d, ".tmp-" + base)
with open(tmp, "wb") as f:
    f.write(data)
os.rename(tmp, os.path.join(d, base + ".eml"))
'''


class ServerError(Exception):
    pass


def free_ports(n):
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def wait_port(port, timeout=15.0, proc=None, what="server"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError("%s exited with %s before listening on %d"
                              % (what, proc.returncode, port))
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerError("%s did not listen on %s:%d within %.0f s" % (what, HOST, port, timeout))


def openssl(cwd, *args):
    p = subprocess.run(("openssl",) + args, cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode:
        raise ServerError("openssl %s failed: %s" % (" ".join(args), p.stdout.decode()))


def make_ca(d, cn="localhost", server_key="ec"):
    """A throwaway CA and a server certificate for localhost/127.0.0.1 in d:
    ca.crt, ca.key, server.crt, server.key (returned as a dict of paths).
    server_key: "ec" (P-256) or "rsa" (2048 bits; OpenSMTPD 6.8's privsep
    signing fails with EC keys under OpenSSL 3: "EVP lib")."""
    os.makedirs(d, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    srv = ec if server_key == "ec" else ("-newkey", "rsa:2048", "-nodes")
    openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "7",
            "-subj", "/CN=mailcar interop test CA", "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl(d, "req", *srv, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=" + cn)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-set_serial", "2", "-days", "7", "-out", "server.crt", "-extfile", "server.ext")
    return {n: os.path.join(d, n) for n in ("ca.crt", "ca.key", "server.crt", "server.key")}


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def install_deliver(d):
    return write(os.path.join(d, "deliver.py"), DELIVER, 0o755)


# One definition of "is this pid running" for every server script (a zombie is not).
from pf import alive, read_pid  # noqa: E402,F401


def kill_pid(pid, timeout=5.0):
    """SIGTERM the process (and its process group when it leads one), then SIGKILL."""
    if not alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    if alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cli(argv, name, doc, start, stop, is_running):
    """The `start|stop|status DIR` command line every server script shares."""
    if len(argv) != 3 or argv[1] not in ("start", "stop", "status"):
        print(doc, file=sys.stderr)
        return 2
    cmd, d = argv[1], argv[2]
    if cmd == "start":
        try:
            info = start(d)
        except ServerError as e:
            print("%s: %s" % (name, e), file=sys.stderr)
            return 1
        print(json.dumps(info, indent=1))
        return 0
    if cmd == "stop":
        stop(d)
        return 0
    return 0 if is_running(d) else 1


def load(d):
    """The info.json a server script wrote into DIR when it started."""
    with open(os.path.join(d, "info.json")) as f:
        return json.load(f)
