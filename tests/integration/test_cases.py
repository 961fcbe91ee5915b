"""Protocol cases: every tests/integration/cases/NNNN-short-name.case is one test.

The idea is curl's: a case is a small text file saying what the server
replies, how mailcar is called, and what it must send and exit with.

CASE FILE FORMAT

Lines starting with '#' before the first section describe the case (say what
is tested and why).  Then come sections, each opened by a header line
`[name]` or `[name modifier ...]`.  Only the names below open a section, so a
message line like "[foo]" is content; write `\\[` for a content line that
would look like a real header.  Trailing empty lines of a section are dropped
(use blank lines between sections freely).

  [args]            mailcar's arguments, shell-quoted (shlex, may span lines).
                    The harness puts `-C CONFIG` in front.
                    Default: -i rcpt@example.test
  [config]          lines for the generated account: a line setting one of its
                    keys replaces that key's line, others are appended:
                        account default
                        host 127.0.0.1
                        port PORT
                        tls off
                        auth off
                        from sender@example.test
                        timeout 5
  [config replace]  the whole config file instead.
  [stdin]           the message; every line ends with LF.  Modifiers: `crlf`
                    (lines end with CRLF), `nonewline` (nothing after the last
                    line; end with a line `\\n` to get a trailing empty line).
                    Default: DEFAULT_MESSAGE below (From, To, Subject, Date,
                    Message-ID, one body line).
  [env]             KEY=VALUE lines for the client's environment.
  [timeout]         seconds before the client is killed (default 10, max 20).
  [server]          the server's script, in faultserver.py's syntax (S:, C:,
                    DATA, TLS, CLOSE, STALL, RESPONDER, NEXT ...).
  [responder]       the default responder's settings (faultserver.py): caps,
                    greeting, per-command and per-recipient replies.  With
                    [server] they serve its RESPONDER steps.  With neither
                    section nothing listens on the configured port.

Expectations (each one given must hold):

  [expect-exit]         a number, several allowed ("75 76"), or "!0".
  [expect-sent]         the client's command lines over all connections, in
                        order, DATA payloads excluded.  Each line is compared
                        with CRLF appended; a line "re:REGEX" must instead
                        fullmatch the client's line without its CRLF.
  [expect-sent-lacks]   regexes; no client command line may match (search).
  [expect-data]         the raw payload of the first DATA: the wire lines after
                        the 354 up to and including the final ".", dot-stuffed,
                        each compared with CRLF appended ("re:" lines as above).
                        [expect-data 2] is the second payload, and so on.
  [expect-data-contains] regexes; each must match (search) a line of a payload
                        (lines without their CRLF).
  [expect-data-lacks]   regexes; none may match a line of any payload.
  [expect-messages]     the number of DATA payloads the server received.
  [expect-connections]  the number of connections.  Default: as many as the
                        [server] script has (NEXT separates them); with only a
                        [responder], at least one.
  [expect-stderr]       regexes; each must match somewhere in stderr (re.M).
  [expect-stderr-lacks] regexes; none may match stderr.
  [expect-stdout]       regexes; each must match somewhere in stdout.
  [expect-violations]   regexes; every protocol violation the server recorded
                        must match one and every regex must match one.
                        Default: no violations at all.
  [expect-time]         the client must finish within this many seconds.

Always checked: the client was not killed by the timeout; the server script ran
to its end without errors (a line not matching, an early close, extra bytes
after the end); no protocol violations (pipelining without PIPELINING, bare
LF, ...); when the exit status is not 0 and -v is not among the arguments,
stderr is not empty and every stderr line starts with "mailcar: ".

Placeholders, in [args] [config] [stdin] [env] and the expectations:
%PORT% %HOST% %TMP% (a per-case temporary directory), %CA% %CERT% %KEY%
%ROGUE_CERT% %ROGUE_KEY% (the session's test certificates).  A case that
mentions TLS, STARTTLS or one of the certificate placeholders gets the
session's server certificate loaded into its server.

Escapes, in [stdin], [expect-sent] and [expect-data] (not in "re:" lines) and
in the server's S:/SRAW:/DRIP text and responder replies:
\\r \\n \\t \\0 \\\\ \\xHH \\[ and %repeat[N x TEXT]%.  Our editors strip
trailing white space: write \\x20 for a significant trailing space.  Regexes
are used as written (write \\r or \\x00 the regex way).

Run one case:
    /usr/bin/python3 -m pytest -q tests/integration/test_cases.py -k 0001
    PYTEST_ARGS='-k 0001' tests/integration/run.sh
Poke a case's server by hand:
    /usr/bin/python3 tests/integration/faultserver.py --script cases/0001-basic-send.case
"""

import glob
import os
import re
import shlex

import pytest

import faultserver as fs

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_DIR = os.path.join(HERE, 'cases')

DEFAULT_ARGS = '-i rcpt@example.test'
DEFAULT_MESSAGE = '\n'.join([
    'From: Sender <sender@example.test>',
    'To: Recipient <rcpt@example.test>',
    'Subject: mailcar protocol test',
    'Date: Mon, 01 Jan 2024 00:00:00 +0000',
    'Message-ID: <case@example.test>',
    '',
    'Hello from the test suite.',
    '']).encode()

SECTIONS = {'args', 'config', 'stdin', 'env', 'timeout', 'server', 'responder',
            'expect-exit', 'expect-sent', 'expect-sent-lacks', 'expect-data',
            'expect-data-contains', 'expect-data-lacks', 'expect-messages',
            'expect-connections', 'expect-stderr', 'expect-stderr-lacks', 'expect-stdout',
            'expect-violations', 'expect-time'}
MODIFIERS = {'config': {'replace'}, 'stdin': {'crlf', 'nonewline'}}
_HEADER = re.compile(r'^\[([a-z][a-z-]*)((?:[ \t]+[a-z0-9]+)*)\][ \t]*$')
_TLS_HINT = re.compile(r'(^|\n)\s*TLS\??\s*($|\n)|STARTTLS|%(CA|CERT|KEY|ROGUE_CERT|ROGUE_KEY)%')


class CaseError(Exception):
    pass


class Section:
    def __init__(self, name, mods, lineno):
        self.name, self.mods, self.lineno = name, mods, lineno
        self.lines = []

    @property
    def text(self):
        return '\n'.join(self.lines)


class Case:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[:-len('.case')]
        self.description = []
        self.sections = {}
        with open(path, encoding='utf-8') as f:
            raw = f.read()
        cur = None
        for n, line in enumerate(raw.split('\n'), 1):
            m = _HEADER.match(line)
            if m and m.group(1) in SECTIONS:
                name, mods = m.group(1), m.group(2).split()
                key = name
                if name == 'expect-data' and mods and mods[0].isdigit():
                    key = 'expect-data %d' % int(mods[0])
                    mods = mods[1:]
                elif name == 'expect-data':
                    key = 'expect-data 1'
                bad = set(mods) - MODIFIERS.get(name, set())
                if bad:
                    raise CaseError('%s:%d: unknown modifier %s for [%s]' % (path, n, ' '.join(bad), name))
                if key in self.sections:
                    raise CaseError('%s:%d: section [%s] given twice' % (path, n, key))
                cur = self.sections[key] = Section(name, set(mods), n)
            elif cur is None:
                if line.startswith('#'):
                    self.description.append(line[1:].strip())
                elif line.strip():
                    if m:
                        raise CaseError('%s:%d: unknown section [%s]' % (path, n, m.group(1)))
                    raise CaseError('%s:%d: text before the first section' % (path, n))
            else:
                cur.lines.append(line)
        for s in self.sections.values():
            while s.lines and not s.lines[-1].strip():
                s.lines.pop()
        if not self.description:
            raise CaseError('%s: no description (# lines at the top)' % path)
        # Parse what can be parsed now, so syntax errors show without a binary.
        self.script = None
        if 'server' in self.sections:
            s = self.sections['server']
            try:
                self.script = fs.parse_script(s.text, first_line=s.lineno + 1)
            except ValueError as e:
                raise CaseError('%s: [server] %s' % (path, e))
        self.responder = None
        if 'responder' in self.sections:
            s = self.sections['responder']
            try:
                self.responder = fs.Responder.parse(s.text, first_line=s.lineno + 1)
            except ValueError as e:
                raise CaseError('%s: [responder] %s' % (path, e))
        self.exit_codes = None
        if 'expect-exit' in self.sections:
            words = self.sections['expect-exit'].text.split()
            if words == ['!0']:
                self.exit_codes = '!0'
            elif words and all(w.isdigit() for w in words):
                self.exit_codes = [int(w) for w in words]
            else:
                raise CaseError('%s: [expect-exit] wants numbers or !0' % path)
        for key in ('expect-messages', 'expect-connections', 'expect-time', 'timeout'):
            if key in self.sections:
                try:
                    float(self.sections[key].text.strip())
                except ValueError:
                    raise CaseError('%s: [%s] wants a number' % (path, key))
        for key, s in self.sections.items():
            if key in ('expect-sent', 'expect-sent-lacks', 'expect-data-contains', 'expect-data-lacks',
                       'expect-stderr', 'expect-stderr-lacks', 'expect-stdout',
                       'expect-violations') or key.startswith('expect-data '):
                literal_ok = key == 'expect-sent' or key.startswith('expect-data ')
                for line in s.lines:
                    rx = line[3:] if line.startswith('re:') else (None if literal_ok else line)
                    if rx is not None:
                        try:
                            re.compile(rx)
                        except re.error as e:
                            raise CaseError('%s:[%s]: bad regex %r: %s' % (path, key, rx, e))

    def has(self, key):
        return key in self.sections

    def lines(self, key, subst=None):
        if key not in self.sections:
            return []
        ls = self.sections[key].lines
        return [subst(l) for l in ls] if subst else list(ls)

    def number(self, key, default=None):
        if key not in self.sections:
            return default
        return float(self.sections[key].text.strip())

    @property
    def needs_tls(self):
        text = '\n'.join(s.text for s in self.sections.values())
        return bool(_TLS_HINT.search(text))


def case_paths():
    return sorted(glob.glob(os.path.join(CASES_DIR, '*.case')))


def _case_id(path):
    return os.path.basename(path)[:-len('.case')]


# --------------------------------------------------------------------------
# Comparisons

def _wire_lines(data):
    return fs.split_lines(data)


def _strip_crlf(line):
    return line[:-2] if line.endswith(b'\r\n') else line.rstrip(b'\n')


def _u(b):
    return b.decode('utf-8', 'surrogateescape')


def compare_lines(label, expected, actual):
    """expected: case lines ("re:" or literal); actual: wire lines with terminators."""
    def ok(e, a):
        if e.startswith('re:'):
            return a.endswith(b'\r\n') and re.fullmatch(e[3:], _u(_strip_crlf(a)), re.S) is not None
        return a == fs.unescape(e) + b'\r\n'

    first = None
    for i in range(max(len(expected), len(actual))):
        e = expected[i] if i < len(expected) else None
        a = actual[i] if i < len(actual) else None
        if e is None or a is None or not ok(e, a):
            first = i
            break
    if first is None:
        return None
    lim = 60
    out = ['%s differs at line %d:' % (label, first + 1),
           '  expected: %s' % (expected[first] if first < len(expected) else '(nothing more)'),
           '  actual:   %s' % (fs.show_bytes(actual[first], 300) if first < len(actual) else '(nothing more)'),
           '  all expected:'] + ['    ' + l for l in expected[:lim]] + \
          ['  all actual:'] + ['    ' + fs.show_bytes(l, 300) for l in actual[:lim]]
    if len(actual) > lim or len(expected) > lim:
        out.append('    ... (%d expected, %d actual lines)' % (len(expected), len(actual)))
    return '\n'.join(out)


def check_exit(case, code):
    want = case.exit_codes
    if want is None:
        return None
    if want == '!0':
        return None if code not in (0, None) else 'exit status %s, expected non-zero' % code
    return None if code in want else 'exit status %s, expected %s' % (code, ' or '.join(map(str, want)))


# --------------------------------------------------------------------------
# Running a case

def build_stdin(case, subst):
    if not case.has('stdin'):
        return DEFAULT_MESSAGE
    sec = case.sections['stdin']
    eol = b'\r\n' if 'crlf' in sec.mods else b'\n'
    parts = [fs.unescape(subst(l)) for l in sec.lines]
    data = eol.join(parts)
    if 'nonewline' not in sec.mods and parts:
        data += eol
    return data


def run_case(case, run_mailcar, faultserver, tmp_path, certs=None):
    server = None
    if case.script is not None or case.responder is not None:
        server = faultserver(case.script, case.responder, tls=case.needs_tls)
    port = server.port if server else fs.free_port()
    values = {'PORT': str(port), 'HOST': '127.0.0.1', 'TMP': str(tmp_path)}
    if certs is not None:
        values.update(CA=certs.ca, CERT=certs.cert, KEY=certs.key,
                      ROGUE_CERT=certs.rogue_cert, ROGUE_KEY=certs.rogue_key)

    def subst(text):
        return re.sub(r'%([A-Z_]+)%', lambda m: values.get(m.group(1), m.group(0)), text)

    args = shlex.split(subst(' '.join(case.lines('args')))) if case.has('args') else shlex.split(DEFAULT_ARGS)
    env = {}
    for line in case.lines('env', subst):
        if line.strip():
            k, _, v = line.partition('=')
            env[k.strip()] = v
    res = run_mailcar(args, server=server, port=port, config=case.lines('config', subst),
                      replace_config='replace' in case.sections.get('config', Section('', set(), 0)).mods,
                      stdin=build_stdin(case, subst), timeout=case.number('timeout', 10), env=env)

    problems = []
    code, out, err = res
    if res.timed_out:
        problems.append('mailcar was killed after %.0fs (timeout)' % res.elapsed)
    p = check_exit(case, code)
    if p:
        problems.append(p)
    if code not in (0, None) and '-v' not in args:
        lines = err.decode('utf-8', 'replace').splitlines()
        if not lines:
            problems.append('exit status %s but stderr is empty' % code)
        bad = [l for l in lines if not l.startswith('mailcar: ')]
        if bad:
            problems.append('stderr lines not starting with "mailcar: ": %r' % bad[:5])
    serr = err.decode('utf-8', 'replace')
    for rx in case.lines('expect-stderr', subst):
        if not re.search(rx, serr, re.M):
            problems.append('stderr does not match %r' % rx)
    for rx in case.lines('expect-stderr-lacks', subst):
        if re.search(rx, serr, re.M):
            problems.append('stderr matches %r, it must not' % rx)
    sout = out.decode('utf-8', 'replace')
    for rx in case.lines('expect-stdout', subst):
        if not re.search(rx, sout, re.M):
            problems.append('stdout does not match %r' % rx)
    t = case.number('expect-time')
    if t is not None and res.elapsed > t:
        problems.append('mailcar took %.1fs, expected at most %gs' % (res.elapsed, t))

    if server is not None:
        problems += server.errors
        want_conns = case.number('expect-connections')
        nconn = len(server.connections)
        if want_conns is not None:
            if nconn != int(want_conns):
                problems.append('%d connections, expected %d' % (nconn, want_conns))
        elif case.script is not None:
            if nconn != len(case.script):
                problems.append('%d connections, the script has %d' % (nconn, len(case.script)))
        elif nconn < 1:
            problems.append('mailcar never connected')
        expected_v = case.lines('expect-violations', subst)
        for v in server.violations:
            if not any(re.search(rx, v) for rx in expected_v):
                problems.append('protocol violation: ' + v)
        for rx in expected_v:
            if not any(re.search(rx, v) for v in server.violations):
                problems.append('expected a violation matching %r' % rx)
        if case.has('expect-sent'):
            p = compare_lines('[expect-sent]', case.lines('expect-sent', subst), server.lines)
            if p:
                problems.append(p)
        for rx in case.lines('expect-sent-lacks', subst):
            hit = [l for l in server.text_lines if re.search(rx, l)]
            if hit:
                problems.append('client sent %r, matching %r' % (hit[0], rx))
        payloads = server.data
        for key in sorted(k for k in case.sections if k.startswith('expect-data ')):
            n = int(key.split()[1])
            if n > len(payloads):
                problems.append('[%s]: only %d DATA payloads received' % (key, len(payloads)))
                continue
            p = compare_lines('[%s]' % key, case.lines(key, subst), _wire_lines(payloads[n - 1]))
            if p:
                problems.append(p)
        data_lines = [_u(_strip_crlf(l)) for d in payloads for l in _wire_lines(d)]
        for rx in case.lines('expect-data-contains', subst):
            if not any(re.search(rx, l) for l in data_lines):
                problems.append('no DATA line matches %r' % rx)
        for rx in case.lines('expect-data-lacks', subst):
            hit = [l for l in data_lines if re.search(rx, l)]
            if hit:
                problems.append('DATA line %r matches %r, it must not' % (hit[0][:200], rx))
        m = case.number('expect-messages')
        if m is not None and len(payloads) != int(m):
            problems.append('%d DATA payloads received, expected %d' % (len(payloads), m))
    else:
        for key in ('expect-sent', 'expect-messages', 'expect-data 1', 'expect-violations'):
            if case.has(key):
                problems.append('[%s] needs a [server] or [responder]' % key)

    if problems:
        msg = ['case %s: %s' % (case.name, ' / '.join(case.description)), '']
        msg += ['* ' + p for p in problems]
        msg += ['', res.describe()]
        if server is not None:
            msg += ['--- server transcript:', server.report()]
        pytest.fail('\n'.join(msg), pytrace=False)


@pytest.mark.parametrize('path', case_paths(), ids=_case_id)
def test_case(path, request, run_mailcar, faultserver, tmp_path):
    case = Case(path)
    certs = request.getfixturevalue('tls_certs') if case.needs_tls else None
    run_case(case, run_mailcar, faultserver, tmp_path, certs)


def test_case_files_are_valid():
    """Every case file parses, and the numbers are unique (runs without a binary)."""
    paths = case_paths()
    assert paths, 'no case files in %s' % CASES_DIR
    numbers = {}
    for p in paths:
        name = os.path.basename(p)
        m = re.match(r'^(\d{4})-[a-z0-9-]+\.case$', name)
        assert m, '%s: name must be NNNN-short-name.case' % name
        assert m.group(1) not in numbers, '%s and %s share a number' % (name, numbers[m.group(1)])
        numbers[m.group(1)] = name
        Case(p)
