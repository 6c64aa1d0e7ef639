"""The `autolog` command with no store yet (says so, creates nothing) and --json that strict parsers accept."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autolog.cli import main
from autolog.config import load_settings

REPO = Path(__file__).resolve().parents[2]

EVERY_COMMAND = {
    "task list": ["task", "list"],
    "task list --json": ["task", "list", "--json"],
    "task show": ["task", "show", "abc123"],
    "model list": ["model", "list"],
    "model show": ["model", "show", "abc123"],
    "model download": ["model", "download", "abc123", "{tmp}/weights.bin"],
    "artifact download": ["artifact", "download", "abc123", "params", "{tmp}/params.json"],
    "sync": ["sync"],
    "gc": ["gc", "--keep-last", "1"],
    "push": ["push", "--to", "sqlite:///{tmp}/team.db", "--storage", "{tmp}/team-objects"],
}


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def everything_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


# -- no store yet ---------------------------------------------------------------------------


@pytest.mark.parametrize("args", EVERY_COMMAND.values(), ids=EVERY_COMMAND.keys())
def test_a_command_on_a_missing_autolog_home_says_so_and_creates_nothing(tmp_path, monkeypatch, capsys, args):
    home = tmp_path / "typo-home"
    monkeypatch.setenv("AUTOLOG_HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    code, out, err = cli(capsys, *(a.format(tmp=work) for a in args))
    assert code == 2, err
    assert out == ""
    assert err.strip() == (
        f"autolog: No autolog store at {home / 'autolog.db'} yet: nothing has been logged with "
        f"AUTOLOG_HOME={home}. Run a script with Task.init() first, or set AUTOLOG_HOME / AUTOLOG_DB_URL."
    )
    assert not home.exists()
    assert everything_under(work) == []  # no download, and no team database for push


def test_an_existing_but_empty_autolog_home_gets_no_database(autolog_home, capsys):
    code, _, err = cli(capsys, "model", "list")
    assert code == 2 and "No autolog store at" in err
    assert everything_under(autolog_home) == []


def test_a_missing_sqlite_file_named_by_autolog_db_url_is_not_created(autolog_home, tmp_path, monkeypatch, capsys):
    db = tmp_path / "elsewhere" / "team.db"
    monkeypatch.setenv("AUTOLOG_DB_URL", f"sqlite:///{db}")
    code, _, err = cli(capsys, "task", "list", "--json")
    assert code == 2
    assert f"No autolog store at {db} yet" in err and "AUTOLOG_DB_URL" in err
    assert len(err.strip().splitlines()) == 1
    assert not db.parent.exists()
    assert everything_under(autolog_home) == []


def test_the_console_command_on_a_missing_home_exits_2_and_creates_nothing(tmp_path):
    home = tmp_path / "nowhere"
    env = dict(os.environ, AUTOLOG_HOME=str(home), PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "autolog.cli", "task", "list"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "No autolog store at" in proc.stderr and "Traceback" not in proc.stderr
    assert not home.exists()


# -- strict JSON ----------------------------------------------------------------------------


def strict_json(text: str):
    """json.loads that refuses NaN, Infinity and -Infinity, as jq and JavaScript do."""

    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def store_with_non_finite_numbers(autolog_home):
    """A real SQLite store holding a task and a model whose parameters and metadata are NaN and infinite."""
    from autolog.db import open_store

    store = open_store(load_settings().db_url)
    task = store.create_task(project="p", name="t", task_type="training", status="completed", status_message=None,
                             output_uri=None, tags=[], ended=None, run_info={}, comment="",
                             parameters={"General": {"lr": math.nan, "clip": math.inf, "ok": 0.5}})
    model = store.create_model(task_id=task.id, origin="api", name="net", project="p",
                               meta={"loss": math.nan, "best": -math.inf, "nested": [math.inf, 1.5], "acc": 0.9})
    assert math.isnan(store.get_model(model.id).meta["loss"])  # the store really holds a NaN
    return task.id, model.id


def test_json_output_is_strict_with_non_finite_numbers_as_null(store_with_non_finite_numbers, capsys):
    task_id, model_id = store_with_non_finite_numbers
    code, out, err = cli(capsys, "model", "show", model_id, "--json")
    assert code == 0, err
    meta = strict_json(out)["meta"]
    assert meta == {"loss": None, "best": None, "nested": [None, 1.5], "acc": 0.9}
    code, out, err = cli(capsys, "model", "list", "--json")
    assert code == 0, err
    assert strict_json(out)[0]["meta"]["loss"] is None
    code, out, err = cli(capsys, "task", "show", task_id, "--json")
    assert code == 0, err
    assert strict_json(out)["parameters"] == {"General": {"lr": None, "clip": None, "ok": 0.5}}


def test_json_help_says_non_finite_numbers_become_null(capsys):
    with pytest.raises(SystemExit):
        main(["model", "show", "--help"])
    assert "NaN and infinite numbers become null" in " ".join(capsys.readouterr().out.split())
