"""`autolog push` from the embedded store into another SQLite file + a local folder (runs everywhere).

Real torch runs are recorded in the test's AUTOLOG_HOME, pushed with the real command in a child
process, then read back through the public API from a different AUTOLOG_HOME pointed at the target.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import torch

from autolog import OutputModel, Task
from autolog.db import open_store
from autolog.db import schema as s

TABLES = ("tasks", "models", "snapshots", "artifacts", "model_loads")


@pytest.fixture
def runs(tmp_path: Path) -> dict:
    """train: a torch model + an artifact; finetune: loads train's model, saves its own."""
    work = tmp_path / "work"
    work.mkdir()
    train = Task.init(project_name="push", task_name="train", output_uri=True)
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(4, 2).state_dict(), work / "model.pt")
    train.upload_artifact("metrics", {"accuracy": 0.91})
    train.close()
    finetune = Task.init(project_name="push", task_name="finetune", output_uri=True)
    state = torch.load(work / "model.pt", weights_only=True)
    state["bias"] += 1
    torch.save(state, work / "finetuned.pt")
    finetune.close()
    return {"train": train.id, "finetune": finetune.id, "work": work,
            "model_bytes": (work / "model.pt").read_bytes(), "finetuned_bytes": (work / "finetuned.pt").read_bytes()}


@pytest.fixture
def team(tmp_path: Path) -> dict:
    return {"url": f"sqlite:///{tmp_path / 'team' / 'team.db'}", "storage": str(tmp_path / "team-storage"),
            "home": tmp_path / "reader-home"}


def push(child_env, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autolog.cli", "push", *args], env=child_env(env),
                          capture_output=True, text=True, timeout=300)


def push_json(child_env, team: dict, *args: str) -> dict:
    proc = push(child_env, "--to", team["url"], "--storage", team["storage"], "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}
    finally:
        engine.dispose()


def files_under(root: str | Path) -> dict[str, int]:
    """Relative path -> inode: a file copied again would get a new inode (temp + rename)."""
    root = Path(root)
    return {str(p.relative_to(root)): p.stat().st_ino for p in root.rglob("*") if p.is_file()}


def news(report: dict) -> dict[str, int]:
    return {k: report[k]["new"] for k in ("tasks", "models", "snapshots", "artifacts", "loads")}


def read_back(monkeypatch, team: dict, runs: dict) -> dict:
    """The pushed runs as another machine sees them: its own AUTOLOG_HOME, the team database."""
    monkeypatch.setenv("AUTOLOG_HOME", str(team["home"]))
    monkeypatch.setenv("AUTOLOG_DB_URL", team["url"])
    train = Task.get_task(project_name="push", task_name="train")
    finetune = Task.get_task(project_name="push", task_name="finetune")
    [used] = finetune.models["input"]
    return {"train": train, "finetune": finetune, "used": used}


def test_push_copies_rows_with_their_ids_and_objects_and_lineage(runs, team, child_env, monkeypatch, autolog_home):
    report = push_json(child_env, team)
    assert news(report) == {"tasks": 2, "models": 2, "snapshots": 2, "artifacts": 1, "loads": 1}
    assert report["objects"]["copied"] == 3 and report["objects"]["bytes_copied"] > 0

    got = read_back(monkeypatch, team, runs)
    assert (got["train"].id, got["finetune"].id) == (runs["train"], runs["finetune"])
    assert got["train"].status == "completed"
    model = got["train"].models["output"][-1]
    local = model.get_local_copy()
    assert local.startswith(team["storage"] + os.sep)  # the team's copy, not this machine's store
    assert Path(local).read_bytes() == runs["model_bytes"]
    ft_local = got["finetune"].models["output"][-1].get_local_copy()
    assert Path(ft_local).read_bytes() == runs["finetuned_bytes"]
    assert got["train"].artifacts["metrics"].get() == {"accuracy": 0.91}
    assert got["used"].id == model.id  # the load still names the snapshot the train task saved
    [load] = open_store(team["url"]).loads_by_task(runs["finetune"])
    assert load.snapshot_id == model.snapshot().id
    # Same relative keys as in the source's storage.
    assert set(files_under(team["storage"])) == set(files_under(autolog_home / "storage"))


def test_pushing_twice_changes_nothing_and_reports_nothing_new(runs, team, child_env):
    push_json(child_env, team)
    rows, objects = counts(team["url"]), files_under(team["storage"])
    again = push_json(child_env, team)
    assert news(again) == dict.fromkeys(news(again), 0)
    assert again["tasks"]["existing"] == 2 and again["objects"] == {"copied": 0, "already_there": 0, "bytes_copied": 0}
    assert counts(team["url"]) == rows and files_under(team["storage"]) == objects
    human = push(child_env, "--to", team["url"], "--storage", team["storage"])
    assert human.returncode == 0 and "tasks 0 new" in human.stdout and len(human.stdout.splitlines()) == 1


def test_dry_run_writes_nothing(runs, team, child_env):
    report = push_json(child_env, team, "--dry-run")
    assert report["dry_run"] and news(report)["tasks"] == 2 and report["objects"]["copied"] == 3
    assert not Path(team["url"][len("sqlite:///"):]).exists() and not Path(team["storage"]).exists()
    push_json(child_env, team)
    rows = counts(team["url"])
    assert news(push_json(child_env, team, "--dry-run"))["tasks"] == 0 and counts(team["url"]) == rows


def test_one_task_brings_the_rows_its_loads_point_at(runs, team, child_env, monkeypatch, autolog_home):
    report = push_json(child_env, team, "--task", runs["finetune"][:8])
    # finetune's own task/model/snapshot/load + the train task, model and the snapshot it loaded
    assert news(report) == {"tasks": 2, "models": 2, "snapshots": 2, "artifacts": 0, "loads": 1}
    got = read_back(monkeypatch, team, runs)
    assert Path(got["used"].get_local_copy()).read_bytes() == runs["model_bytes"]
    assert "metrics" not in got["train"].artifacts  # the rest of train is not pushed...
    monkeypatch.delenv("AUTOLOG_DB_URL")
    monkeypatch.setenv("AUTOLOG_HOME", str(autolog_home))
    rest = push_json(child_env, team, "--project", "push")  # ...until it is
    assert news(rest)["artifacts"] == 1 and news(rest)["tasks"] == 0 and rest["tasks"]["existing"] == 2


def test_a_running_task_is_completed_by_a_later_push(team, child_env, tmp_path):
    task = Task.init(project_name="push", task_name="long", output_uri=True)
    torch.save(torch.zeros(3), tmp_path / "ckpt.pt")
    task.upload_artifact("notes", {"epochs": 1})
    assert task.flush()
    first = push_json(child_env, team)
    assert first["tasks"]["new"] == 1 and open_store(team["url"]).get_task(task.id).status == "running"
    torch.save(torch.ones(3), tmp_path / "ckpt.pt")
    task.upload_artifact("notes", {"epochs": 2})  # replaced: a new id under the same name
    task.close()
    second = push_json(child_env, team)
    assert second["tasks"]["updated"] == 1 and second["models"]["updated"] == 1 and second["snapshots"]["new"] == 1
    assert second["artifacts"] == {"new": 0, "updated": 1, "existing": 0}
    target = open_store(team["url"])
    assert target.get_task(task.id).status == "completed"
    [model] = target.find_models(task_id=task.id)
    assert [snap.status for snap in target.snapshots_of(model.id)] == ["stored", "stored"]
    [notes] = target.artifacts_of(task.id)
    assert notes.id == task.artifacts["notes"]._record.id
    assert Task.get_task(task.id).artifacts["notes"].get() == {"epochs": 2}


def test_a_pending_snapshot_in_the_target_is_settled_by_the_push(runs, team, child_env):
    """The rule for snapshots: pending there, stored here -> the source's row (and its object) wins."""
    source = open_store(f"sqlite:///{Path(os.environ['AUTOLOG_HOME']) / 'autolog.db'}")
    push_json(child_env, team, "--task", runs["train"])
    target = open_store(team["url"])
    [model] = target.find_models(task_id=runs["train"])
    [snap] = target.snapshots_of(model.id)
    target.update_snapshot(snap.id, status="pending", uri=None)
    os.remove(snap.uri)
    report = push_json(child_env, team, "--task", runs["train"])
    assert report["snapshots"]["updated"] == 1 and report["objects"]["copied"] == 1
    settled = target.get_snapshot(snap.id)
    assert (settled.status, settled.uri) == ("stored", snap.uri)
    assert settled.digest is not None and settled.digest == source.get_snapshot(snap.id).digest
    assert Path(settled.uri).read_bytes() == runs["model_bytes"]


KILLED_MID_SAVE = """
import os, sys, threading
import torch
from autolog import OutputModel, Task
from autolog.snapshots import steps
from autolog.snapshots.pipeline import wait_for_journal
from autolog.storage import objects

steps.read_inline = lambda job, limit: False  # through the stager, whose copy never finishes...
objects.copy_out = lambda *args, **kwargs: threading.Event().wait()
task = Task.init(project_name="push", task_name="killed", output_uri=True)
torch.save(torch.arange(5), sys.argv[1])
wait_for_journal()  # its row is written a few ms after the save
print(task.id, flush=True)
os._exit(0)  # ...and the process dies: its snapshot stays `pending` in the journal
"""


def test_a_task_with_pending_snapshots_is_held_back_until_autolog_sync(runs, team, child_env, tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(tmp_path / "k.pt")], env=child_env(),
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == 0, killed.stderr
    killed_id = killed.stdout.strip()
    proc = push(child_env, "--to", team["url"], "--storage", team["storage"])
    assert proc.returncode == 1
    assert proc.stderr.startswith("autolog: error: 1 task(s) not pushed") and "autolog sync" in proc.stderr
    assert "tasks 2 new" in proc.stdout  # the other runs went in
    target = open_store(team["url"])
    assert {t.id for t in target.find_tasks()} == {runs["train"], runs["finetune"]}
    sync = subprocess.run([sys.executable, "-m", "autolog.cli", "sync"], env=child_env(), capture_output=True,
                          text=True, timeout=300)
    assert sync.returncode == 0, sync.stderr
    report = push_json(child_env, team)
    assert report["tasks"]["new"] == 1 and report["snapshots"]["new"] == 1 and report["held_back"] == {}
    [model] = target.find_models(task_id=killed_id)
    [snap] = target.snapshots_of(model.id)
    assert snap.status == "stored" and torch.equal(torch.load(snap.uri, weights_only=True), torch.arange(5))


FAIL_SECOND_UPLOAD = """
import sys
from autolog.cli import main
from autolog.storage.blobstore import BlobStore

original, calls = BlobStore.put_file, []


def put_file(self, local_path, key):
    calls.append(key)
    if len(calls) == 2:
        raise PermissionError(13, "Permission denied (simulated)", key)
    return original(self, local_path, key)


BlobStore.put_file = put_file
sys.exit(main(sys.argv[1:]))
"""


def test_an_interrupted_push_leaves_no_row_without_its_object_and_a_rerun_completes_it(runs, team, child_env):
    args = ["push", "--to", team["url"], "--storage", team["storage"]]
    proc = subprocess.run([sys.executable, "-c", FAIL_SECOND_UPLOAD, *args], env=child_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1 and "Permission denied (simulated)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert all(n == 0 for n in counts(team["url"]).values())  # no row names an object that is not there
    copied_first = files_under(team["storage"])
    assert len(copied_first) == 1
    report = push_json(child_env, team)
    assert report["objects"] == {"copied": 2, "already_there": 1, "bytes_copied": report["objects"]["bytes_copied"]}
    assert {k: v for k, v in files_under(team["storage"]).items() if k in copied_first} == copied_first
    target = open_store(team["url"])
    for task_id in (runs["train"], runs["finetune"]):
        for model in target.find_models(task_id=task_id):
            assert all(Path(snap.uri).is_file() for snap in target.snapshots_of(model.id))
        assert all(Path(a.uri).is_file() for a in target.artifacts_of(task_id))


def test_without_storage_local_objects_are_refused_with_the_fix(runs, team, child_env):
    proc = push(child_env, "--to", team["url"])
    assert proc.returncode == 1 and "--storage" in proc.stderr and "Traceback" not in proc.stderr
    assert counts(team["url"]) == dict.fromkeys(TABLES, 0)
    configured = push(child_env, "--to", team["url"], "--json", env={"AUTOLOG_DEFAULT_OUTPUT_URI": team["storage"]})
    assert configured.returncode == 0, configured.stderr
    assert json.loads(configured.stdout)["storage"] == team["storage"] and files_under(team["storage"])


def test_a_corrupted_local_object_is_not_pushed(runs, team, child_env):
    uri = Task.get_task(task_id=runs["train"]).models["output"][-1].url
    Path(uri).write_bytes(b"not the saved weights")
    proc = push(child_env, "--to", team["url"], "--storage", team["storage"], "--task", runs["train"])
    assert proc.returncode == 1 and "does not match its recorded content hash" in proc.stderr
    assert counts(team["url"])["tasks"] == 0


def test_a_local_object_with_no_recorded_hash_is_not_pushed(runs, team, child_env):
    """A snapshot registered by URI whose background hash never finished has no digest to check."""
    store = open_store(f"sqlite:///{Path(os.environ['AUTOLOG_HOME']) / 'autolog.db'}")
    [model] = [m for m in store.find_models(task_id=runs["train"])][:1]
    snap = store.snapshots_of(model.id)[-1]
    store.update_snapshot(snap.id, digest=None)
    proc = push(child_env, "--to", team["url"], "--storage", team["storage"], "--task", runs["train"])
    assert proc.returncode == 1 and "has no recorded content hash" in proc.stderr and "Traceback" not in proc.stderr
    assert counts(team["url"])["tasks"] == 0


def test_pushing_into_its_own_store_is_refused(runs, child_env):
    own = f"sqlite:///{Path(os.environ['AUTOLOG_HOME']) / 'autolog.db'}"
    proc = push(child_env, "--to", own, "--storage", "/tmp/x")
    assert proc.returncode == 1 and "this machine's own store" in proc.stderr


def test_a_paths_only_run_keeps_local_snapshots_as_recorded_and_moves_its_artifact(team, child_env, tmp_path,
                                                                                    monkeypatch):
    """output_uri=None: snapshots are `local` (path + hash, nothing stored) and stay so; the artifact went
    to a default_output_uri configured back then, found by its layout key once that config is gone."""
    elsewhere = tmp_path / "old-default"
    monkeypatch.setenv("AUTOLOG_DEFAULT_OUTPUT_URI", str(elsewhere))
    task = Task.init(project_name="push", task_name="paths only", output_uri=None)
    torch.save(torch.arange(3), tmp_path / "w.pt")
    task.upload_artifact("table", {"rows": 3})
    task.close()
    monkeypatch.delenv("AUTOLOG_DEFAULT_OUTPUT_URI")
    report = push_json(child_env, team)
    assert report["snapshots"]["new"] == 1 and report["objects"]["copied"] == 1  # only the artifact
    target = open_store(team["url"])
    [model] = target.find_models(task_id=task.id)
    [snap] = target.snapshots_of(model.id)
    assert (snap.status, snap.uri) == ("local", str(tmp_path / "w.pt"))
    [artifact] = target.artifacts_of(task.id)
    key = Path(artifact.uri).relative_to(team["storage"])
    assert key.parts[:2] == ("push", f"paths_only.{task.id}") and key.parts[2] == "artifacts"
    assert json.loads(Path(artifact.uri).read_text()) == {"rows": 3}


def test_folders_registered_files_and_shared_content_each_land_once(team, child_env, tmp_path, monkeypatch):
    task = Task.init(project_name="push", task_name="assorted", output_uri=True)
    folder = tmp_path / "saved_model"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "variables" / "v.data").write_bytes(b"weights" * 100)
    OutputModel(task=task, name="package").update_weights_package(weights_path=str(folder))
    registered = tmp_path / "elsewhere" / "best.bin"  # recorded where it is, outside any storage root
    registered.parent.mkdir()
    registered.write_bytes(b"registered weights")
    OutputModel(task=task, name="registered").update_weights(register_uri=str(registered))
    for name in ("a", "b"):  # the same bytes twice: stored once, both snapshots name that object
        (tmp_path / f"{name}.bin").write_bytes(b"same weights")
        OutputModel(task=task, name=name).update_weights(weights_filename=str(tmp_path / f"{name}.bin"))
    task.close()

    report = push_json(child_env, team)
    assert report["snapshots"]["new"] == 4 and report["objects"]["copied"] == 3
    assert len(files_under(team["storage"])) == 2 + 1 + 1
    monkeypatch.setenv("AUTOLOG_HOME", str(team["home"]))
    monkeypatch.setenv("AUTOLOG_DB_URL", team["url"])
    models = Task.get_task(task_id=task.id).models["output"]
    package = Path(models["package"].get_local_copy())
    assert package.is_relative_to(team["storage"]) and package.name == "saved_model"
    assert {p.relative_to(package).as_posix(): p.read_bytes() for p in package.rglob("*") if p.is_file()} == {
        "saved_model.pb": b"graph", "variables/v.data": b"weights" * 100}
    copy = Path(models["registered"].get_local_copy())
    assert copy.read_bytes() == b"registered weights" and copy.is_relative_to(team["storage"])
    assert copy.relative_to(team["storage"]).parts[:3] == ("push", f"assorted.{task.id}", "models")
    assert models["a"].url == models["b"].url and Path(models["b"].get_local_copy()).read_bytes() == b"same weights"


def test_reported_scalars_single_values_and_images_come_along_once(team, child_env, monkeypatch, autolog_home):
    """Logger's rows have no shared ids: they are matched by what they are, so a second push of a task
    that reported more since adds just that, and a single value reported again is updated."""
    import numpy as np

    task = Task.init(project_name="push", task_name="reporting", output_uri=True)
    logger = task.get_logger()
    for i in range(3):
        logger.report_scalar("loss", "train", [0.5, float("nan"), float("inf")][i], i)
    logger.report_single_value("accuracy", 0.5)
    logger.report_image("samples", "s", 0, image=np.full((2, 2), 9, dtype=np.uint8))
    logger.report_text("first", print_console=False)
    assert task.flush()
    first = push_json(child_env, team)
    assert (first["scalars"]["new"], first["single_values"]["new"], first["reports"]["new"]) == (3, 1, 2)
    assert first["objects"]["copied"] == 1
    logger.report_scalar("loss", "train", 0.25, 3)
    logger.report_single_value("accuracy", 0.75)  # reported again: the pushed value is replaced
    task.close()
    second = push_json(child_env, team)
    assert second["scalars"] == {"new": 1, "updated": 0, "existing": 3}
    assert second["single_values"] == {"new": 0, "updated": 1, "existing": 0}
    assert second["reports"] == {"new": 0, "updated": 0, "existing": 2} and second["objects"]["copied"] == 0
    third = push_json(child_env, team)
    assert [third[k]["new"] + third[k]["updated"] for k in ("scalars", "single_values", "reports")] == [0, 0, 0]

    monkeypatch.setenv("AUTOLOG_HOME", str(team["home"]))
    monkeypatch.setenv("AUTOLOG_DB_URL", team["url"])
    pushed = Task.get_task(task_id=task.id)
    line = pushed.get_reported_scalars()["loss"]["train"]
    assert line["x"] == [0, 1, 2, 3] and line["y"][0] == 0.5 and line["y"][1] != line["y"][1]
    assert line["y"][2:] == [float("inf"), 0.25]
    assert pushed.get_reported_single_values() == {"accuracy": 0.75}
    assert pushed.get_reported_console_output() == ["first"]
    [image] = pushed.get_debug_samples("samples", "s")
    assert image["url"].startswith(team["storage"] + os.sep)
    source = Path(task.get_debug_samples("samples", "s")[0]["url"])
    assert Path(image["url"]).read_bytes() == source.read_bytes()
    assert Path(image["url"]).relative_to(team["storage"]) == source.relative_to(autolog_home / "storage")


def test_a_models_reports_come_along_with_the_model_they_are_of(team, child_env, monkeypatch):
    """A model's reports (Model.report_scalar & co.) are pushed with the task that made them, and the model,
    with its own task, comes along even when that task is not pushed (the rows point at it)."""
    from autolog import Model

    train = Task.init(project_name="push", task_name="train", output_uri=True)
    model = OutputModel(task=train, name="net")
    model.report_single_value("epochs", 8)
    train.close()
    evaluate = Task.init(project_name="push", task_name="evaluate", output_uri=True)
    Model(model.id).report_scalar("eval", "accuracy", 0.9, 0)
    Model(model.id).report_single_value("epochs", 9)  # reported again, by another task: replaces it
    evaluate.get_logger().report_single_value("epochs", 1)  # the task's own: kept apart
    evaluate.close()
    first = push_json(child_env, team, "--task", evaluate.id)
    assert (first["scalars"]["new"], first["single_values"]["new"]) == (1, 2)
    monkeypatch.setenv("AUTOLOG_HOME", str(team["home"]))
    monkeypatch.setenv("AUTOLOG_DB_URL", team["url"])
    pushed = Model(model.id)
    assert pushed.get_reported_scalars()["eval"]["accuracy"]["y"] == [0.9]
    assert pushed.get_reported_single_values() == {"epochs": 9.0}
    assert Task.get_task(task_id=evaluate.id).get_reported_single_values() == {"epochs": 1.0}
