"""The private Postfix + Dovecot behaves as the mailcar tests expect.

These talk to it with Python's smtplib/ssl only (no mailcar), so a failure
here is the infrastructure's, not mailcar's.  Run with Debian's interpreter:
    /usr/bin/python3 -m pytest tests/integration/test_postfix_infra.py
"""

import base64
import hashlib
import hmac
import os
import smtplib
import ssl
import tempfile

import pytest

import pf
from postfix_server import postfix  # noqa: F401  (fixture)


def ctx(inst, verify=True):
    c = ssl.create_default_context(cafile=inst.ca)
    if not verify:
        c.check_hostname = False
        c.verify_mode = ssl.CERT_NONE
    return c


def starttls_session(inst, port=None):
    s = smtplib.SMTP(inst.host, port or inst.submission, timeout=10)
    s.ehlo("client.example.test")
    s.starttls(context=ctx(inst))
    s.ehlo("client.example.test")
    return s


def lf(b):
    return b.replace(b"\r\n", b"\n")


def only_received_header(prefix):
    """PREFIX is one Received: header, folded over several lines."""
    lines = prefix.split(b"\n")
    assert lines[-1] == b""
    assert lines[0].startswith(b"Received: ")
    return all(x[:1] in (b" ", b"\t") for x in lines[1:-1])


MESSAGE = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: Bob <bob@example.test>\r\n"
    b"Subject: infra check \xc3\xa9t\xc3\xa9\r\n"
    b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"
    b"Message-ID: <infra-1@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"line one\r\n"
    b".leading dot survives\r\n"
    b"trailing spaces   \r\n"
    b"\ttab and caf\xc3\xa9\r\n"
    + b"x" * 998 + b"\r\n"
    b"\r\n"
    b"last line\r\n"
)


def test_starttls_auth_plain_delivers_byte_exact(postfix):
    postfix.mark()
    s = starttls_session(postfix)
    mechs = s.esmtp_features["auth"].upper().split()
    for m in ("PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256"):
        assert m in mechs
    s.user, s.password = postfix.user, postfix.password
    code, _ = s.auth("PLAIN", s.auth_plain)
    assert code == 235
    refused = s.sendmail("alice@example.test", ["bob@example.test", "carol@other.test"], MESSAGE)
    assert refused == {}
    s.quit()
    [m] = postfix.wait_messages(1)
    assert m.sender == "alice@example.test"
    assert m.recipients == ["bob@example.test", "carol@other.test"]
    # Postfix stores lines with LF; it prepends exactly one Received header
    assert m.data.endswith(lf(MESSAGE))
    prefix = m.data[: len(m.data) - len(lf(MESSAGE))]
    assert only_received_header(prefix), prefix
    assert b"with ESMTPSA" in prefix


def test_implicit_tls_auth_login_and_cram_md5(postfix):
    for mech in ("LOGIN", "CRAM-MD5"):
        with smtplib.SMTP_SSL(postfix.host, postfix.submissions, timeout=10,
                              context=ctx(postfix)) as s:
            s.ehlo("client.example.test")
            assert "starttls" not in s.esmtp_features
            s.user, s.password = postfix.user, postfix.password
            auth = {"LOGIN": s.auth_login, "CRAM-MD5": s.auth_cram_md5}[mech]
            code, _ = s.auth(mech, auth, initial_response_ok=False)
            assert code == 235
            assert s.sock.version() in ("TLSv1.2", "TLSv1.3")


def scram(s, mech, user, password):
    """Minimal SCRAM client (RFC 5802) over smtplib; returns the final reply."""
    h = {"SCRAM-SHA-1": hashlib.sha1, "SCRAM-SHA-256": hashlib.sha256}[mech]
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    cnonce = b64(os.urandom(18))
    first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), cnonce)
    code, resp = s.docmd("AUTH", "%s %s" % (mech, b64(("n,," + first_bare).encode())))
    assert code == 334, resp
    server_first = base64.b64decode(resp).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(cnonce)
    salted = hashlib.pbkdf2_hmac(h().name, password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    final_wo_proof = "c=biws,r=" + attrs["r"]
    auth_msg = ",".join((first_bare, server_first, final_wo_proof)).encode()
    client_key = hmac.new(salted, b"Client Key", h).digest()
    sig = hmac.new(h(client_key).digest(), auth_msg, h).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    code, resp = s.docmd(b64((final_wo_proof + ",p=" + b64(proof)).encode()))
    if code == 334:  # server-final as a challenge, acknowledged with an empty line
        server_final = base64.b64decode(resp).decode()
        server_key = hmac.new(salted, b"Server Key", h).digest()
        assert server_final == "v=" + b64(hmac.new(server_key, auth_msg, h).digest())
        code, resp = s.docmd("")
    return code, resp


@pytest.mark.parametrize("mech", ["SCRAM-SHA-1", "SCRAM-SHA-256"])
def test_scram(postfix, mech):
    s = starttls_session(postfix)
    code, resp = scram(s, mech, postfix.user, postfix.password)
    assert code == 235, resp
    s.quit()
    s = starttls_session(postfix)
    code, _ = scram(s, mech, postfix.user, "not-the-password")
    assert code == 535
    s.close()


def test_wrong_password_535(postfix):
    s = starttls_session(postfix)
    s.user, s.password = postfix.user, "wrong-password"
    with pytest.raises(smtplib.SMTPAuthenticationError) as e:
        s.auth("PLAIN", s.auth_plain)
    assert e.value.smtp_code == 535
    assert e.value.smtp_error.startswith(b"5.7.8")
    s.close()
    assert b"wrong-password" not in open(postfix.log_path, "rb").read()


def test_second_user(postfix):
    s = starttls_session(postfix)
    s.user, s.password = "bob@example.test", postfix.users["bob@example.test"]
    assert s.auth("PLAIN", s.auth_plain)[0] == 235
    s.quit()


def test_auth_refused_before_starttls(postfix):
    s = smtplib.SMTP(postfix.host, postfix.submission, timeout=10)
    s.ehlo("client.example.test")
    assert "starttls" in s.esmtp_features
    assert "auth" not in s.esmtp_features
    creds = base64.b64encode(b"\0alice@example.test\0wonderland-42").decode()
    code, resp = s.docmd("AUTH", "PLAIN " + creds)
    assert code == 530, resp
    assert s.docmd("MAIL", "FROM:<alice@example.test>")[0] == 530
    s.close()


def test_submission_requires_auth(postfix):
    s = starttls_session(postfix)
    assert s.mail("alice@example.test")[0] == 250
    code, resp = s.rcpt("bob@example.test")
    assert code == 554 and b"5.7.1" in resp
    s.close()


def test_rejected_and_tempfailed_recipients(postfix):
    postfix.mark()
    s = smtplib.SMTP(postfix.host, postfix.plain, timeout=10)
    s.ehlo("client.example.test")
    assert s.mail("alice@example.test")[0] == 250
    code, resp = s.rcpt(postfix.reject_rcpt)
    assert code == 550 and resp.startswith(b"5.1.1")
    code, resp = s.rcpt(postfix.tempfail_rcpt)
    assert code == 450 and resp.startswith(b"4.2.0")
    assert s.rcpt("bob@example.test")[0] == 250
    assert s.data(MESSAGE)[0] == 250
    s.quit()
    [m] = postfix.wait_messages(1)
    assert m.recipients == ["bob@example.test"]


def test_plain_port_has_no_tls_no_auth_and_delivers(postfix):
    postfix.mark()
    s = smtplib.SMTP(postfix.host, postfix.plain, timeout=10)
    s.ehlo("client.example.test")
    assert "starttls" not in s.esmtp_features
    assert "auth" not in s.esmtp_features
    for ext in ("pipelining", "8bitmime", "smtputf8", "size", "enhancedstatuscodes"):
        assert ext in s.esmtp_features
    assert int(s.esmtp_features["size"]) == postfix.size_limit
    s.sendmail("", ["bob@example.test"], MESSAGE)  # null sender
    s.quit()
    [m] = postfix.wait_messages(1)
    assert m.sender == ""
    assert m.data.endswith(lf(MESSAGE))


def test_smtputf8_recipient(postfix):
    postfix.mark()
    s = smtplib.SMTP(postfix.host, postfix.plain, timeout=10)
    s.ehlo("client.example.test")
    s.sendmail("alice@example.test", ["jörg@exämple.test"], MESSAGE,
               mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    s.quit()
    [m] = postfix.wait_messages(1)
    assert m.recipients == ["jörg@exämple.test"]


def test_size_limit_552(postfix):
    postfix.mark()
    s = smtplib.SMTP(postfix.host, postfix.plain, timeout=30)
    s.ehlo("client.example.test")
    # declared too big: refused at MAIL
    code, resp = s.mail("alice@example.test", ["SIZE=%d" % (postfix.size_limit + 1)])
    assert code == 552 and resp.startswith(b"5.3.4")
    s.rset()
    # undeclared and too big: refused at the end of DATA
    assert s.mail("alice@example.test")[0] == 250
    assert s.rcpt("bob@example.test")[0] == 250
    # Postfix counts lines without the CR: go well over
    big = MESSAGE + (b"y" * 76 + b"\r\n") * (postfix.size_limit // 77 * 11 // 10)
    code, resp = s.data(big)
    assert code == 552 and resp.startswith(b"5.3.4"), resp
    s.close()
    postfix.assert_no_messages(wait=0.5)


@pytest.mark.parametrize("name,reason", [
    ("expired", "expired"),
    ("wrongname", "mismatch"),
    ("selfsigned", "self-signed"),
])
def test_bad_certificate_ports(postfix, name, reason):
    s = smtplib.SMTP(postfix.host, getattr(postfix, name), timeout=10)
    s.ehlo("client.example.test")
    with pytest.raises(ssl.SSLCertVerificationError) as e:
        s.starttls(context=ctx(postfix))
    assert reason in str(e.value)
    s.close()
    # without verification the port works like submission
    s = smtplib.SMTP(postfix.host, getattr(postfix, name), timeout=10)
    s.ehlo("client.example.test")
    s.starttls(context=ctx(postfix, verify=False))
    s.ehlo("client.example.test")
    s.user, s.password = postfix.user, postfix.password
    assert s.auth("PLAIN", s.auth_plain)[0] == 235
    s.quit()


def test_good_certificate_by_name_and_ca_dir(postfix):
    c = ssl.create_default_context(capath=postfix.ca_dir)
    with smtplib.SMTP("localhost", postfix.submission, timeout=10) as s:
        s.ehlo("client.example.test")
        s.starttls(context=c)
        cert = s.sock.getpeercert()
        assert ("DNS", "localhost") in cert["subjectAltName"]
        assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]


def test_client_certificate_is_signed_by_the_ca(postfix):
    c = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=postfix.ca)
    c.load_cert_chain(postfix.certs["client.crt"], postfix.certs["client.key"])
    with smtplib.SMTP(postfix.host, postfix.submission, timeout=10) as s:
        s.ehlo("client.example.test")
        s.starttls(context=c)


def test_ports_files(postfix):
    env = postfix.env()
    assert int(env["MAILCAR_PF_SUBMISSION"]) == postfix.submission
    assert int(env["MAILCAR_PF_SUBMISSIONS"]) == postfix.submissions
    assert int(env["MAILCAR_PF_PLAIN"]) == postfix.plain
    assert env["MAILCAR_PF_CA"] == postfix.ca
    assert env["MAILCAR_PF_PASSWORD"] == "wonderland-42"
    assert len(set(postfix.ports.values())) == len(postfix.ports)


def test_only_loopback(postfix):
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    ours = set(postfix.ports.values())
    for r in rows:
        addr, port = r[1].split(":")
        if r[3] == "0A" and int(port, 16) in ours:
            assert addr == "0100007F"


def test_postfix_check_is_clean(postfix):
    assert pf.postfix_check(postfix.dir) == ""


def test_start_stop_leaves_nothing_behind():
    """A second instance next to the session's one starts, and stops clean."""
    if pf.missing_prerequisites() or os.geteuid() != 0:
        pytest.skip("private Postfix not available")
    d = tempfile.mkdtemp(prefix="mailcar-pf2-")
    try:
        info = pf.start(d)
        assert pf.is_running(d)
        with smtplib.SMTP(info["host"], info["ports"]["plain"], timeout=10) as s:
            assert s.noop()[0] == 250
        sids = pf.read_pid(pf.paths(d)["pf_pid"]), pf.read_pid(pf.paths(d)["dc_pid"])
        forced = pf.stop(d)
        assert forced == []
        assert pf.session_members(set(sids)) == []
        assert not pf.is_running(d)
    finally:
        pf.stop(d, quiet=True)
        import shutil
        shutil.rmtree(d, ignore_errors=True)
