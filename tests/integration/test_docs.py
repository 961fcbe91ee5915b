"""The documentation against the program: man pages and completions.

`mailcar --help` is the reference: every option it lists must be in
mailcar(1) and in each shell completion (no more, no less), and every
configuration key in mailcar.conf(5).  The man pages must pass
`mandoc -Tlint -Wwarning`, and the completion scripts their shell's syntax
check.  No fixtures: the binary is $MAILCAR or ../../mailcar from here.
"""

import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.normpath(os.path.join(HERE, '..', '..'))
MAN1 = os.path.join(TOP, 'man', 'mailcar.1')
MAN5 = os.path.join(TOP, 'man', 'mailcar.conf.5')
BASH = os.path.join(TOP, 'completions', 'mailcar')
ZSH = os.path.join(TOP, 'completions', '_mailcar')
FISH = os.path.join(TOP, 'completions', 'mailcar.fish')

EXIT_STATUSES = {0, 64, 65, 67, 68, 69, 70, 71, 74, 75, 76, 77, 78}
CONFIG_HEADING = 'Every configuration key is also an option'

# An option word: "-x" or "--name", not the middle of "e-mail" or "Resent-".
SHORT_RE = re.compile(r'(?<![\w-])-([A-Za-z])')
LONG_RE = re.compile(r'(?<![\w-])--([a-z][a-z0-9-]*)')


def binary():
    path = os.environ.get('MAILCAR') or os.path.join(TOP, 'mailcar')
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip('mailcar binary not found at %s (build it, or set MAILCAR)' % path)
    return path


_help_cache = {}


def help_text():
    path = binary()
    if path not in _help_cache:
        r = subprocess.run([path, '--help'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        assert r.returncode == 0, r.stderr.decode(errors='replace')
        _help_cache[path] = r.stdout.decode()
    return _help_cache[path]


def help_options():
    """(short letters, long names, config keys) from `mailcar --help`."""
    text = help_text()
    assert CONFIG_HEADING in text, 'the --help layout changed; update test_docs.py'
    fixed, keys_part = text.split(CONFIG_HEADING, 1)
    shorts = set(SHORT_RE.findall(fixed))
    longs = set(LONG_RE.findall(text))
    keys = set()
    for line in keys_part.splitlines():
        m = re.match(r'\s+--([a-z0-9-]+)(?:\[=[^\]]*\]|=\S+)\s', line)
        if m:
            keys.add(m.group(1).replace('-', '_'))
    return shorts, longs, keys


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def code_lines(path):
    """The file without its comment lines."""
    return '\n'.join(l for l in read(path).splitlines() if not l.lstrip().startswith('#'))


# ---- what each completion file offers ---------------------------------------

def bash_options():
    text = code_lines(BASH)
    m = re.search(r"^\s*local shorts='([^']*)'", text, re.M)
    assert m, "no `local shorts='...'` list in completions/mailcar"
    shorts = set()
    for word in m.group(1).split():
        assert re.fullmatch(r'-[A-Za-z]', word), 'not a short option: %r' % word
        shorts.add(word[1])
    return shorts, set(LONG_RE.findall(text))


def zsh_options():
    text = code_lines(ZSH)
    # _arguments specs: '-x[...]', '(excl)-x+[...]', '*-x[...]', '-q-[...]'
    shorts = set(re.findall(r"'(?:\([^)]*\))?\*?-([A-Za-z])[-+=\[]", text))
    return shorts, set(LONG_RE.findall(text))


def fish_options():
    shorts, longs = set(), set()
    for line in code_lines(FISH).splitlines():
        if not re.match(r'\s*complete\s+-c\s+mailcar\b', line):
            continue
        shorts.update(re.findall(r'\s-s\s+([A-Za-z])(?=\s|$)', line))
        longs.update(re.findall(r'\s-l\s+([a-z][a-z0-9-]*)(?=\s|$)', line))
    return shorts, longs


COMPLETIONS = {'bash': bash_options, 'zsh': zsh_options, 'fish': fish_options}


def show(names, prefix):
    return ' '.join(prefix + n for n in sorted(names)) or '(none)'


@pytest.mark.parametrize('shell', sorted(COMPLETIONS))
def test_completion_has_every_long_option(shell):
    _, want, _ = help_options()
    _, have = COMPLETIONS[shell]()
    assert not want - have, 'missing from the %s completion: %s' % (shell, show(want - have, '--'))
    assert not have - want, 'not options of mailcar (%s completion): %s' % (
        shell, show(have - want, '--'))


@pytest.mark.parametrize('shell', sorted(COMPLETIONS))
def test_completion_has_every_short_option(shell):
    want, _, _ = help_options()
    have, _ = COMPLETIONS[shell]()
    assert not want - have, 'missing from the %s completion: %s' % (shell, show(want - have, '-'))
    assert not have - want, 'not options of mailcar (%s completion): %s' % (
        shell, show(have - want, '-'))


def test_help_lists_the_known_options():
    """A guard for the parser above: if these vanish, --help changed shape."""
    shorts, longs, keys = help_options()
    assert {'t', 'i', 'f', 'b', 'o', 'X', 'C'} <= shorts
    assert {'help', 'version', 'pretend', 'serverinfo', 'input', 'host', 'tls'} <= longs
    assert {'host', 'port', 'tls_starttls', 'passwordeval'} <= keys
    assert 'password' not in keys, 'the password must never be a command-line option'
    assert {k.replace('_', '-') for k in keys} <= longs


# ---- man pages --------------------------------------------------------------

def sections(path):
    """{'NAME': text, ...} for each .Sh of an mdoc page."""
    out, name = {}, None
    for line in read(path).splitlines():
        if line.startswith('.Sh '):
            name = line[4:].strip().strip('"')
            out[name] = ''
        elif name is not None:
            out[name] += line + '\n'
    return out


def item_lines(text):
    return [l for l in text.splitlines() if l.startswith('.It ')]


def test_man1_documents_every_option():
    shorts, longs, _ = help_options()
    options = sections(MAN1).get('OPTIONS')
    assert options, 'mailcar.1 has no OPTIONS section'
    have_long, have_short = set(), set()
    for line in item_lines(options):
        have_long.update(re.findall(r'\bFl \\-([a-z][a-z0-9-]*)', line))
        have_short.update(re.findall(r'\bFl ([A-Za-z])', line))
    assert not longs - have_long, 'mailcar.1 OPTIONS has no item for: %s' % show(
        longs - have_long, '--')
    assert not shorts - have_short, 'mailcar.1 OPTIONS has no item for: %s' % show(
        shorts - have_short, '-')


def test_man1_documents_no_option_mailcar_lacks():
    shorts, longs, _ = help_options()
    options = sections(MAN1)['OPTIONS']
    have_long = set()
    for line in item_lines(options):
        have_long.update(re.findall(r'\bFl \\-([a-z][a-z0-9-]*)', line))
    assert not have_long - longs, 'mailcar.1 documents options mailcar lacks: %s' % show(
        have_long - longs, '--')


def test_man5_documents_every_key():
    _, _, keys = help_options()
    keys.add('password')    # a key, but never an option
    text = read(MAN5)
    documented = set(re.findall(r'^\.It Cm ([a-z][a-z0-9_]*)', text, re.M))
    assert not keys - documented, 'mailcar.conf.5 has no item for: %s' % ' '.join(
        sorted(keys - documented))


@pytest.mark.parametrize('page', [MAN1, MAN5], ids=os.path.basename)
def test_man_page_lint_clean(page):
    if shutil.which('mandoc') is None:
        pytest.skip('mandoc is not installed')
    r = subprocess.run(['mandoc', '-Tlint', '-Wwarning', page], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode(errors='replace')
    assert r.returncode == 0 and out == '', out


def test_man1_exit_status_lists_every_status():
    text = sections(MAN1).get('EXIT STATUS')
    assert text, 'mailcar.1 has no EXIT STATUS section'
    listed = {int(n) for n in re.findall(r'^\.It (\d+)\s*$', text, re.M)}
    assert listed == EXIT_STATUSES, 'missing: %s; unexpected: %s' % (
        sorted(EXIT_STATUSES - listed), sorted(listed - EXIT_STATUSES))
    assert 'may have been delivered' in text, \
        'EXIT STATUS must say that a connection lost after the final dot may have delivered'


# ---- the completion scripts themselves ----------------------------------------

SYNTAX = {'bash': (BASH, ['bash', '-n']), 'zsh': (ZSH, ['zsh', '-n']),
          'fish': (FISH, ['fish', '--no-execute'])}


@pytest.mark.parametrize('shell', sorted(SYNTAX))
def test_completion_syntax(shell):
    path, cmd = SYNTAX[shell]
    if shutil.which(cmd[0]) is None:
        pytest.skip('%s is not installed' % cmd[0])
    r = subprocess.run(cmd + [path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    assert r.returncode == 0, r.stdout.decode(errors='replace')


BASH_COMPLETION = '/usr/share/bash-completion/bash_completion'

# The line typed (COMP_WORDBREAKS splits "--key=value" into three words),
# and what must be offered.
BASH_CASES = [
    (['mailcar', '--tls-cert'], ['--tls-certcheck', '--tls-cert-file=']),
    (['mailcar', '--tls', '=', ''], ['off', 'on']),
    (['mailcar', '--tls', ''], []),
    (['mailcar', '-b', ''], ['i', 'm', 'p', 'v']),
    (['mailcar', '--dsn-return', '=', 'h'], ['headers']),
]


@pytest.mark.parametrize('words,want', BASH_CASES, ids=lambda v: ' '.join(v) or '-')
def test_bash_completion_offers(words, want):
    if shutil.which('bash') is None or not os.path.exists(BASH_COMPLETION):
        pytest.skip('bash-completion is not installed')
    script = '''
        source %s >/dev/null 2>&1
        source "$1"
        COMP_LINE=$2
        COMP_POINT=${#COMP_LINE}
        shift 2
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _mailcar mailcar "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        printf '%%s\\n' "${COMPREPLY[@]}"
    ''' % BASH_COMPLETION
    env = dict(os.environ, HOME='/nonexistent')
    line = ' '.join(words).replace(' = ', '=').replace(' =', '=')
    r = subprocess.run(['bash', '-c', script, 'bash', BASH, line] + words, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors='replace')
    got = sorted(w for w in r.stdout.decode().splitlines() if w)
    assert got == sorted(want)
