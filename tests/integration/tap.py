"""pytest plugin: write the results as TAP for automake's tap-driver.

    python3 -m pytest -p tap --tap-file=FILE tests/integration

(tests/integration must be on PYTHONPATH.)  One line per test, written as
each test finishes, the plan `1..N` at the end:

    ok 3 - test_cases.py::test_case[0001-basic-send]
    not ok 4 - test_cli.py::test_null_sender[<>]
    ok 5 - test_cli.py::test_host_not_found # SKIP the resolver here ...
    not ok 6 - ... # TODO expected failure (xfail)

A test fails when any of its phases (setup, call, teardown) failed; a
collection error is a failing line of its own.  Failures carry a few `# `
diagnostic lines; the full report is pytest's own output.  With no tests
at all the stream is `1..0 # SKIP no tests collected`.
"""

import re

import pytest

MAX_DIAG_LINES = 25


def pytest_addoption(parser):
    parser.addoption('--tap-file', default=None, metavar='FILE',
                     help='write TAP results to FILE (tests/integration/tap.py)')


def pytest_configure(config):
    path = config.getoption('--tap-file')
    if path:
        config.pluginmanager.register(TapWriter(path), 'mailcar-tap-writer')


def _clean(text):
    text = re.sub(r'\s+', ' ', str(text)).strip()
    return text.replace('#', '_')


def _skip_reason(report):
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        reason = lr[2]
    else:
        reason = str(lr or '')
    return re.sub(r'^Skipped: ', '', reason)


class TapWriter:
    def __init__(self, path):
        self.out = open(path, 'w', encoding='utf-8')
        self.n = 0
        self.state = {}

    def _emit(self, line, diag=None):
        self.n += 1
        self.out.write(line % self.n + '\n')
        if diag:
            lines = str(diag).splitlines()
            for d in lines[:MAX_DIAG_LINES]:
                self.out.write('# ' + d + '\n')
            if len(lines) > MAX_DIAG_LINES:
                self.out.write('# ... (%d more lines in the log)\n' % (len(lines) - MAX_DIAG_LINES))
        self.out.flush()

    def pytest_collectreport(self, report):
        if report.failed:
            self._emit('not ok %%d - collecting %s' % _clean(report.nodeid or 'tests'),
                       report.longreprtext)

    def pytest_runtest_logreport(self, report):
        st = self.state.setdefault(report.nodeid, {'failed': None, 'skipped': None,
                                                   'xfail': None, 'xpass': None})
        if report.failed and st['failed'] is None:
            st['failed'] = '%s failed: %s' % (report.when, report.longreprtext)
        elif report.skipped:
            if hasattr(report, 'wasxfail'):
                st['xfail'] = report.wasxfail or 'expected failure'
            elif st['skipped'] is None:
                st['skipped'] = _skip_reason(report)
        elif report.passed and report.when == 'call' and hasattr(report, 'wasxfail'):
            st['xpass'] = report.wasxfail or 'expected failure'

    def pytest_runtest_logfinish(self, nodeid, location):
        st = self.state.pop(nodeid, None)
        if st is None:
            return
        name = _clean(nodeid)
        if st['failed'] is not None:
            self._emit('not ok %%d - %s' % name, st['failed'])
        elif st['xfail'] is not None:
            self._emit('not ok %%d - %s # TODO %s' % (name, _clean(st['xfail'])))
        elif st['xpass'] is not None:
            self._emit('ok %%d - %s # TODO unexpectedly passed: %s' % (name, _clean(st['xpass'])))
        elif st['skipped'] is not None:
            self._emit('ok %%d - %s # SKIP %s' % (name, _clean(st['skipped'])))
        else:
            self._emit('ok %%d - %s' % name)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self.n == 0:
            self.out.write('1..0 # SKIP no tests collected\n')
        else:
            self.out.write('1..%d\n' % self.n)
        self.out.close()
