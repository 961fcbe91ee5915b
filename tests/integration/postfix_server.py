"""pytest helper: a private Postfix + Dovecot on loopback (tests/servers/pf.py).

Use it from a test module (or list it in conftest.py as
`pytest_plugins = ["postfix_server"]`):

    from postfix_server import postfix  # noqa: F401  (the fixture)

    def test_send(postfix):
        postfix.mark()                          # forget earlier deliveries
        ...send to 127.0.0.1:postfix.submission...
        [m] = postfix.wait_messages(1)
        assert m.recipients == ["bob@example.test"]
        assert b"Subject: hi" in m.data

The instance is started once per session in a fresh directory and stopped at
the end; with MAILCAR_PF_DIR set, an instance already running there
(`sh tests/servers/pf.sh start DIR`) is reused and left running, or one is
started there and stopped at the end.  Needs root and the private servers
(`sudo sh tests/setup-debian.sh`); otherwise the tests using it are skipped.
"""

import atexit
import json
import os
import shutil
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "servers"))
import pf  # noqa: E402


class Delivered:
    """One delivery to the sink: the message bytes and the envelope."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = f.read()
        with open(path[:-4] + ".json", encoding="utf-8") as f:
            env = json.load(f)
        self.sender = env["sender"]
        self.recipients = env["recipients"]
        self.queue_id = env["queue_id"]

    def headers(self):
        """The header block (bytes, up to the empty line)."""
        return self.data.split(b"\n\n", 1)[0] + b"\n"

    def body(self):
        return self.data.split(b"\n\n", 1)[1] if b"\n\n" in self.data else b""

    def __repr__(self):
        return "<Delivered %s from=%r to=%r %d bytes>" % (
            self.queue_id, self.sender, self.recipients, len(self.data))


class Mailbox:
    """The deliveries in a sink directory (<name>.eml + <name>.json), watched
    from a mark.  Subclasses set .maildir and may override failure_context()."""

    name = "server"

    def _files(self):
        try:
            return sorted(n for n in os.listdir(self.maildir)
                          if n.endswith(".eml") and not n.startswith("."))
        except FileNotFoundError:
            return []

    def mark_deliveries(self):
        self._seen.update(self._files())

    def new_messages(self):
        """Deliveries since the last mark()/wait_messages(), without waiting."""
        new = [n for n in self._files() if n not in self._seen]
        self._seen.update(new)
        return [Delivered(os.path.join(self.maildir, n)) for n in new]

    def failure_context(self):
        return ""

    def wait_messages(self, n=1, timeout=15.0):
        """Wait for N new deliveries (in delivery order) and return them all
        (there may be more than N); AssertionError with the log if they do
        not come."""
        deadline = time.monotonic() + timeout
        while True:
            new = [x for x in self._files() if x not in self._seen]
            if len(new) >= n:
                self._seen.update(new)
                return [Delivered(os.path.join(self.maildir, x)) for x in new]
            if time.monotonic() > deadline:
                raise AssertionError("%s: %d of %d messages delivered after %.0f s\n%s"
                                     % (self.name, len(new), n, timeout, self.failure_context()))
            time.sleep(0.02)

    def assert_no_messages(self, wait=1.0):
        """Fail when anything is delivered within WAIT seconds."""
        time.sleep(wait)
        new = self.new_messages()
        assert not new, "%s: unexpected deliveries: %r" % (self.name, new)


class PostfixInstance(Mailbox):
    """What the fixture returns.  Attributes:

    dir, host ("127.0.0.1"), ports (dict), submission, submissions, plain,
    expired, wrongname, selfsigned (port numbers), ca (path of the CA cert),
    ca_dir (hashed CA directory), certs (dict name -> path, e.g.
    certs["client.crt"]), user, password, users (dict), reject_rcpt (550),
    tempfail_rcpt (450), size_limit, maildir, log_path (Postfix log),
    dovecot_log, ports_env (path of ports.env), info (ports.json as a dict).
    """

    def __init__(self, d):
        self.info = pf.load(d)
        i = self.info
        self.dir = i["dir"]
        self.host = i["host"]
        self.ports = i["ports"]
        for name, port in self.ports.items():
            setattr(self, name, port)
        self.ca = i["ca"]["ca.crt"]
        self.ca_dir = i["ca_dir"]
        self.certs = i["ca"]
        self.user = i["user"]
        self.password = i["password"]
        self.users = i["users"]
        self.reject_rcpt = i["reject_rcpt"]
        self.tempfail_rcpt = i["tempfail_rcpt"]
        self.size_limit = i["size_limit"]
        self.maildir = i["maildir"]
        self.lmtp_socket = i.get("lmtp_socket")
        self.vmail = i.get("vmail")
        self.log_path = i["postfix_log"]
        self.dovecot_log = i["dovecot_log"]
        self.ports_env = os.path.join(self.dir, "ports.env")
        self._seen = set()
        self._log_mark = 0
        self.mark()

    # --- deliveries (Mailbox) ---
    name = "postfix"

    def mark(self):
        """Forget every delivery so far, and the log so far (see log_since_mark)."""
        self.mark_deliveries()
        try:
            self._log_mark = os.path.getsize(self.log_path)
        except OSError:
            self._log_mark = 0

    def failure_context(self):
        return self.log_since_mark()

    # --- logs ---
    def log_since_mark(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_mark)
                return f.read().decode("utf-8", "replace")
        except OSError as e:
            return "(%s)" % e

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def env(self):
        """The ports.env variables as a dict (for subprocess environments)."""
        out = {}
        with open(self.ports_env) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("=")
                out[k] = v.strip("'")
        return out


# One instance per process, however many modules import the fixture.
_state = {"inst": None, "owned": False, "tmp": None, "users": 0}


def _unavailable():
    if os.geteuid() != 0:
        return "the private Postfix needs root (run the tests as root)"
    return pf.missing_prerequisites()


def _stop():
    st = _state
    if st["inst"] is not None and st["owned"]:
        pf.stop(st["inst"].dir, quiet=True)
        if st["tmp"] and not os.environ.get("MAILCAR_PF_KEEP"):
            shutil.rmtree(st["tmp"], ignore_errors=True)
    st["inst"] = None


def get_instance():
    """Start (or reuse) the session's instance; pytest.skip when impossible."""
    st = _state
    if st["inst"] is not None:
        return st["inst"]
    why = _unavailable()
    if why:
        pytest.skip(why)
    d = os.environ.get("MAILCAR_PF_DIR")
    if d and pf.is_running(d):
        st["inst"], st["owned"] = PostfixInstance(d), False
        return st["inst"]
    if not d:
        # under /tmp, not pytest's 0700 tmp_path: the unprivileged daemons
        # must be able to reach it
        d = st["tmp"] = tempfile.mkdtemp(prefix="mailcar-pf-")
    try:
        pf.start(d)
    except pf.PfError as e:
        pytest.fail("could not start the private Postfix in %s:\n%s" % (d, e), pytrace=False)
    st["inst"], st["owned"] = PostfixInstance(d), True
    atexit.register(_stop)
    return st["inst"]


@pytest.fixture(scope="session")
def postfix():
    inst = get_instance()
    _state["users"] += 1
    yield inst
    _state["users"] -= 1
    if _state["users"] == 0:
        _stop()
