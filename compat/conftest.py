"""The compat suite: real Redis clients and tools against live dynredis clusters.

Fixtures come from the integration tests (real processes started the README way). Every
test carries `@pytest.mark.compat(client=..., family=...)`; at the end of the run a table
of client / command family / passed / failed is printed (see `pytest_terminal_summary`)
and written to `compat/last-results.md`.

Counting rules: each collected test (each parametrized case) counts once, under the
client and family of its closest `compat` marker. It counts as passed only if its call
passed and neither its setup nor its teardown failed; anything else (a failure, an error
in setup or teardown, a skip, an xfail) counts as failed: a test that did not run did not
show compatibility. A skip also fails the run; an expected failure (a strict xfail, whose
reason names the limit of dynredis it meets) does not, and is listed with its reason. A test in compat/ without the marker is an error (counted as failed
under "(unmarked)"), so nothing goes uncounted.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import (  # noqa: F401  (fixtures re-exported)
    cluster,
    cluster_factory,
    free_port,
    module_cluster_factory,
    pytest_runtest_makereport,
    real_redis,
)

COMPAT_DIR = Path(__file__).resolve().parent
RESULTS_FILE = COMPAT_DIR / "last-results.md"
UNMARKED = ("(unmarked)", "(unmarked)")
NPM_INSTALL_TIMEOUT_S = 300


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "compat(client, family): the client and command family a compat test "
                   "covers; counted in the table printed at the end of the run")


# --- the marker and the tally ------------------------------------------------------------


def _in_compat(item: pytest.Item) -> bool:
    return Path(str(item.path)).resolve().is_relative_to(COMPAT_DIR)


def compat_key(item: pytest.Item) -> tuple[str, str] | None:
    """(client, family) of the item's closest compat marker, or None if it has none (or
    one without both a client and a family)."""
    mark = item.get_closest_marker("compat")
    if mark is None:
        return None
    client = mark.kwargs.get("client", mark.args[0] if len(mark.args) > 0 else None)
    family = mark.kwargs.get("family", mark.args[1] if len(mark.args) > 1 else None)
    if not (isinstance(client, str) and client and isinstance(family, str) and family):
        return None
    return client, family


class Tally:
    """Per-test outcomes of the selected compat tests, grouped by (client, family)."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, str]] = {}  # nodeid -> (client, family)
        self.call_passed: set[str] = set()
        self.bad: set[str] = set()  # failed, errored or skipped in some phase
        self.skipped: set[str] = set()
        self.xfailed: dict[str, str] = {}  # nodeid -> the reason it is expected to fail

    def record(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.keys:
            return
        if report.when == "call" and report.passed and not hasattr(report, "wasxfail"):
            self.call_passed.add(report.nodeid)
        elif report.failed or report.skipped:
            self.bad.add(report.nodeid)
            if hasattr(report, "wasxfail"):
                self.xfailed[report.nodeid] = report.wasxfail
            elif report.skipped:
                self.skipped.add(report.nodeid)

    def passed(self, nodeid: str) -> bool:
        return nodeid in self.call_passed and nodeid not in self.bad

    def rows(self) -> list[tuple[str, str, int, int]]:
        counts: dict[tuple[str, str], list[int]] = {}
        for nodeid, key in self.keys.items():
            c = counts.setdefault(key, [0, 0])
            c[0 if self.passed(nodeid) else 1] += 1
        return [(k[0], k[1], v[0], v[1]) for k, v in sorted(counts.items())]


TALLY = Tally()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Record the selected compat tests (after -k/-m deselection)."""
    TALLY.keys.clear()
    for item in session.items:
        if _in_compat(item):
            TALLY.keys[item.nodeid] = compat_key(item) or UNMARKED


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _in_compat(item) and compat_key(item) is None:
        pytest.fail(f"{item.nodeid}: every test in compat/ needs "
                    "@pytest.mark.compat(client=..., family=...) so that it is counted",
                    pytrace=False)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    TALLY.record(report)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped compat test fails the run: a client that was not tested did not pass."""
    if TALLY.skipped and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --- the table -----------------------------------------------------------------------


def render_table(rows: list[tuple[str, str, int, int]]) -> list[str]:
    header = ("client", "family", "passed", "failed")
    total = ("total", "", sum(r[2] for r in rows), sum(r[3] for r in rows))
    cells = [tuple(str(x) for x in r) for r in [header, *rows, total]]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]

    def line(c: tuple[str, ...]) -> str:
        return ("| " + " | ".join(c[i].ljust(widths[i]) if i < 2 else c[i].rjust(widths[i])
                                  for i in range(4)) + " |")

    sep = "|" + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":"
                         for i, w in enumerate(widths)) + "|"
    return [line(cells[0]), sep, *(line(c) for c in cells[1:-1]), line(cells[-1])]


def pytest_terminal_summary(terminalreporter, exitstatus: int,  # type: ignore[no-untyped-def]
                            config: pytest.Config) -> None:
    tally = TALLY
    if not tally.keys or config.option.collectonly:
        return
    lines = render_table(tally.rows())
    terminalreporter.write_sep("=", "compat: client / command family / passed / failed")
    for text in lines:
        terminalreporter.write_line(text)
    failed = sorted(n for n in tally.keys if not tally.passed(n))
    body = ["# Compatibility suite: last run", "",
            "Written by `compat/conftest.py` at the end of a pytest run that included "
            "compat/ tests (`make compat`). A test counts as failed if it failed, errored "
            "in setup or teardown, or did not run (skip).", "", *lines, ""]
    if failed:
        body += ["Failed:", "", *(f"- `{n}`" + (f" (expected: {tally.xfailed[n]})"
                                                if n in tally.xfailed else "")
                                  for n in failed), ""]
    if tally.skipped:
        terminalreporter.write_line(f"{len(tally.skipped)} compat test(s) skipped: counted as "
                                    "failed, and the run fails")
    try:
        RESULTS_FILE.write_text("\n".join(body))
        terminalreporter.write_line(f"(table written to {RESULTS_FILE})")
    except OSError as exc:
        terminalreporter.write_line(f"(could not write {RESULTS_FILE}: {exc})")


# --- helpers shared by the compat tests --------------------------------------------------


@pytest.fixture(scope="session")
def ioredis_ready() -> Path:
    """compat/ with ioredis installed (`npm install` here if it is missing). Fails, never
    skips, when node, npm or ioredis cannot be had: a client not tested is not passing."""
    missing = [exe for exe in ("node", "npm") if shutil.which(exe) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not installed: the ioredis tests need Node.js "
                    "and npm (scripts/install.sh --test installs ioredis into compat/)",
                    pytrace=False)
    if not (COMPAT_DIR / "node_modules" / "ioredis").is_dir():
        try:
            proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund"],
                                  cwd=COMPAT_DIR, capture_output=True, text=True,
                                  timeout=NPM_INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`npm install` in {COMPAT_DIR} did not finish within "
                        f"{NPM_INSTALL_TIMEOUT_S}s: ioredis is missing", pytrace=False)
        if proc.returncode != 0 or not (COMPAT_DIR / "node_modules" / "ioredis").is_dir():
            pytest.fail(f"`npm install` in {COMPAT_DIR} failed (exit {proc.returncode}), "
                        f"ioredis is missing:\n{proc.stderr[-2000:]}", pytrace=False)
    return COMPAT_DIR
