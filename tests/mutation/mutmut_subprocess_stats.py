"""pytest plugin for the mutation run (tests/mutation/run.sh): count what test subprocesses call.

mutmut 3 runs each mutant only against the tests that called the mutated function, and it learns
that in one in-process "stats" run. Most autolog tests drive the library in a fresh interpreter
(`run_py`, the binding scenarios): without this plugin their calls are invisible to mutmut (the
functions they test, such as the binding wrapper and the rank check, would count as "no tests"),
and worse, such a child inherits MUTANT_UNDER_TEST=stats and dies as soon as it runs from another
working directory (mutmut then looks for its config there).

In the stats run, this plugin takes MUTANT_UNDER_TEST out of the environment (this process keeps
recording: mutmut falls back to its process-local copy), so a child runs plain code. A child that
keeps our PYTHONPATH loads sitecustomize.py next to this file, which turns recording on in that
child and writes the functions it called to a folder when it exits; this plugin adds them to the
test that started the child, before mutmut's own teardown hook files the test's hits.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

DIR_ENV = "MUTMUT_CHILD_STATS_DIR"     # not AUTOLOG_*: some tests strip those from a child's env
PROJECT_ENV = "MUTMUT_CHILD_STATS_PROJECT"
_taken: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        _taken.append(os.environ.pop("MUTANT_UNDER_TEST"))
        os.environ[DIR_ENV] = tempfile.mkdtemp(prefix="autolog-mutmut-stats-")
        os.environ[PROJECT_ENV] = os.getcwd()  # mutants/: where mutmut's config (pyproject.toml) is


def pytest_unconfigure(config: pytest.Config) -> None:
    if _taken:
        os.environ["MUTANT_UNDER_TEST"] = _taken.pop()
        os.environ.pop(DIR_ENV, None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    folder = os.environ.get(DIR_ENV)
    if not _taken or not folder:
        return
    from mutmut.state import state

    for path in Path(folder).glob("*.json"):
        try:
            names = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        state()._stats.update(names)
        path.unlink(missing_ok=True)
