#!/usr/bin/python3
"""A scriptable, fault-injecting SMTP server for mailcar's protocol tests.

Standard library only.  It listens on 127.0.0.1 (a free port unless one is
given), serves each accepted connection in its own thread, and records a
byte-exact transcript of both directions, every line the client sent, every
DATA payload, script failures (`errors`) and protocol violations by the client
(`violations`).  Tests run it in-process:

    with FaultServer(script=TEXT) as srv:       # or responder=Responder(...)
        ... run the client against srv.port ...
        srv.wait_idle()
    srv.lines, srv.data, srv.errors, srv.violations, srv.report()

or from the shell, to poke a client by hand:

    /usr/bin/python3 faultserver.py --script FILE [--port N] [--connections N]

Script syntax (one step per line; blank lines and lines starting with # are
ignored; TEXT goes through the escapes described below):

    S: TEXT           send TEXT + CRLF (TEXT may hold \\r\\n: several lines at once)
    SRAW: TEXT        send TEXT exactly, nothing appended (partial replies, bare LF)
    DRIP SECS: TEXT   send TEXT + CRLF one byte at a time, SECS apart
    DRIPRAW SECS: TEXT  the same without the CRLF
    C: GLOB           read one client line; it must match GLOB (fnmatch, case
                      sensitive, against the line without its CRLF)
    C: re:REGEX       the same with a regular expression (fullmatch)
    DATA              read a DATA payload up to and including CRLF.CRLF
    BDAT              read a "BDAT n [LAST]" line and its n octets
    TLS               do the server side of a TLS handshake now (after a
                      "S: 220 ..." to STARTTLS, or as the first step: implicit TLS)
    CLOSE             close the connection now (at any point, mid-reply too)
    RESET             close with a TCP RST (SO_LINGER 0)
    STALL SECS        send and read nothing for SECS seconds
    STALL forever     ... until the test ends
    EOF               the client must close the connection now (bytes = error)
    TIMEOUT SECS      how long later steps wait for the client (default 10)
    RESPONDER         play the default responder for the rest of the connection
    NEXT              the following steps are for the next connection

A `?` after a reading keyword (C?:, DATA?, BDAT?, TLS?) makes it optional:
if the client has gone (closed, or the handshake failed) at that point, the
script ends quietly instead of recording an error.  When a script ends
normally the server reads until the client closes (up to `linger` seconds);
anything received then is an error.  A line not matching its C: step is an
error: the server answers "500 5.5.2 faultserver: unexpected command" and
closes.

Escapes (in S:, SRAW:, DRIP, responder replies, and the case files' message
and expectation sections): \\r \\n \\t \\0 \\\\ \\xHH, \\[ (a literal '['), and
%repeat[N x TEXT]% (TEXT repeated N times, before the other escapes).  Any
other backslash stays as it is.

The default responder plays a normal ESMTP server.  Settings (Responder(...)
in Python, or "key: value" lines in text):

    caps: PIPELINING, 8BITMIME, SIZE 1000    EHLO keywords, comma separated
                                             (empty: no extensions)
    hostname: NAME                           first word of greeting/EHLO
    greeting: ACTION                         instead of "220 NAME ESMTP faultserver"
    credentials: USER PASSWORD               AUTH PLAIN/LOGIN accepts only these
    rcpt ADDRESS: ACTION                     reply to RCPT TO:<ADDRESS>
    CMD: ACTION                              reply to CMD; CMD is EHLO HELO MAIL
                                             RCPT DATA DATA-END (the final '.')
                                             BDAT RSET NOOP QUIT STARTTLS AUTH VRFY

An ACTION is a reply ("452 4.3.1 full"; CRLF appended unless present;
multi-line with \\r\\n) or CLOSE, RESET, STALL SECS, STALL forever,
RAW TEXT (sent exactly), DRIP SECS TEXT, or several joined with " ; "
("RAW 250-part ; CLOSE").  In Python an action may also be a callable
(connection, line) -> ACTION or None.  The responder closes the connection
after any 421 it sends; after a 554 greeting it answers 503 to everything
but QUIT; it answers DATA with 554 when no recipient was accepted; with
"SIZE n" advertised it refuses a larger SIZE= with 552.

Violations detected in both modes: the client speaking before the greeting,
sending a command before the reply it must wait for (after EHLO, HELO,
STARTTLS, AUTH, DATA, QUIT, NOOP, VRFY, always; after anything when the
server did not advertise PIPELINING), lines not ending in CRLF, bare CR/LF
or NUL, over-long lines, MAIL before EHLO/HELO (and after STARTTLS before
the new EHLO), MAIL/RCPT parameters of extensions not advertised, 8-bit data
without BODY=8BITMIME, STARTTLS or AUTH not advertised, unknown commands
(responder).  Pipelining is detected by waiting `settle` seconds (default
0.02) before each reply and looking for more client bytes.
"""

import argparse
import fnmatch
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
from base64 import b64decode

__all__ = ['FaultServer', 'Responder', 'parse_script', 'unescape', 'unstuff',
           'make_test_certs', 'TestCerts', 'show_bytes', 'free_port']

DEFAULT_READ_TIMEOUT = 10.0
MAX_LINE = 1 << 20          # longest client line the server buffers
MAX_CMD_LINE = 1000         # longer command lines are violations (AUTH excepted)
MAX_DATA_LINE = 1000        # RFC 5321 text line limit, CRLF included

# Commands after which the client must wait for the reply even with PIPELINING
# (RFC 2920 section 3.1; STARTTLS and AUTH by RFC 3207 and RFC 4954).
MUST_WAIT = {'greeting', 'EHLO', 'HELO', 'LHLO', 'STARTTLS', 'AUTH', 'DATA',
             'QUIT', 'NOOP', 'VRFY', 'EXPN', 'TURN'}

# MAIL/RCPT parameters and the EHLO keyword that allows each.
PARAM_EXT = {'SIZE': 'SIZE', 'BODY': '8BITMIME', 'SMTPUTF8': 'SMTPUTF8',
             'RET': 'DSN', 'ENVID': 'DSN', 'NOTIFY': 'DSN', 'ORCPT': 'DSN',
             'AUTH': 'AUTH', 'REQUIRETLS': 'REQUIRETLS', 'MT-PRIORITY': 'MT-PRIORITY'}


# --------------------------------------------------------------------------
# Escapes and small helpers

_REPEAT = re.compile(r'%repeat\[(\d+) x (.*?)\]%')
_ESC = re.compile(r'\\(x[0-9a-fA-F]{2}|[rnt0\\\[])')
_ESC_MAP = {'r': b'\r', 'n': b'\n', 't': b'\t', '0': b'\0', '\\': b'\\', '[': b'['}


def unescape(text):
    """Case-file text -> bytes: %repeat[N x T]% first, then backslash escapes."""
    if isinstance(text, bytes):
        return text
    text = _REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), text)
    out = bytearray()
    pos = 0
    for m in _ESC.finditer(text):
        out += text[pos:m.start()].encode('utf-8')
        e = m.group(1)
        out += bytes([int(e[1:], 16)]) if e[0] == 'x' else _ESC_MAP[e]
        pos = m.end()
    out += text[pos:].encode('utf-8')
    return bytes(out)


def show_bytes(data, limit=400):
    """Printable rendering of bytes for reports: \\r \\n \\xHH made visible."""
    s = []
    for b in data[:limit]:
        if b == 13:
            s.append('\\r')
        elif b == 10:
            s.append('\\n')
        elif b == 9:
            s.append('\\t')
        elif b == 92:
            s.append('\\\\')
        elif 32 <= b < 127:
            s.append(chr(b))
        else:
            s.append('\\x%02x' % b)
    if len(data) > limit:
        s.append('...[%d bytes]' % len(data))
    return ''.join(s)


def unstuff(payload):
    """A raw DATA payload (ending in CRLF.CRLF) -> the message it carries."""
    if payload.endswith(b'\r\n.\r\n'):
        payload = payload[:-3]
    elif payload == b'.\r\n':
        payload = b''
    lines = payload.split(b'\r\n')
    return b'\r\n'.join(l[1:] if l.startswith(b'.') else l for l in lines)


def split_lines(data):
    """Split bytes after each LF, keeping the terminators."""
    return data.splitlines(keepends=True) if data else []


def free_port(host='127.0.0.1'):
    """A port nothing listens on (bound then closed: connections are refused)."""
    s = socket.socket()
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _reply_code(data):
    """The code of the last line of a reply, or None."""
    last = data.rstrip(b'\r\n').split(b'\n')[-1].lstrip(b'\r')
    m = re.match(rb'(\d{3})', last)
    return m.group(1).decode() if m else None


# --------------------------------------------------------------------------
# Script steps

class Step:
    optional = False
    lineno = 0
    src = ''

    def __repr__(self):
        return self.src or self.__class__.__name__


class Send(Step):
    def __init__(self, data, drip=None):
        self.data = unescape(data)
        self.drip = drip


class Expect(Step):
    def __init__(self, pattern, optional=False):
        self.pattern = pattern
        self.optional = optional
        if pattern.startswith('re:'):
            self.rx = re.compile(pattern[3:], re.S)
        else:
            self.rx = None

    def matches(self, text):
        if self.rx is not None:
            return self.rx.fullmatch(text) is not None
        return fnmatch.fnmatchcase(text, self.pattern)


class Data(Step):
    def __init__(self, optional=False):
        self.optional = optional


class Bdat(Step):
    def __init__(self, optional=False):
        self.optional = optional


class Tls(Step):
    def __init__(self, optional=False):
        self.optional = optional


class Close(Step):
    def __init__(self, reset=False):
        self.reset = reset


class Stall(Step):
    def __init__(self, seconds=None):
        self.seconds = seconds      # None: until the server stops


class Eof(Step):
    pass


class Timeout(Step):
    def __init__(self, seconds):
        self.seconds = seconds


class Respond(Step):
    pass


_STEP_RX = re.compile(r'^(S|SRAW|C|C\?)\s*:(?: ?)(.*)$')
_DRIP_RX = re.compile(r'^(DRIP|DRIPRAW)\s+([0-9.]+)\s*:(?: ?)(.*)$')


def _seconds(word, lineno):
    if word.lower() == 'forever':
        return None
    try:
        v = float(word)
    except ValueError:
        raise ValueError('script line %d: bad number of seconds %r' % (lineno, word))
    if v < 0:
        raise ValueError('script line %d: negative seconds' % lineno)
    return v


def parse_script(text, first_line=1):
    """Script text -> a list of step lists, one per connection."""
    conns = [[]]
    for n, raw in enumerate(text.split('\n'), first_line):
        line = raw.rstrip('\r')
        stripped = line.strip()
        if not stripped or stripped.startswith('#'):
            continue
        m = _STEP_RX.match(line.lstrip())
        d = _DRIP_RX.match(stripped)
        word = stripped.split()
        kw = word[0].upper()
        if m:
            tag, val = m.group(1), m.group(2)
            if tag == 'S':
                st = Send(val + '\\r\\n')
            elif tag == 'SRAW':
                st = Send(val)
            else:
                st = Expect(val, optional=tag.endswith('?'))
        elif d:
            crlf = '\\r\\n' if d.group(1) == 'DRIP' else ''
            st = Send(d.group(3) + crlf, drip=_seconds(d.group(2), n) or 0.0)
        elif kw in ('DATA', 'DATA?', 'BDAT', 'BDAT?', 'TLS', 'TLS?') and len(word) == 1:
            cls = {'DATA': Data, 'BDAT': Bdat, 'TLS': Tls}[kw.rstrip('?')]
            st = cls(optional=kw.endswith('?'))
        elif kw in ('CLOSE', 'RESET') and len(word) == 1:
            st = Close(reset=(kw == 'RESET'))
        elif kw == 'STALL' and len(word) == 2:
            st = Stall(_seconds(word[1], n))
        elif kw == 'EOF' and len(word) == 1:
            st = Eof()
        elif kw == 'TIMEOUT' and len(word) == 2:
            st = Timeout(_seconds(word[1], n) or DEFAULT_READ_TIMEOUT)
        elif kw == 'RESPONDER' and len(word) == 1:
            st = Respond()
        elif kw == 'NEXT' and len(word) == 1:
            conns.append([])
            continue
        else:
            raise ValueError('script line %d: cannot parse %r' % (n, line))
        st.lineno = n
        st.src = stripped
        conns[-1].append(st)
    return conns


# --------------------------------------------------------------------------
# The default responder's settings

_CMD_KEYS = {'EHLO', 'HELO', 'MAIL', 'RCPT', 'DATA', 'DATA-END', 'BDAT', 'RSET',
             'NOOP', 'QUIT', 'STARTTLS', 'AUTH', 'VRFY', 'GREETING'}


class Responder:
    """Settings for the default ESMTP responder (see the module docstring)."""

    def __init__(self, caps=None, greeting=None, hostname='faultserver.test',
                 overrides=None, rcpt=None, credentials=None):
        self.caps = ['PIPELINING', '8BITMIME', 'ENHANCEDSTATUSCODES'] if caps is None else list(caps)
        self.hostname = hostname
        self.greeting = greeting
        self.overrides = {}
        for k, v in (overrides or {}).items():
            k = k.upper()
            k = 'DATA-END' if k in ('END', '.') else k
            if k not in _CMD_KEYS:
                raise ValueError('unknown responder command %r' % k)
            self.overrides[k] = v
        if 'GREETING' in self.overrides:
            self.greeting = self.overrides.pop('GREETING')
        self.rcpt = {a.lower().strip('<>'): v for a, v in (rcpt or {}).items()}
        self.credentials = credentials

    def cap(self, keyword):
        """The parameters of an advertised keyword ('' when bare), or None."""
        for c in self.caps:
            w = c.split(None, 1)
            if w and w[0].upper() == keyword.upper():
                return w[1] if len(w) > 1 else ''
        return None

    @property
    def size_limit(self):
        v = self.cap('SIZE')
        try:
            return int(v) if v else 0
        except ValueError:
            return 0

    @classmethod
    def parse(cls, text, first_line=1):
        kw = {'overrides': {}, 'rcpt': {}}
        for n, raw in enumerate(text.split('\n'), first_line):
            line = raw.strip()
            if not line or line.startswith('#'):
                continue
            m = re.match(r'^(rcpt\s+(\S+?)|[A-Za-z][A-Za-z.-]*)\s*:\s?(.*)$', line, re.I)
            if not m:
                raise ValueError('responder line %d: expected "key: value", got %r' % (n, line))
            key, addr, val = m.group(1), m.group(2), m.group(3)
            lk = key.lower()
            if addr:
                kw['rcpt'][addr] = val
            elif lk == 'caps':
                kw['caps'] = [c.strip() for c in val.split(',') if c.strip()]
            elif lk == 'hostname':
                kw['hostname'] = val.strip()
            elif lk == 'greeting':
                kw['greeting'] = val
            elif lk == 'credentials':
                u, _, p = val.strip().partition(' ')
                kw['credentials'] = (u, p)
            elif key.upper() in _CMD_KEYS or key.upper() in ('END', '.'):
                kw['overrides'][key] = val
            else:
                raise ValueError('responder line %d: unknown key %r' % (n, key))
        return cls(**kw)


# --------------------------------------------------------------------------
# One connection

class _Stopped(Exception):
    """The server is stopping."""


class _Abort(Exception):
    """The connection is over; whatever went wrong is already recorded."""


class _Timeout(Exception):
    pass


class Connection:
    """The state and the records of one accepted connection."""

    def __init__(self, server, sock, index, steps, responder):
        self.server = server
        self.sock = sock
        self.index = index               # 0-based
        self.steps = steps
        self.responder = responder
        self.mode = 'script' if steps is not None else 'responder'
        self.buf = bytearray()
        self.transcript = []             # (dir, bytes): 'C' client, 'S' server, '*' event
        self.lines = []                  # client lines (bytes, terminators kept), not DATA
        self.data = []                   # raw DATA payloads, each ending in CRLF.CRLF
        self.bdat = []                   # (command line, chunk bytes)
        self.messages = []               # responder: dicts mail_from, rcpts, data, reply
        self.errors = []
        self.violations = []
        self.tls = False
        self.tls_version = None
        self.eof = False
        self.closed_by = None
        self.read_timeout = server.read_timeout
        self.stalling = False
        self.done = False
        # protocol state seen by both modes
        self.pending = 'greeting'        # command whose reply is not sent yet
        self.cur_cmd = None
        self.greeted = False
        self.caps = {}
        self.last_code = None
        self.mail_params = {}
        self.any_client_line = False
        self._sbuf = b''
        self._ehlo_lines = 0
        self._step = None

    # ---- records

    def error(self, msg):
        self.errors.append(msg)
        self.transcript.append(('*', ('error: ' + msg).encode()))

    def violation(self, msg):
        self.violations.append(msg)
        self.transcript.append(('*', ('violation: ' + msg).encode()))

    def event(self, msg):
        self.transcript.append(('*', msg.encode()))

    @property
    def client_bytes(self):
        return b''.join(d for k, d in self.transcript if k == 'C')

    @property
    def server_bytes(self):
        return b''.join(d for k, d in self.transcript if k == 'S')

    @property
    def pipelining(self):
        return 'PIPELINING' in self.caps

    # ---- main

    def run(self):
        try:
            if self.steps is not None:
                self._run_script(self.steps)
            else:
                self._run_responder(self.responder)
        except (_Stopped, _Abort):
            pass
        except Exception:
            self.error('faultserver internal error: ' + traceback.format_exc())
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
            self.done = True

    # ---- low-level I/O

    def _recv(self, deadline):
        """Read what is available into buf; b'' at EOF."""
        stop = self.server._stop
        while True:
            if stop.is_set():
                raise _Stopped()
            if self.eof:
                return b''
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise _Timeout()
            ready = self.tls and self.sock.pending()
            if not ready:
                wait = 0.1 if deadline is None else min(0.1, deadline - now)
                try:
                    r, _, _ = select.select([self.sock], [], [], wait)
                except (OSError, ValueError):
                    r = None
                    self.eof = True
                    return b''
                ready = bool(r)
            if not ready:
                continue
            try:
                self.sock.settimeout(2.0)
                chunk = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError):
                continue
            except ssl.SSLError as e:
                self.event('TLS error while reading: %s' % e)
                chunk = b''
            except OSError as e:
                self.event('read failed: %s' % e)
                chunk = b''
            if chunk:
                self.transcript.append(('C', chunk))
                self.buf += chunk
            else:
                self.eof = True
                if self.closed_by is None:
                    self.closed_by = 'client'
                self.event('client closed the connection')
            return chunk

    def _deadline(self, timeout=None):
        t = self.read_timeout if timeout is None else timeout
        return None if t is None else time.monotonic() + t

    def _read_line(self, what, optional=False):
        """One client line (terminator kept), or None if the client closed."""
        deadline = self._deadline()
        while True:
            i = self.buf.find(b'\n')
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                self.lines.append(line)
                self._note_client_line(line)
                return line
            if len(self.buf) > MAX_LINE:
                self.error('client line longer than %d bytes without LF' % MAX_LINE)
                raise _Abort()
            try:
                chunk = self._recv(deadline)
            except _Timeout:
                self.error('timed out after %ss waiting for the client (%s)' % (self.read_timeout, what))
                raise _Abort()
            if not chunk:
                if self.buf:
                    rest = bytes(self.buf)
                    self.lines.append(rest)
                    self.buf.clear()
                    self.violation('client closed the connection mid-line: %s' % show_bytes(rest))
                if not optional:
                    self.error('client closed the connection; script expected %s' % what)
                return None

    def _peek_more(self, settle):
        """Wait `settle` seconds; true if the client has sent more bytes."""
        if self.buf:
            return True
        if self.eof:
            return False
        try:
            if not (self.tls and self.sock.pending()):
                r, _, _ = select.select([self.sock], [], [], settle)
                if not r:
                    return False
            self._recv(time.monotonic() + 1.0)
        except (_Timeout, OSError, ValueError):
            pass
        return bool(self.buf)

    def _send(self, data, drip=None):
        if self.pending is not None:
            self._before_reply()
        self._note_server_bytes(data)
        self.transcript.append(('S', data))
        try:
            self.sock.settimeout(self.read_timeout or 30.0)
            if drip is None:
                self.sock.sendall(data)
            else:
                for i in range(len(data)):
                    self.sock.sendall(data[i:i + 1])
                    if self.server._stop.wait(drip):
                        raise _Stopped()
        except (OSError, ssl.SSLError) as e:
            self.error('sending %s failed: %s' % (show_bytes(data, 60), e))
            raise _Abort()

    def _close(self, reset=False):
        if reset:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     b'\x01\x00\x00\x00\x00\x00\x00\x00')
            except OSError:
                pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed_by = self.closed_by or 'server'
        self.event('server %s the connection' % ('reset' if reset else 'closed'))
        raise _Abort()

    def _stall(self, seconds):
        self.stalling = True
        self.event('stall %s' % ('forever' if seconds is None else '%gs' % seconds))
        if self.server._stop.wait(seconds):
            raise _Stopped()
        self.stalling = False

    # ---- protocol observer (both modes)

    def _before_reply(self):
        pend, self.pending = self.pending, None
        if not self._peek_more(self.server.settle):
            return
        nxt = show_bytes(bytes(self.buf).split(b'\n', 1)[0], 80)
        if pend == 'greeting':
            self.violation('client sent "%s" before the greeting' % nxt)
        elif pend in MUST_WAIT:
            self.violation('client sent "%s" before the reply to %s' % (nxt, pend))
        elif not self.pipelining:
            self.violation('client sent "%s" before the reply to %s, but the server '
                           'did not advertise PIPELINING' % (nxt, pend))

    def _note_client_line(self, line):
        self.any_client_line = True
        if line.endswith(b'\r\n'):
            body = line[:-2]
        else:
            body = line[:-1] if line.endswith(b'\n') else line
            self.violation('line not terminated by CRLF: %s' % show_bytes(line, 80))
        if b'\r' in body:
            self.violation('bare CR in a command line: %s' % show_bytes(line, 80))
        if b'\0' in body:
            self.violation('NUL in a command line: %s' % show_bytes(line, 80))
        if self.last_code == '334':          # SASL continuation
            self.pending = 'AUTH'
            self.last_code = None
            return
        text = body.decode('utf-8', 'replace')
        verb = text.split(' ', 1)[0].upper()
        if len(line) > MAX_CMD_LINE and verb != 'AUTH':
            self.violation('command line of %d octets: %s' % (len(line), show_bytes(line, 60)))
        self.pending = verb or '(empty line)'
        self.cur_cmd = verb
        self.last_code = None
        if verb in ('EHLO', 'HELO', 'LHLO'):
            self.caps = {}
            self._ehlo_lines = 0
        elif verb == 'MAIL':
            if not self.greeted:
                self.violation('MAIL before a successful EHLO/HELO%s' %
                               (' after STARTTLS' if self.tls else ''))
            self.mail_params = self._check_params(text, 'MAIL')
        elif verb == 'RCPT':
            self._check_params(text, 'RCPT')
        elif verb in ('STARTTLS', 'AUTH') and self.greeted and verb not in self.caps:
            self.violation('client sent %s, which the server did not advertise' % verb)

    def _check_params(self, text, verb):
        m = re.match(r'(?i)^(MAIL FROM|RCPT TO):\s*(<[^>]*>|\S*)(.*)$', text)
        if not m:
            self.violation('malformed %s command: %s' % (verb, text[:80]))
            return {}
        params = {}
        for p in m.group(3).split():
            k, _, v = p.partition('=')
            params[k.upper()] = v
            ext = PARAM_EXT.get(k.upper())
            if ext is None:
                self.violation('unknown %s parameter %s' % (verb, p))
            elif self.greeted and ext not in self.caps:
                self.violation('%s parameter %s but the server did not advertise %s' % (verb, p, ext))
        return params

    def _note_server_bytes(self, data):
        self._sbuf += data
        while b'\n' in self._sbuf:
            line, self._sbuf = self._sbuf.split(b'\n', 1)
            m = re.match(rb'(\d{3})([- ]?)(.*)', line.rstrip(b'\r'))
            if not m:
                continue
            code, sep, rest = m.group(1).decode(), m.group(2), m.group(3)
            if self.cur_cmd in ('EHLO', 'LHLO') and code == '250':
                self._ehlo_lines += 1
                if self._ehlo_lines > 1:
                    w = rest.decode('latin-1').split(None, 1)
                    if w:
                        self.caps[w[0].upper()] = w[1] if len(w) > 1 else ''
            if sep != b'-':
                self.last_code = code
                if self.cur_cmd in ('EHLO', 'HELO', 'LHLO') and code == '250':
                    self.greeted = True

    # ---- script mode

    def _run_script(self, steps):
        for st in steps:
            self._step = st
            what = '"%s" (line %d)' % (st.src, st.lineno)
            if isinstance(st, Send):
                self._send(st.data, drip=st.drip)
            elif isinstance(st, Expect):
                line = self._read_line(what, st.optional)
                if line is None:
                    return
                text = line.rstrip(b'\n').rstrip(b'\r').decode('utf-8', 'surrogateescape')
                if not st.matches(text):
                    self.error('expected %s, client sent "%s"' % (what, show_bytes(line, 200)))
                    self.pending = None
                    self._send(b'500 5.5.2 faultserver: unexpected command\r\n')
                    self._close()
            elif isinstance(st, Data):
                if self._read_data(what, st.optional) is None:
                    return
            elif isinstance(st, Bdat):
                if self._read_bdat(what, st.optional) is None:
                    return
            elif isinstance(st, Tls):
                if not self._start_tls(st.optional):
                    return
            elif isinstance(st, Close):
                self._close(st.reset)
            elif isinstance(st, Stall):
                self._stall(st.seconds)
            elif isinstance(st, Eof):
                self._expect_eof()
                return
            elif isinstance(st, Timeout):
                self.read_timeout = st.seconds
            elif isinstance(st, Respond):
                self._run_responder(self.server.responder_for(self.index),
                                    greeted=bool(self.server_bytes))
                return
        self._step = None
        self._linger()

    def _linger(self):
        deadline = time.monotonic() + self.server.linger
        try:
            while not self.eof:
                self._recv(deadline)
        except _Timeout:
            pass
        if self.buf:
            rest = bytes(self.buf)
            self.buf.clear()
            self.lines.extend(split_lines(rest))
            self.error('client sent "%s" after the script ended' % show_bytes(rest, 200))

    def _expect_eof(self):
        deadline = self._deadline()
        try:
            while not self.eof:
                self._recv(deadline)
        except _Timeout:
            self.error('client did not close the connection within %ss' % self.read_timeout)
        if self.buf:
            rest = bytes(self.buf)
            self.buf.clear()
            self.lines.extend(split_lines(rest))
            self.error('expected the client to close the connection, it sent "%s"'
                       % show_bytes(rest, 200))

    def _read_data(self, what, optional=False):
        deadline = self._deadline()
        scanned = 0
        while True:
            if self.buf.startswith(b'.\r\n'):
                end = 3
                break
            i = self.buf.find(b'\r\n.\r\n', max(0, scanned - 4))
            if i >= 0:
                end = i + 5
                break
            scanned = len(self.buf)
            try:
                chunk = self._recv(deadline)
            except _Timeout:
                self.error('timed out after %ss reading DATA (%d bytes so far)'
                           % (self.read_timeout, len(self.buf)))
                raise _Abort()
            if not chunk:
                if self.buf or not optional:
                    self.error('client closed the connection %s (%d bytes of DATA read)'
                               % ('in the middle of DATA' if self.buf else 'before DATA', len(self.buf)))
                return None
        payload = bytes(self.buf[:end])
        del self.buf[:end]
        self.data.append(payload)
        self._check_data(payload)
        self.pending = 'DATA-END'
        self.cur_cmd = 'DATA-END'
        return payload

    def _check_data(self, payload):
        m = re.search(rb'(?<!\r)\n', payload)
        if m:
            self.violation('bare LF in DATA at offset %d' % m.start())
        m = re.search(rb'\r(?!\n)', payload)
        if m:
            self.violation('bare CR in DATA at offset %d' % m.start())
        if b'\0' in payload:
            self.violation('NUL in DATA at offset %d' % payload.index(b'\0'))
        longest = max((len(l) for l in payload.split(b'\r\n')), default=0)
        if longest + 2 > MAX_DATA_LINE:
            self.violation('DATA line of %d octets (limit 998 + CRLF)' % longest)
        if re.search(rb'[\x80-\xff]', payload):
            body = self.mail_params.get('BODY', '').upper()
            if body not in ('8BITMIME', 'BINARYMIME') and 'SMTPUTF8' not in self.mail_params:
                self.violation('8-bit DATA without BODY=8BITMIME')

    def _read_bdat(self, what, optional=False):
        line = self._read_line(what, optional)
        if line is None:
            return None
        return self._bdat_chunk(line)

    def _bdat_chunk(self, line):
        m = re.match(rb'(?i)BDAT (\d+)( LAST)?\r?\n$', line)
        if not m:
            self.error('expected a BDAT command, client sent "%s"' % show_bytes(line, 100))
            raise _Abort()
        n = int(m.group(1))
        deadline = self._deadline()
        while len(self.buf) < n:
            try:
                chunk = self._recv(deadline)
            except _Timeout:
                self.error('timed out reading a BDAT chunk (%d of %d bytes)' % (len(self.buf), n))
                raise _Abort()
            if not chunk:
                self.error('client closed the connection in a BDAT chunk (%d of %d bytes)'
                           % (len(self.buf), n))
                return None
        chunk = bytes(self.buf[:n])
        del self.buf[:n]
        self.bdat.append((line, chunk))
        return line, chunk, bool(m.group(2))

    def _start_tls(self, optional=False):
        ctx = self.server.ssl_context
        if ctx is None:
            self.error('TLS step but the server has no certificate')
            raise _Abort()
        if self.buf:
            self.violation('client sent "%s" before the TLS handshake' % show_bytes(bytes(self.buf), 80))
            raise _Abort()
        try:
            self.sock.settimeout(self.read_timeout or 30.0)
            tls = ctx.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            if optional:
                self.event('TLS handshake failed: %s' % e)
                return False
            self.error('TLS handshake failed: %s' % e)
            raise _Abort()
        self.sock = tls
        self.tls = True
        self.tls_version = tls.version()
        self.event('TLS handshake done: %s %s' % (tls.version(), tls.cipher()[0]))
        self.greeted = False
        self.caps = {}
        self.cur_cmd = None
        self.pending = None if self.any_client_line else 'greeting'
        return True

    # ---- responder mode

    def _act(self, spec, default, line=''):
        """Perform an action; returns the code of the last reply sent (or None)."""
        if callable(spec):
            spec = spec(self, line)
        if spec is None:
            spec = default
        code = None
        for part in str(spec).split(' ; '):
            p = part.strip()
            w = p.split(None, 2)
            kw = w[0].upper() if w else ''
            if kw == 'CLOSE' and len(w) == 1:
                self._close()
            elif kw == 'RESET' and len(w) == 1:
                self._close(reset=True)
            elif kw == 'STALL' and len(w) == 2:
                self._stall(_seconds(w[1], 0))
            elif kw == 'RAW':
                self._send(unescape(part.split('RAW', 1)[1][1:]))
            elif kw == 'DRIP' and len(w) == 3:
                self._send(unescape(w[2]), drip=float(w[1]))
            else:
                data = unescape(part)
                if not data.endswith(b'\n'):
                    data += b'\r\n'
                self._send(data)
                code = _reply_code(data)
        if code == '421':
            self._close()
        return code

    def _run_responder(self, R, greeted=False):
        self.tx = None
        self.refusing = False
        if not greeted:
            code = self._act(R.greeting, '220 %s ESMTP faultserver' % R.hostname)
            self.refusing = code is not None and code[0] in '45'
        while True:
            line = self._read_line('a command', optional=True)
            if line is None:
                return
            text = line.rstrip(b'\n').rstrip(b'\r').decode('utf-8', 'replace')
            verb, _, arg = text.partition(' ')
            V = verb.upper()
            if self.refusing and V != 'QUIT':
                self._act(None, '503 5.5.1 no service: send QUIT')
                continue
            handler = getattr(self, '_r_' + V, None)
            if handler is None:
                self.violation('unknown command "%s"' % text[:80])
                self._act(None, '500 5.5.2 unknown command')
                continue
            handler(R, text, arg)

    def _ov(self, R, key):
        return R.overrides.get(key)

    def _r_EHLO(self, R, text, arg):
        self.tx = None
        caps = [c for c in R.caps if not (self.tls and c.upper() == 'STARTTLS')]
        lines = ['%s greets %s' % (R.hostname, arg)] + caps
        reply = ''.join('250%s%s\r\n' % ('-' if i < len(lines) - 1 else ' ', l)
                        for i, l in enumerate(lines))
        self._act(self._ov(R, 'EHLO'), reply, text)

    def _r_HELO(self, R, text, arg):
        self.tx = None
        self._act(self._ov(R, 'HELO'), '250 %s' % R.hostname, text)

    def _r_MAIL(self, R, text, arg):
        if not self.greeted:
            self._act(None, '503 5.5.1 send EHLO/HELO first')
            return
        if self.tx is not None:
            self._act(None, '503 5.5.1 nested MAIL command')
            return
        m = re.match(r'(?i)MAIL FROM:\s*<([^>]*)>', text)
        default = '250 2.1.0 Ok'
        size = self.mail_params.get('SIZE', '')
        if R.size_limit and size.isdigit() and int(size) > R.size_limit:
            default = '552 5.3.4 message size exceeds fixed limit'
        code = self._act(self._ov(R, 'MAIL'), default, text)
        if code and code[0] == '2':
            self.tx = {'mail_from': m.group(1) if m else text, 'mail': text,
                       'rcpts': [], 'refused': [], 'rcpt_lines': []}

    def _r_RCPT(self, R, text, arg):
        if self.tx is None:
            self._act(None, '503 5.5.1 need MAIL command')
            return
        m = re.match(r'(?i)RCPT TO:\s*<([^>]*)>', text)
        addr = m.group(1) if m else ''
        spec = R.rcpt.get(addr.lower(), self._ov(R, 'RCPT'))
        code = self._act(spec, '250 2.1.5 Ok', text)
        self.tx['rcpt_lines'].append(text)
        (self.tx['rcpts'] if code and code[0] == '2' else self.tx['refused']).append(addr)

    def _r_DATA(self, R, text, arg):
        if self.tx is None:
            self._act(None, '503 5.5.1 need MAIL command')
            return
        if not self.tx['rcpts']:
            self._act(None, '554 5.5.1 no valid recipients')
            return
        code = self._act(self._ov(R, 'DATA'), '354 End data with <CR><LF>.<CR><LF>', text)
        if code != '354':
            return
        payload = self._read_data('the DATA payload')
        if payload is None:
            return
        self._finish_message(R, payload)

    def _finish_message(self, R, payload):
        default = '250 2.0.0 Ok: queued as FS%d' % (len(self.server.all_messages()) + 1)
        if R.size_limit and len(unstuff(payload)) > R.size_limit:
            default = '552 5.3.4 message size exceeds fixed limit'
        msg = dict(self.tx, data=payload, reply=None)
        self.messages.append(msg)
        self.tx = None
        msg['reply'] = self._act(self._ov(R, 'DATA-END'), default, '.')

    def _r_BDAT(self, R, text, arg):
        got = self._bdat_chunk(self.lines[-1])
        if got is None:
            return
        line, chunk, last = got
        if self.tx is None or not self.tx['rcpts']:
            self._act(None, '503 5.5.1 need MAIL and RCPT')
            return
        self.tx.setdefault('chunks', []).append(chunk)
        if last:
            self._finish_message(R, b''.join(self.tx['chunks']))
        else:
            self._act(self._ov(R, 'BDAT'), '250 2.0.0 %d octets received' % len(chunk), text)

    def _r_RSET(self, R, text, arg):
        self.tx = None
        self._act(self._ov(R, 'RSET'), '250 2.0.0 Ok', text)

    def _r_NOOP(self, R, text, arg):
        self._act(self._ov(R, 'NOOP'), '250 2.0.0 Ok', text)

    def _r_VRFY(self, R, text, arg):
        self._act(self._ov(R, 'VRFY'), '252 2.0.0 cannot verify', text)

    def _r_QUIT(self, R, text, arg):
        self._act(self._ov(R, 'QUIT'), '221 2.0.0 Bye', text)
        self._close()

    def _r_STARTTLS(self, R, text, arg):
        if self.tls:
            self._act(None, '503 5.5.1 TLS already active')
            return
        if self.server.ssl_context is None:
            self._act(None, '454 4.7.0 TLS not available')
            return
        code = self._act(self._ov(R, 'STARTTLS'), '220 2.0.0 Ready to start TLS', text)
        if code == '220':
            self.tx = None
            self._start_tls()

    def _r_AUTH(self, R, text, arg):
        ov = self._ov(R, 'AUTH')
        if ov is not None:
            self._act(ov, '454 4.7.0 temporary authentication failure', text)
            return
        w = arg.split()
        mech = w[0].upper() if w else ''
        offered = (R.cap('AUTH') or '').upper().split()
        if mech not in ('PLAIN', 'LOGIN') or mech not in offered:
            self._act(None, '504 5.5.4 unrecognized authentication type')
            return

        def ask(prompt):
            self._act(None, '334 ' + prompt)
            line = self._read_line('an AUTH response', optional=True)
            if line is None:
                raise _Abort()
            return line.strip()

        try:
            if mech == 'PLAIN':
                resp = w[1].encode() if len(w) > 1 else ask('')
                if resp == b'*':
                    self._act(None, '501 5.7.0 authentication cancelled')
                    return
                parts = b64decode(resp, validate=True).split(b'\0')
                user, pw = parts[1].decode(), parts[2].decode()
            else:
                user = b64decode(w[1] if len(w) > 1 else ask('VXNlcm5hbWU6')).decode()
                pw = b64decode(ask('UGFzc3dvcmQ6')).decode()
        except (ValueError, IndexError, UnicodeDecodeError):
            self._act(None, '501 5.5.2 cannot decode response')
            return
        if R.credentials is None or tuple(R.credentials) == (user, pw):
            self.auth_user = user
            self._act(None, '235 2.7.0 Authentication successful')
        else:
            self._act(None, '535 5.7.8 authentication failed')


# --------------------------------------------------------------------------
# The server

class FaultServer:
    """Listen on host:port and serve each connection from the script or responder.

    script: text (see the module docstring), a list of steps, or a list of
    step lists (one per connection).  responder: a Responder, a dict of its
    arguments, its text form, True (defaults), or a list of these (one per
    connection, the last repeated).  Without a script every connection gets
    the responder; with one, connections beyond the script's are errors.
    """

    def __init__(self, script=None, responder=None, *, cert=None, key=None,
                 host='127.0.0.1', port=0, settle=0.02, read_timeout=DEFAULT_READ_TIMEOUT,
                 linger=2.0, max_connections=50):
        if isinstance(script, str):
            script = parse_script(script)
        elif script and isinstance(script[0], Step):
            script = [script]
        self.scripts = script
        if not isinstance(responder, (list, tuple)):
            responder = [responder] if responder is not None else []
        self.responders = [self._responder(r) for r in responder]
        if self.scripts is None and not self.responders:
            self.responders = [Responder()]
        self.cert, self.key = cert, key
        self.ssl_context = None
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.ssl_context = ctx
        self.host = host
        self.port = port
        self.settle = settle
        self.read_timeout = read_timeout
        self.linger = linger
        self.max_connections = max_connections
        self.connections = []
        self.extra_errors = []
        self._threads = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listener = None
        self._accept_thread = None

    @staticmethod
    def _responder(r):
        if isinstance(r, Responder):
            return r
        if r is True:
            return Responder()
        if isinstance(r, dict):
            return Responder(**r)
        if isinstance(r, str):
            return Responder.parse(r)
        raise TypeError('bad responder %r' % (r,))

    def responder_for(self, index):
        if not self.responders:
            return Responder()
        return self.responders[min(index, len(self.responders) - 1)]

    # ---- life cycle

    def start(self):
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((self.host, self.port))
        ls.listen(16)
        self._listener = ls
        self.port = ls.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name='faultserver-accept',
                                               daemon=True)
        self._accept_thread.start()
        return self

    @property
    def address(self):
        return (self.host, self.port)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self._listener], [], [], 0.05)
                if not r:
                    continue
                with self._lock:     # so wait_idle never sees a half-accepted connection
                    sock, _ = self._listener.accept()
                    self._serve(sock)
            except (OSError, ValueError):
                if self._stop.is_set():
                    return
                continue

    def _serve(self, sock):
        """Set up a connection and its thread (called with the lock held)."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        index = len(self.connections)
        if index >= self.max_connections:
            self.extra_errors.append('more than %d connections' % self.max_connections)
            sock.close()
            return
        if self.scripts is not None:
            if index >= len(self.scripts):
                self.extra_errors.append('unexpected connection #%d (the script has %d)'
                                         % (index + 1, len(self.scripts)))
                sock.close()
                return
            conn = Connection(self, sock, index, self.scripts[index], None)
        else:
            conn = Connection(self, sock, index, None, self.responder_for(index))
        self.connections.append(conn)
        t = threading.Thread(target=conn.run, name='faultserver-conn-%d' % index, daemon=True)
        self._threads.append(t)
        t.start()

    def _pending_accept(self):
        try:
            r, _, _ = select.select([self._listener], [], [], 0)
            return bool(r)
        except (OSError, ValueError):
            return False

    def wait_idle(self, timeout=3.0):
        """Wait until every connection has ended or is stalled; True if so."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                idle = (all(c.done or c.stalling for c in self.connections)
                        and not self._pending_accept())
            if idle:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)

    def stop(self, timeout=5.0):
        """Stop listening, end every connection (stalls included), join the threads."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        if self._accept_thread is not None:
            self._accept_thread.join(timeout)
        for c in self.connections:     # wakes threads blocked in send
            if not c.done:
                try:
                    c.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        deadline = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self):
        if self._listener is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- what happened

    @property
    def lines(self):
        """Every client line (bytes, with terminators) over all connections, DATA excluded."""
        return [l for c in self.connections for l in c.lines]

    @property
    def text_lines(self):
        return [l.rstrip(b'\n').rstrip(b'\r').decode('utf-8', 'replace') for l in self.lines]

    @property
    def commands(self):
        return b''.join(self.lines)

    @property
    def data(self):
        return [d for c in self.connections for d in c.data]

    @property
    def messages(self):
        return [unstuff(d) for d in self.data]

    def all_messages(self):
        return [m for c in list(self.connections) for m in c.messages]

    @property
    def errors(self):
        out = list(self.extra_errors)
        for c in self.connections:
            out += ['connection %d: %s' % (c.index + 1, e) for e in c.errors]
        return out

    @property
    def violations(self):
        return ['connection %d: %s' % (c.index + 1, v) for c in self.connections for v in c.violations]

    def report(self, max_lines=300):
        """A readable transcript of everything, for assertion messages.

        "S:" server bytes, "C:" client bytes ("C+" a line that arrived in the
        same read as the one before: the client wrote them together), "*"
        events, errors and violations."""
        out = []
        for c in self.connections:
            out.append('--- connection %d (%s%s)' % (c.index + 1, c.mode, ', TLS' if c.tls else ''))
            n = 0
            for kind, data in c.transcript:
                chunks = [data] if kind == '*' else split_lines(data)
                for i, piece in enumerate(chunks):
                    n += 1
                    tag = {'C': 'C:', 'S': 'S:', '*': '  *'}[kind]
                    if kind == 'C' and i:
                        tag = 'C+'      # arrived in the same read as the line before
                    if n <= max_lines:
                        out.append('%s %s' % (tag,
                                              piece.decode('utf-8', 'replace') if kind == '*'
                                              else show_bytes(piece, 300)))
            if n > max_lines:
                out.append('   ... %d more transcript lines' % (n - max_lines))
        if not self.connections:
            out.append('--- no connection was made')
        for e in self.extra_errors:
            out.append('  * error: ' + e)
        return '\n'.join(out)


# --------------------------------------------------------------------------
# Throwaway certificates

class TestCerts:
    """Paths of a CA, a server certificate it signed for localhost and
    127.0.0.1, and a self-signed ("rogue") certificate for the same names."""
    __test__ = False     # not a pytest test class

    def __init__(self, directory):
        j = lambda n: os.path.join(directory, n)
        self.dir = directory
        self.ca, self.ca_key = j('ca.pem'), j('ca.key')
        self.cert, self.key = j('server.pem'), j('server.key')
        self.rogue_cert, self.rogue_key = j('rogue.pem'), j('rogue.key')


def make_test_certs(directory):
    """Generate TestCerts in directory with the openssl command-line tool."""
    os.makedirs(directory, exist_ok=True)

    def openssl(*args):
        p = subprocess.run(('openssl',) + args, cwd=directory, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode:
            raise RuntimeError('openssl %s failed: %s' % (' '.join(args), p.stdout.decode()))

    ec = ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes')
    san = 'subjectAltName=DNS:localhost,IP:127.0.0.1'
    openssl('req', '-x509', *ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '7',
            '-subj', '/CN=mailcar test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
            '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    openssl('req', *ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost')
    with open(os.path.join(directory, 'server.ext'), 'w') as f:
        f.write(san + '\nbasicConstraints=critical,CA:FALSE\n'
                'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n')
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
            '-set_serial', '2', '-days', '7', '-out', 'server.pem', '-extfile', 'server.ext')
    openssl('req', '-x509', *ec, '-keyout', 'rogue.key', '-out', 'rogue.pem', '-days', '7',
            '-subj', '/CN=localhost', '-addext', san)
    return TestCerts(directory)


# --------------------------------------------------------------------------
# Command line

def _sections(text):
    """From a .case file take [server] and [responder]; plain text is a script."""
    found = {}
    cur = None
    for line in text.split('\n'):
        m = re.match(r'^\[([a-z-]+)(?:\s[^\]]*)?\]\s*$', line)
        if m:
            cur = m.group(1)
            found.setdefault(cur, [])
            continue
        if cur:
            found[cur].append(line)
    if 'server' in found or 'responder' in found:
        s = found.get('server')
        r = found.get('responder')
        return ('\n'.join(s) if s is not None else None), ('\n'.join(r) if r is not None else None)
    return text, None


def main(argv=None):
    ap = argparse.ArgumentParser(description='Scriptable fault-injecting SMTP server.')
    ap.add_argument('--script', help='script file (or a .case file: its [server] and [responder])')
    ap.add_argument('--responder', help='responder settings file ("key: value" lines)')
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=0, help='0: a free port (printed)')
    ap.add_argument('--cert')
    ap.add_argument('--key')
    ap.add_argument('--tls-dir', help='generate a throwaway CA and server certificate here and use them')
    ap.add_argument('--connections', type=int, default=0,
                    help='exit after this many connections have ended (0: run until interrupted)')
    ap.add_argument('--timeout', type=float, default=DEFAULT_READ_TIMEOUT, help='read timeout')
    ap.add_argument('--settle', type=float, default=0.02)
    a = ap.parse_args(argv)

    script = responder = None
    if a.script:
        with open(a.script) as f:
            script, responder = _sections(f.read())
    if a.responder:
        with open(a.responder) as f:
            responder = f.read()
    cert, key = a.cert, a.key
    if a.tls_dir:
        certs = make_test_certs(a.tls_dir)
        cert, key = certs.cert, certs.key
        print('CA certificate: %s' % certs.ca, flush=True)
    srv = FaultServer(script, responder, cert=cert, key=key or cert, host=a.host, port=a.port,
                      settle=a.settle, read_timeout=a.timeout)
    srv.start()
    print('faultserver listening on %s:%d' % (srv.host, srv.port), flush=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    try:
        while True:
            time.sleep(0.05)
            conns = list(srv.connections)
            if a.connections and len(conns) >= a.connections and all(c.done for c in conns):
                break
    except KeyboardInterrupt:
        pass
    srv.stop()
    print(srv.report(max_lines=10000))
    for e in srv.errors:
        print('ERROR: ' + e)
    for v in srv.violations:
        print('VIOLATION: ' + v)
    sys.stdout.flush()
    return 1 if srv.errors or srv.violations else 0


if __name__ == '__main__':
    sys.exit(main())
