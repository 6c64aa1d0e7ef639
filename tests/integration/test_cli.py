"""The `autolog` command on a real store: tables for people, --json for scripts, one-line errors."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autolog import InputModel, Model, OutputModel, Task
from autolog.cli import main
from autolog.storage.hashing import bytes_digest, hex_of


@pytest.fixture
def logged(tmp_path: Path) -> dict:
    """A training task with artifacts and two snapshots, and an evaluation task that loaded one."""
    weights = tmp_path / "model.bin"
    task = Task.init(project_name="cli", task_name="train", output_uri=True, tags=["nightly"])
    task.upload_artifact("params", {"lr": 0.1})
    task.upload_artifact("arr", np.arange(5))
    model = OutputModel(task=task, name="net", framework="PyTorch")
    weights.write_bytes(b"epoch 1")
    model.update_weights(weights_filename=str(weights), iteration=1)
    weights.write_bytes(b"epoch 2")
    model.update_weights(weights_filename=str(weights), iteration=2)
    task.close()
    evaluation = Task.init(project_name="cli", task_name="eval")
    evaluation.connect(InputModel(model.id))
    evaluation.close()
    return {"train": task.id, "eval": evaluation.id, "model": model.id}


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture, *args: str):
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_task_list_table_and_json(logged, capsys):
    code, out, _ = cli(capsys, "task", "list")
    assert code == 0
    assert "project" in out.splitlines()[0] and logged["train"][:12] in out and "completed" in out
    rows = cli_json(capsys, "task", "list", "--project", "cli", "--name", "train")
    assert [r["id"] for r in rows] == [logged["train"]]
    assert cli_json(capsys, "task", "list", "--tag", "nightly")[0]["id"] == logged["train"]
    assert cli_json(capsys, "task", "list", "--status", "failed") == []


def test_task_show_lists_artifacts_and_models_with_snapshots(logged, capsys):
    code, out, _ = cli(capsys, "task", "show", logged["train"][:6])  # a unique id prefix is enough
    assert code == 0
    assert "artifacts (2)" in out and "params" in out and "arr" in out
    assert "output models (1)" in out and "'net'" in out
    data = cli_json(capsys, "task", "show", logged["train"])
    [net] = data["models"]["output"]
    assert [s["seq"] for s in net["snapshots"]] == [1, 2]
    assert {a["name"] for a in data["artifacts"]} == {"params", "arr"}
    used = cli_json(capsys, "task", "show", logged["eval"])
    assert [m["id"] for m in used["models"]["input"]] == [logged["model"]]


def test_model_list_and_show_name_the_tasks_that_loaded_it(logged, capsys):
    rows = cli_json(capsys, "model", "list", "--project", "cli")
    assert [r["id"] for r in rows] == [logged["model"]]
    assert cli_json(capsys, "model", "list", "--framework", "TensorFlow") == []
    code, out, _ = cli(capsys, "model", "show", logged["model"])
    assert code == 0 and "snapshots" in out and "loaded by (1)" in out and logged["eval"][:12] in out
    data = cli_json(capsys, "model", "show", logged["model"])
    assert [s["iteration"] for s in data["snapshots"]] == [1, 2]
    assert [ld["task_id"] for ld in data["loaded_by"]] == [logged["eval"]]


def test_model_download_fetches_a_chosen_snapshot(logged, capsys, tmp_path):
    newest, first = tmp_path / "newest.bin", tmp_path / "first.bin"
    assert cli(capsys, "model", "download", logged["model"], str(newest))[0] == 0
    assert cli(capsys, "model", "download", logged["model"], str(first), "--version", "1")[0] == 0
    assert newest.read_bytes() == b"epoch 2" and first.read_bytes() == b"epoch 1"
    folder = tmp_path / "into"
    folder.mkdir()
    path = cli_json(capsys, "model", "download", logged["model"], str(folder))["path"]
    assert Path(path).parent == folder and Path(path).read_bytes() == b"epoch 2"


def test_model_show_names_each_snapshot_by_its_digest(logged, capsys):
    code, out, _ = cli(capsys, "model", "show", logged["model"])
    assert code == 0
    header = next(line for line in out.splitlines() if line.split()[:2] == ["seq", "iter"])
    assert "digest" in header.split() and "sha256" not in header.split()
    for data in (b"epoch 1", b"epoch 2"):  # 12 hex digits of the BLAKE3 digest, the algorithm left unsaid
        assert hex_of(bytes_digest(data))[:12] in out and "blake3" not in out
    data = cli_json(capsys, "model", "show", logged["model"])
    assert [s["digest"] for s in data["snapshots"]] == [bytes_digest(b"epoch 1"), bytes_digest(b"epoch 2")]


def test_model_sha256_prints_what_sha256sum_would_and_keeps_it(logged, capsys):
    first, newest = hashlib.sha256(b"epoch 1").hexdigest(), hashlib.sha256(b"epoch 2").hexdigest()
    assert [s.sha256 for s in Model(logged["model"]).snapshots] == [None, None]
    code, out, err = cli(capsys, "model", "sha256", logged["model"])
    assert code == 0, err
    assert out == f"{newest}  net snapshot 2\n"  # the hash first, as sha256sum prints it
    data = cli_json(capsys, "model", "sha256", logged["model"][:8], "--version", "1")  # an id prefix, an old one
    assert data == {"model_id": logged["model"], "seq": 1, "digest": bytes_digest(b"epoch 1"), "sha256": first}
    assert [s.sha256 for s in Model(logged["model"]).snapshots] == [first, newest]  # kept in the rows
    code, _, err = cli(capsys, "model", "sha256", logged["model"], "--version", "3")
    assert code == 1 and err.startswith("autolog: error: ") and len(err.strip().splitlines()) == 1


def test_model_sha256_of_a_snapshot_without_content_is_a_one_line_error(capsys):
    task = Task.init(project_name="cli", task_name="remote", output_uri=True)
    model = OutputModel(task=task, name="remote")
    model.update_weights(register_uri="https://127.0.0.1:9/model.pt")  # the discard port: never hashed
    task.close()
    code, out, err = cli(capsys, "model", "sha256", model.id)
    assert (code, out) == (1, "")
    assert err.startswith("autolog: error: Snapshot 1 of model") and "no recorded content" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_artifact_download(logged, capsys, tmp_path):
    target = tmp_path / "params.json"
    assert cli(capsys, "artifact", "download", logged["train"], "params", str(target))[0] == 0
    assert json.loads(target.read_text()) == {"lr": 0.1}


@pytest.mark.parametrize("args, says", [
    (["task", "show", "0" * 32], "no task with id"),
    (["model", "show", "ffff"], "no model whose id starts with 'ffff'"),
    (["artifact", "download", "TASK", "nope", "x"], "has no artifact 'nope'"),
])
def test_known_errors_are_one_line_without_traceback(logged, capsys, args, says):
    if args[0] == "artifact":
        args = [args[0], args[1], logged["train"], *args[3:]]
    code, out, err = cli(capsys, *args)
    assert code == 1
    assert err.startswith("autolog: error: ") and says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_json_output_turns_nan_metadata_into_null(logged, capsys):
    from autolog import Model

    Model(logged["model"]).set_metadata("loss", float("nan"))
    Model(logged["model"]).set_metadata("best", float("inf"))
    code, out, err = cli(capsys, "model", "show", logged["model"], "--json")
    assert code == 0, err

    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    meta = json.loads(out, parse_constant=refuse)["meta"]  # strict, as jq and JavaScript parse
    assert meta["loss"] is None and meta["best"] is None


def test_console_entry_point_runs_as_a_module(logged):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run([sys.executable, "-m", "autolog.cli", "task", "list", "--json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert {t["id"] for t in json.loads(proc.stdout)} == {logged["train"], logged["eval"]}
