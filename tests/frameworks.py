"""The machine-learning frameworks the tests exercise (torch, TensorFlow, XGBoost, ...): skipped where one
does not import, unless AUTOLOG_TEST_FRAMEWORKS=required (as .ci/run sets), where its tests fail instead,
with the import error: CI must never pass by skipping them. The same switch as AUTOLOG_TEST_SERVICES.

Use `require_framework(name)` instead of `pytest.importorskip(name)`. A bare importorskip left somewhere
is caught too: in required mode tests/conftest.py turns its skip into a failure (see import_skip_failure).
"""
from __future__ import annotations

import importlib
import os
import traceback
from types import ModuleType

import pytest

REQUIRE_ENV = "AUTOLOG_TEST_FRAMEWORKS"
INSTALL_HINT = 'the test extras install it: .venv/bin/pip install -c constraints.txt -e ".[test]"'


def frameworks_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") == "required"


def _required_message(what: str) -> str:
    return f"{what} ({REQUIRE_ENV}=required: CI must run these tests; {INSTALL_HINT})"


def require_framework(name: str) -> ModuleType:
    """Import module `name` and return it. When it does not import (not installed, or broken: any
    ImportError), fail the calling test in required mode and skip it otherwise, saying why."""
    __tracebackhide__ = True  # -ra names the calling test's line, not this one
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        error = exc  # failed or skipped below, outside this block: no "during handling" chain
    message = f"framework {name!r} does not import: {type(error).__name__}: {error}"
    if frameworks_required():
        trace = "".join(traceback.format_exception(error))
        pytest.fail(f"{_required_message(message)}\n{trace}", pytrace=False)
    pytest.skip(f"{message}; {INSTALL_HINT}", allow_module_level=True)


# pytest.importorskip's skip message ("could not import 'torch': No module named 'torch'").
_IMPORTORSKIP_PREFIX = "could not import "


def import_skip_failure(message: str) -> str | None:
    """In required mode, the failure message for the skip message of a bare pytest.importorskip; else None."""
    message = message.removeprefix("Skipped: ")
    if not frameworks_required() or not message.startswith(_IMPORTORSKIP_PREFIX):
        return None
    return _required_message(f"pytest.importorskip: {message}")
