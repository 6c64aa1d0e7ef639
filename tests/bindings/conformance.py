"""One conformance suite for every framework binding.

A framework's test module lists `Case`s (how to import, build, save and load a tiny model) and
gets the whole suite with `make_tests(CASES)`: capture imported before and after Task.init,
lineage across processes and for a copied file, fault injection for every patched call,
exceptions passed through unchanged, and no recording once the task is closed.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from frameworks import require_framework

REPO = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).with_name("scenario.py")


@dataclass(frozen=True)
class Case:
    id: str          # pytest id, e.g. "torch.save"
    requires: str    # module that must be importable, else the case is skipped (fails in CI: frameworks.py)
    imports: str     # code run before or after Task.init (the framework import)
    setup: str       # builds the tiny model; `path` is the absolute target path
    save: str        # saves to `path` (may set `saved` to the call's return value)
    load: str        # loads from `path`, setting `loaded`
    framework: str   # the framework name the model must be recorded with
    filename: str    # file (or folder / checkpoint prefix) name used for `path`
    check: str = ""  # expression that is true when `loaded` matches what was saved
    model_name: str = ""  # expected model name (default: filename)
    copy_files: str = ""  # glob (relative to path's folder) of what to copy for the "copied file" test


def run_scenario(case: Case, home: Path, workdir: Path, steps: list[str], import_first: bool = False,
                 path: str | None = None, task_name: str = "t", before_init: list[str] | None = None) -> dict:
    env = dict(os.environ)
    env["AUTOLOG_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    for name in ("AUTOLOG_TASK_ID", "AUTOLOG_TASK_PID", "AUTOLOG_STRICT"):
        env.pop(name, None)
    if not any(step.startswith("fault:") for step in steps):
        env["AUTOLOG_STRICT"] = "1"  # fault injection checks the non-strict behaviour users get
    spec = {"case": dataclasses.asdict(case), "steps": steps, "import_first": import_first or bool(before_init),
            "workdir": str(workdir), "path": path, "task_name": task_name, "before_init": before_init}
    proc = subprocess.run([sys.executable, str(SCENARIO), json.dumps(spec)], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"scenario failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _only_output(report: dict, case: Case) -> dict:
    outputs = report["models"]["output"]
    assert len(outputs) == 1, f"expected one output model, got {[m['name'] for m in outputs]}"
    model = outputs[0]
    assert model["name"] == (case.model_name or case.filename)
    assert model["framework"] == case.framework
    assert model["origin"] == "capture"
    return model


def succeeded(report: dict, phase: str = "autolog") -> dict:
    """The phase's report, once it is known that no step raised and every load matched its save."""
    out = report[phase]
    assert out["errors"] == [], [e["trace"] for e in out["errors"]]
    assert all(out["checks"]), "what was loaded differs from what was saved"
    return out


FAULTS = ["db", "storage", "hash", "bug"]


def make_tests(cases: list[Case]):
    params = [pytest.param(c, id=c.id) for c in cases]

    @pytest.mark.parametrize("import_first", [True, False], ids=["imported-before-init", "imported-after-init"])
    @pytest.mark.parametrize("case", params)
    def test_saves_are_snapshots(case: Case, import_first: bool, tmp_path: Path):
        require_framework(case.requires)
        report = run_scenario(case, tmp_path / "home", _workdir(tmp_path), ["save", "save", "save", "load"],
                              import_first=import_first)
        succeeded(report)
        model = _only_output(report, case)
        snaps = model["snapshots"]
        assert [s["seq"] for s in snaps] == [1, 2, 3]
        assert all(s["status"] == "stored" for s in snaps), snaps
        assert [s["iteration"] for s in snaps] == [1, 2, 3]
        assert model["local_copy_digest"] == snaps[-1]["digest"]
        # loading our own newest save links it as this task's input
        assert report["models"]["loads"][-1]["snapshot_id"] == snaps[-1]["id"]

    @pytest.mark.parametrize("case", params)
    def test_load_in_another_process_links_to_the_producer(case: Case, tmp_path: Path):
        require_framework(case.requires)
        home, work = tmp_path / "home", _workdir(tmp_path)
        produced = _only_output(run_scenario(case, home, work, ["save"], task_name="train"), case)
        consumer = run_scenario(case, home, work, ["load", "load", "load"], task_name="eval")
        succeeded(consumer)
        assert consumer["models"]["output"] == []
        [link] = consumer["models"]["loads"]  # three loads of one file: one link
        assert link["snapshot_id"] == produced["snapshots"][-1]["id"]
        [model] = consumer["models"]["input"]
        assert model["id"] == produced["id"] and model["task"] == produced["task"]

        # a copy of the file elsewhere links to the same snapshot (lineage is by content)
        copied = tmp_path / "copied"
        copied.mkdir()
        for item in work.glob(case.copy_files or case.filename):
            target = copied / item.name
            shutil.copytree(item, target) if item.is_dir() else shutil.copyfile(item, target)
        elsewhere = run_scenario(case, home, copied, ["load"], path=str(copied / case.filename), task_name="copy")
        succeeded(elsewhere)
        [link] = elsewhere["models"]["loads"]
        assert link["snapshot_id"] == produced["snapshots"][-1]["id"]

    @pytest.mark.parametrize("case", params)
    def test_logging_failures_never_reach_the_user(case: Case, tmp_path: Path):
        """Database, storage, hashing and autolog bugs, each injected in turn: calls behave as without them."""
        require_framework(case.requires)
        steps = ["save", "load"]
        for fault in FAULTS:
            steps += [f"fault:{fault}", "save", "save", "load", "load", "fault:none"]
        report = run_scenario(case, tmp_path / "home", _workdir(tmp_path), steps)
        out = succeeded(report)  # every save and load returned normally, and loads match the saves
        assert len(set(out["results"])) == 1  # same kind of return value with and without faults
        for fault in FAULTS:
            assert 1 <= len(out["warnings"][fault]) <= 2, (fault, out["warnings"][fault])  # once per kind
        assert out["warnings"]["none"] == []

    @pytest.mark.parametrize("case", params)
    def test_exceptions_pass_through_and_closed_task_records_nothing(case: Case, tmp_path: Path):
        require_framework(case.requires)
        report = run_scenario(case, tmp_path / "home", _workdir(tmp_path), ["bad_save", "close", "save", "load"],
                              before_init=["bad_save"])
        [plain] = report["plain"]["errors"]
        [error] = report["autolog"]["errors"]  # only the save into a missing folder failed
        assert _error_key(error) == _error_key(plain)
        assert report["models"]["output"] == [] and report["models"]["loads"] == []
        assert all(report["autolog"]["checks"])

    return test_saves_are_snapshots, test_load_in_another_process_links_to_the_producer, \
        test_logging_failures_never_reach_the_user, test_exceptions_pass_through_and_closed_task_records_nothing


_CLOCK = re.compile(r"^\[\d{2}:\d{2}:\d{2}\] ")  # XGBoost (dmlc) time-stamps its native errors
_TEMP_NAME = re.compile(r"\.tmp[A-Za-z0-9_]{6,}")  # safetensors names the random temp file it failed to write


def _error_key(error: dict) -> tuple[str, str]:
    return error["type"], _TEMP_NAME.sub(".tmpXXXXXX", _CLOCK.sub("", error["message"]))


def home_and_workdir(tmp_path: Path) -> tuple[Path, Path]:
    """(AUTOLOG_HOME, the scenario's working folder) under tmp_path."""
    return tmp_path / "home", _workdir(tmp_path)


def _workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return work
