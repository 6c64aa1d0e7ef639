"""Team mode: every feature works unchanged with PostgreSQL (AUTOLOG_DB_URL) and S3 (output_uri).

Each test gets a fresh database and a fresh bucket (tests/conftest.py). Objects are checked by
reading the bucket directly with a fresh s3fs client, never only through autolog.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from team_helpers import (assert_stored_on_s3, cli, cli_json, database_text, keys_under, last_json, object_bytes,
                          object_sha256, run_script, s3, sha256_bytes, sibling_module, team)  # noqa: F401 - fixture
from pipeline_helpers import tensor, wait_for_file  # noqa: I001 - importable once team_helpers ran

from autolog import InputModel, Model, OutputModel, Task
from autolog.errors import StorageError
from autolog.storage.hashing import bytes_digest

import services

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

two_process = sibling_module("integration/test_two_process.py", "team_two_process_scripts")


def test_issue_example_round_trips_through_postgres_and_s3(team, tmp_path, helpers_dir, autolog_home):
    """The issue's example (every artifact kind, OutputModel, update_output_model) written by one process
    and read back by another, with nothing in the local store and every object's bytes in the bucket."""
    work = tmp_path / "work"
    work.mkdir()
    env = team.env(PYTHONPATH=f"{helpers_dir}{os.pathsep}{team.env()['PYTHONPATH']}")
    ids = last_json(run_script(two_process.WRITER, str(work), env=env, cwd=tmp_path, name="writer"))
    got = last_json(run_script(two_process.READER, ids["task_id"], ids["model_id"], env=env, cwd=tmp_path,
                               name="reader"))

    assert got["by_name"] == ids["task_id"] and got["status"] == "completed"
    assert got["types"] == {"data": "file", "folder": "folder", "person dictionary": "json", "arr": "numpy",
                            "df": "pandas", "img": "image", "obj": "pickle"}
    assert got["data"] == "a,b\n1,2\n" and got["person"] == {"name": "Erik", "age": 30}
    assert got["folder"] == {"top.txt": "top", os.path.join("sub", "inner.txt"): "inner"}
    assert got["arr"] == list(range(10)) and got["df"] == {"x": [1, 2], "y": ["a", "b"]}
    assert got["img"] == [[4, 3], [10, 20, 30]] and got["obj"] == "Person('Erik', 30)"
    assert got["output_names"] == ["train", "best"] and got["newest"] == "weights at iteration 5"
    assert got["best"] == [["best"], 5] and got["model"] == "weights at iteration 3"
    assert got["query"] == ["best", "train"]

    task = Task.get_task(task_id=ids["task_id"])
    assert task.output_uri == team.output_uri
    artifacts = task.artifacts
    for art in artifacts.values():  # each artifact is an object in the bucket holding the recorded bytes
        assert art.url.startswith(team.output_uri + "/"), art.url
        assert object_sha256(art.url) == art.sha256, art.name
    for model in task.models["output"]:
        for snap in model.snapshots:
            assert_stored_on_s3(snap, team)
    stored = set(keys_under(team.output_uri))
    assert {a.url for a in artifacts.values()} | {s.uri for m in task.models["output"] for s in m.snapshots} == stored
    assert not (autolog_home / "autolog.db").exists(), "team mode must not fall back to the embedded SQLite file"
    assert not (autolog_home / "storage").exists(), "nothing may be stored in the local default folder"
    text = database_text(team.db_url)
    assert services.S3_ENV["AWS_SECRET_ACCESS_KEY"] not in text
    assert team.password not in text, "the database password was written to the database"


CAPTURE = """
import hashlib, json, sys
import joblib, keras, numpy as np, torch
from sklearn.linear_model import LinearRegression
from autolog import Task
from autolog.storage.hashing import file_digest

work = sys.argv[1]
task = Task.init(project_name="team", task_name="capture", output_uri=True)
torch.manual_seed(0)
torch.save(torch.nn.Linear(3, 2).state_dict(), f"{work}/net.pt")
net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
net.save(f"{work}/net.keras")
joblib.dump(LinearRegression().fit(np.eye(3), [1.0, 2.0, 3.0]), f"{work}/reg.joblib")
task.close()
names = ("net.pt", "net.keras", "reg.joblib")
sha = {n: hashlib.sha256(open(f"{work}/{n}", "rb").read()).hexdigest() for n in names}
print(json.dumps({"task_id": task.id, "sha256": sha, "digest": {n: file_digest(f"{work}/{n}") for n in names}}))
"""

LOAD = """
import json, sys
import joblib, keras, torch
from autolog import Task

work = sys.argv[1]
task = Task.init(project_name="team", task_name="evaluate")
torch.load(f"{work}/net.pt", weights_only=True)
keras.saving.load_model(f"{work}/net.keras")
joblib.load(f"{work}/reg.joblib")
task.close()
print(json.dumps({"task_id": task.id}))
"""


def test_captured_saves_of_three_frameworks_go_to_s3_and_loads_link_to_them(team, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    saved = last_json(run_script(CAPTURE, work, env=team.env(), cwd=tmp_path, name="capture"))
    loaded = last_json(run_script(LOAD, work, env=team.env(), cwd=tmp_path, name="evaluate"))

    producer = Task.get_task(project_name="team", task_name="capture")
    assert producer.id == saved["task_id"]
    models = {m.name: m for m in producer.models["output"]}
    assert sorted(models) == ["net.keras", "net.pt", "reg.joblib"]
    assert {n: m.framework for n, m in models.items()} == {
        "net.pt": "PyTorch", "net.keras": "Keras", "reg.joblib": "scikit-learn"}
    for name, model in models.items():
        [snap] = model.snapshots
        assert_stored_on_s3(snap, team, expected_digest=saved["digest"][name])
        assert sha256_bytes(Path(model.get_local_copy()).read_bytes()) == saved["sha256"][name]

    consumer = Task.get_task(task_id=loaded["task_id"])
    assert sorted(m.id for m in consumer.models["input"]) == sorted(m.id for m in models.values())
    for model in models.values():
        assert model.loaded_by == [consumer.id]
    loads = consumer._ctx.store.loads_by_task(consumer.id)
    assert {ld.snapshot_id for ld in loads} == {m.snapshots[0].id for m in models.values()}


def test_model_apis_on_postgres_and_s3(team, tmp_path):
    weights, folder = tmp_path / "model.bin", tmp_path / "export"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "variables" / "v.data").write_bytes(b"\x00\x01" * 100)
    task = Task.init(project_name="team", task_name="api", output_uri=True, tags=["nightly", "gpu"])
    task.connect({"lr": 0.1, "layers": [64, 32], "nested": {"ok": True}})
    model = OutputModel(task=task, name="net", framework="PyTorch", tags=["candidate"],
                        config_dict={"hidden": [64, 32]}, label_enumeration={"cat": 0, "dog": 1})
    for i in (1, 2):
        weights.write_bytes(f"epoch {i}".encode())
        model.update_weights(weights_filename=str(weights), iteration=i)
    model.set_metadata("accuracy", {"top1": 0.9, "classes": ["cat", "dog"]})
    package = OutputModel(task=task, name="package")
    package.update_weights_package(weights_path=str(folder), iteration=3)
    weights.write_bytes(b"best weights")
    task.update_output_model(model_path=str(weights), name="best", iteration=5, tags=["best"])
    elsewhere = f"{team.output_uri}/registered/model.bin"
    s3().pipe_file(elsewhere[len("s3://"):], b"registered elsewhere")
    OutputModel(task=task, name="registered").update_weights(register_uri=elsewhere, iteration=7)
    task.close()

    net = Model(model.id)
    assert [s.iteration for s in net.snapshots] == [1, 2]
    for snap in net.snapshots:
        assert_stored_on_s3(snap, team)
    assert Path(net.get_local_copy(version=1)).read_bytes() == b"epoch 1"
    assert Path(net.get_local_copy()).read_bytes() == b"epoch 2"
    assert net.sha256(1) == sha256_bytes(b"epoch 1")  # on demand, from the verified copy; then kept in the row
    assert [s.sha256 for s in Model(model.id).snapshots] == [sha256_bytes(b"epoch 1"), None]
    assert net.tags == ["candidate"] and net.framework == "PyTorch"
    assert net.metadata == {"accuracy": {"top1": 0.9, "classes": ["cat", "dog"]}}
    assert net.config_dict == {"hidden": [64, 32]} and net.labels == {"cat": 0, "dog": 1}
    [pkg] = Model(package.id).snapshots
    assert_stored_on_s3(pkg, team)
    local = Path(Model(package.id).get_local_copy())
    assert (local / "variables" / "v.data").read_bytes() == b"\x00\x01" * 100
    assert Model.query_models(project_name="team", model_name="best")[0].tags == ["best"]
    assert Model.query_models(project_name="team", tags=["candidate"]) == [net]
    [registered] = Model.query_models(model_name="registered")[0].snapshots
    assert (registered.uri, registered.digest) == (elsewhere, bytes_digest(b"registered elsewhere"))
    registered_model = Model.query_models(model_name="registered")[0]
    assert registered_model.sha256() == sha256_bytes(b"registered elsewhere")

    assert Task.get_task(task_id=task.id[:10]).get_parameters_as_dict(cast=True) == {
        "General": {"lr": 0.1, "layers": [64, 32], "nested": {"ok": True}}}
    assert [t.id for t in Task.get_tasks(project_name="team", tags=["gpu", "nightly"])] == [task.id]
    assert Task.get_tasks(project_name="team", tags=["gpu", "cpu"]) == []
    assert Task.get_tasks(task_filter={"status": ["completed"]}) == [task]
    assert task.run_info["pid"] == os.getpid()

    other = Task.init(project_name="team", task_name="eval")
    other.connect(InputModel(name="net", project="team"))
    imported = InputModel.import_model(weights, name="from disk", framework="PyTorch")
    other.close()
    assert [m.id for m in Task.get_task(task_id=other.id).models["input"]] == [model.id]
    assert net.loaded_by == [other.id]
    assert imported.origin == "imported" and imported.snapshot().digest == bytes_digest(b"best weights")
    later = Task.init(project_name="team", task_name="eval")  # same name: get_task returns the newest
    later.close()
    assert Task.get_task(project_name="team", task_name="eval").id == later.id
    assert [t.id for t in Task.get_tasks(project_name="team", task_name="eval")] == [later.id, other.id]


def test_cli_reads_the_team_store(team, tmp_path):
    weights = tmp_path / "model.bin"
    task = Task.init(project_name="cli", task_name="train", output_uri=True, tags=["nightly"])
    task.upload_artifact("params", {"lr": 0.1})
    task.upload_artifact("arr", np.arange(5))
    model = OutputModel(task=task, name="net", framework="PyTorch")
    for i in (1, 2):
        weights.write_bytes(f"epoch {i}".encode())
        model.update_weights(weights_filename=str(weights), iteration=i)
    task.close()
    evaluation = Task.init(project_name="cli", task_name="eval")
    evaluation.connect(InputModel(model.id))
    evaluation.close()
    env = team.env(home=tmp_path / "cli-home")  # another machine's home: everything comes from PG + S3

    assert [r["id"] for r in cli_json(env, "task", "list", "--project", "cli", "--tag", "nightly")] == [task.id]
    shown = cli_json(env, "task", "show", task.id[:8].upper())  # a prefix in any case, as on SQLite
    assert {a["name"] for a in shown["artifacts"]} == {"params", "arr"}
    assert [s["seq"] for s in shown["models"]["output"][0]["snapshots"]] == [1, 2]
    assert [r["id"] for r in cli_json(env, "model", "list", "--project", "cli")] == [model.id]
    assert [ld["task_id"] for ld in cli_json(env, "model", "show", model.id)["loaded_by"]] == [evaluation.id]
    human = cli(env, "task", "show", task.id)
    assert human.returncode == 0 and "artifacts (2)" in human.stdout and team.output_uri in human.stdout
    assert cli(env, "model", "download", model.id, str(tmp_path / "v1.bin"), "--version", "1").returncode == 0
    assert (tmp_path / "v1.bin").read_bytes() == b"epoch 1"
    assert cli(env, "artifact", "download", task.id, "params", str(tmp_path / "p.json")).returncode == 0
    assert json.loads((tmp_path / "p.json").read_text()) == {"lr": 0.1}
    for proc in (human, cli(env, "task", "list"), cli(env, "model", "show", model.id)):
        assert services.S3_ENV["AWS_SECRET_ACCESS_KEY"] not in proc.stdout + proc.stderr
        assert team.password not in proc.stdout + proc.stderr


crash_recovery = sibling_module("pipeline/test_crash_recovery.py", "team_crash_recovery_scripts")


def test_sync_uploads_what_a_killed_process_left_pending(team, tmp_path):
    """A child whose uploads hang is SIGKILLed with 3 staged snapshots; `autolog sync` puts them in the bucket."""
    ckpt, marker = tmp_path / "ckpt.pt", tmp_path / "stuck"
    script = tmp_path / "killed.py"
    script.write_text(crash_recovery.CHILD)
    proc = subprocess.Popen([sys.executable, str(script), team.output_uri, str(ckpt), str(marker), "upload"],
                            env=team.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_file(marker, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    task_id = Path(f"{marker}.task").read_text()
    [model] = Task.get_task(task_id=task_id).models["output"]
    assert [s.status for s in model.snapshots] == ["pending"] * 3
    assert keys_under(team.output_uri) == []

    report = cli_json(team.env(), "sync")

    assert [s["seq"] for s in report["stored"]] == [1, 2, 3] and report["tasks_marked_failed"] == [task_id]
    for snap in model.snapshots:
        assert_stored_on_s3(snap, team)
        assert torch.equal(torch.load(model.get_local_copy(snap.seq), weights_only=True), tensor(snap.seq - 1))
    assert Task.get_task(task_id=task_id).status == "failed"
    assert cli_json(team.env(), "sync")["stored"] == []


def test_retention_and_gc_delete_objects_from_the_bucket(team, tmp_path):
    task = Task.init(project_name="team", task_name="retention", output_uri=True, keep_last=2)
    for step in (0, 1, 2, 3, 4):
        torch.save(tensor(step), tmp_path / "ckpt.pt")
    for step in (5, 5):  # same bytes twice: the second snapshot reuses the first one's object
        torch.save(tensor(step), tmp_path / "other.pt")
    task.close()
    snaps = task.models["output"]["ckpt.pt"].snapshots
    assert [s.status for s in snaps] == ["deleted"] * 3 + ["stored"] * 2
    other = task.models["output"]["other.pt"].snapshots
    assert other[1].uri == other[0].uri, "precondition: the repeated content was deduplicated"
    assert set(keys_under(team.output_uri)) == {s.uri for s in snaps[3:]} | {other[0].uri}
    for snap in snaps[3:]:
        assert_stored_on_s3(snap, team)

    report = cli_json(team.env(), "gc", "--keep-last", "1")

    assert sorted(len(v) for v in report["deleted"].values()) == [1, 1]
    snaps = task.models["output"]["ckpt.pt"].snapshots
    assert [s.status for s in snaps] == ["deleted"] * 4 + ["stored"]
    assert set(keys_under(team.output_uri)) == {snaps[4].uri, other[0].uri}, "a shared object must stay"
    assert torch.equal(torch.load(task.models["output"]["other.pt"].get_local_copy(), weights_only=True), tensor(5))


def test_output_uri_at_the_bucket_root(team, tmp_path):
    root = "s3://" + team.bucket
    task = Task.init(project_name="team", task_name="root", output_uri=root)
    torch.save(tensor(1), tmp_path / "ckpt.pt")
    task.upload_artifact("d", {"a": 1})
    task.close()
    [snap] = task.models["output"][-1].snapshots
    assert snap.uri.startswith(root + "/team/root.")
    assert_stored_on_s3(snap, team)
    assert Task.get_task(task_id=task.id).artifacts["d"].get() == {"a": 1}


def test_output_uri_of_a_missing_bucket_fails_init_and_creates_no_bucket(team):
    missing = "autolog-missing-" + team.bucket.rsplit("-", 1)[-1]
    with pytest.raises(StorageError, match="not writable"):
        Task.init(project_name="team", task_name="typo", output_uri=f"s3://{missing}/runs")
    assert not s3().exists(missing), "a typo in output_uri must not create a bucket"


def test_a_reader_that_listed_a_folder_sees_later_changes_by_other_processes(team):
    """fsspec caches listings per filesystem instance: a long-lived process must not trust them."""
    from autolog.storage.blobstore import BlobStore, list_files

    store = BlobStore(team.output_uri)
    folder = store.url("shared")
    store_fs = s3()
    store_fs.pipe_file(f"{folder}/a.bin"[len("s3://"):], b"a")
    assert list_files(folder) == ["a.bin"]  # this process has now listed the folder
    store_fs.pipe_file(f"{folder}/b.bin"[len("s3://"):], b"b")  # another process adds an object...
    assert store.exists(f"{folder}/b.bin")
    assert object_bytes(f"{folder}/b.bin") == b"b"
    assert list_files(folder) == ["a.bin", "b.bin"]
    store_fs.rm_file(f"{folder}/a.bin"[len("s3://"):])  # ...and deletes one
    assert not store.exists(f"{folder}/a.bin")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytestmark)])
def test_deduplication_never_reuses_an_object_of_another_output_uri_differing_in_case(backend, request, tmp_path):
    """Same bytes saved into .../Runs and .../runs: two stores (S3 keys and most file systems are case
    sensitive), so each keeps its own object. Answered alike by SQLite (whose LIKE ignores case) and PG."""
    if backend == "postgres":
        base = request.getfixturevalue("team").output_uri
    else:
        base = str(tmp_path / "store")
    uris = [f"{base}/Runs", f"{base}/runs"]
    for uri in uris:
        with Task.init(project_name="team", task_name="dedupe", output_uri=uri) as task:
            torch.save(tensor(1), tmp_path / "same.pt")
        [snap] = task.models["output"][-1].snapshots
        assert snap.status == "stored" and snap.uri.startswith(uri + "/"), (uri, snap.uri)
