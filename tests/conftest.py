"""Shared fixtures: every test gets its own AUTOLOG_HOME (so its own SQLite file and storage),
strict mode, and no leftover running task."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Callable

import pytest

import frameworks
import services

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Variables that would make autolog read another store, config or parent task than the test's own.
_ISOLATING_UNSET = (
    "AUTOLOG_CONFIG",
    "AUTOLOG_DB_URL",
    "AUTOLOG_DEFAULT_OUTPUT_URI",
    "AUTOLOG_TASK_ID",
    "AUTOLOG_TASK_PID",
)


def _close_current_task() -> None:
    runtime = sys.modules.get("autolog.runtime")  # never import autolog just to tear down
    if runtime is None:
        return
    run = runtime.live()
    if run is None:
        return
    try:
        run.close()
    finally:
        runtime.set_live(None)


def _forget_parsed_arguments() -> None:
    """argparse parses noted in this process (the CLI tests run `autolog` in-process) would otherwise be
    stored as the "Args" of the next test's Task.init."""
    capture = sys.modules.get("autolog.argparse_capture")
    if capture is not None:
        capture.forget()
        capture.follow(None)


@pytest.fixture(autouse=True)
def autolog_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $AUTOLOG_HOME for every test; the running task (if any) is closed afterwards."""
    home = tmp_path / "autolog-home"
    home.mkdir()
    monkeypatch.setenv("AUTOLOG_HOME", str(home))
    monkeypatch.setenv("AUTOLOG_STRICT", "1")
    for name in _ISOLATING_UNSET:
        monkeypatch.delenv(name, raising=False)
    _forget_parsed_arguments()
    yield home
    try:
        _close_current_task()
    finally:
        _forget_parsed_arguments()
        # Task.init exports these for child processes; absent before the test, absent after.
        os.environ.pop("AUTOLOG_TASK_ID", None)
        os.environ.pop("AUTOLOG_TASK_PID", None)


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment, with the repo root (and extra PYTHONPATH entries) importable."""
    env = dict(os.environ)
    extra = dict(extra or {})
    paths = [p for p in (extra.pop("PYTHONPATH", None), str(REPO), env.get("PYTHONPATH")) if p]
    env.update(extra)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


@pytest.fixture
def run_py() -> Callable[..., subprocess.CompletedProcess]:
    """run_py(code, env=None, cwd=None): run a Python snippet in a fresh interpreter.

    The child gets this process's environment (so the test's AUTOLOG_HOME) plus `env`, with the
    repo root on PYTHONPATH. Returns the CompletedProcess (text stdout/stderr); asserts nothing.
    """

    def run(code: str, env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None):
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=subprocess_env(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run


HELPERS_MODULE = "autolog_test_helpers"

_HELPERS_SOURCE = '''
"""Picklable classes for artifact tests; importable in the test process and in subprocesses."""
import os


def write_marker(path):
    with open(path, "w") as f:
        f.write("unpickled")
    return "marker written"


class Person:
    def __init__(self, name, age):
        self.name = name
        self.age = age

    def __eq__(self, other):
        return type(other) is Person and (other.name, other.age) == (self.name, self.age)

    def __repr__(self):
        return f"Person({self.name!r}, {self.age!r})"


class WritesMarkerOnLoad:
    """Unpickling it writes a marker file: proves whether bytes were ever unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __setstate__(self, state):
        self.__dict__.update(state)
        write_marker(state["marker"])


class Evil:
    """What an attacker would store: unpickling calls write_marker(marker)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (write_marker, (self.marker,))
'''


@pytest.fixture
def helpers_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the importable module `autolog_test_helpers`, put on sys.path.

    Pass it as PYTHONPATH to subprocesses that unpickle its classes.
    """
    folder = tmp_path / "helpers"
    folder.mkdir()
    (folder / f"{HELPERS_MODULE}.py").write_text(_HELPERS_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    return folder


@pytest.fixture
def helpers(helpers_dir: Path):
    import importlib

    return importlib.import_module(HELPERS_MODULE)


@pytest.fixture
def memory_uri():
    """A memory:// output_uri unique to this test (fsspec's memory filesystem is process-wide)."""
    import fsspec

    bucket = f"autolog-test-{uuid.uuid4().hex[:12]}"
    yield f"memory://{bucket}"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{bucket}"):
        fs.rm(f"/{bucket}", recursive=True)


@pytest.fixture
def child_env() -> Callable[..., dict[str, str]]:
    """child_env(extra=None): the environment run_py gives its children, for hand-made subprocesses."""
    return subprocess_env


# -- frameworks: required in CI (tests/frameworks.py) -----------------------------------------------
def _fail_import_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    """AUTOLOG_TEST_FRAMEWORKS=required: a skip by a bare pytest.importorskip (a framework that does not
    import) becomes a failure, saying so; tests should call frameworks.require_framework instead."""
    if not report.skipped:
        return
    longrepr = report.longrepr
    message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    failure = frameworks.import_skip_failure(message)
    if failure is not None:
        report.outcome = "failed"
        report.longrepr = failure


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    report = yield
    _fail_import_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> pytest.CollectReport:
    report = yield  # a module-level importorskip: in required mode a collection error, failing the run
    _fail_import_skip(report)
    return report


# -- team mode: real PostgreSQL and S3 (tests/services.py) -------------------------------------------
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs the PostgreSQL server started for this run")
    config.addinivalue_line("markers", "s3: needs the S3 server (moto_server) started for this run")
    if not hasattr(config, "workerinput"):  # the controller: xdist workers inherit the addresses
        services.start_all()


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        services.stop_all()


def _need(service: str, what: str) -> None:
    reason = services.unavailable(service)
    if reason is None:
        return
    message = f"{what} unavailable: {reason}"
    if services.services_required():
        pytest.fail(message + f" ({services.REQUIRE_ENV}=required: CI must run these tests)", pytrace=False)
    pytest.skip(message + "; .ci/run installs and starts it")


@pytest.fixture
def pg_server_url() -> str:
    """URL of the shared PostgreSQL server's maintenance database (do not stop this server)."""
    _need("PG", "PostgreSQL")
    return os.environ[services.PG_URL_ENV]


@pytest.fixture
def pg_url(pg_server_url: str):
    """A fresh, empty PostgreSQL database for this test, dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:16]
    url = services.create_database(pg_server_url, name)
    yield url
    services.drop_database(pg_server_url, name)


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of this test's own, which the test may stop and start (fault tests)."""
    _need("PG", "PostgreSQL")
    server = services.start_postgres()
    yield server
    server.remove()


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> str:
    """The S3 endpoint, with the usual AWS variables set in this process (and so in its children)."""
    _need("S3", "S3 (moto_server)")
    endpoint = os.environ[services.S3_ENDPOINT_ENV]
    for name, value in services.s3_env(endpoint).items():
        monkeypatch.setenv(name, value)
    return endpoint


@pytest.fixture
def s3_uri(s3_endpoint: str) -> str:
    """s3://<a new bucket>/runs: an output_uri on the S3 server, reached with the AWS env variables."""
    return f"s3://{services.new_bucket(s3_endpoint)}/runs"
