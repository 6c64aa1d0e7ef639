"""The JSON API of `autolog ui` over a store written by real SDK calls (ui_helpers.CHAIN_SCRIPT): every route
of the contract, the lineage of the chain from each end, and verified downloads."""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from blake3 import blake3

from ui_helpers import assert_error, build_chain, check_long_series, json_ok, make_client, write_long_series

REPO = Path(__file__).resolve().parents[2]
TASK_ROW = {"id", "project", "name", "status", "created", "ended", "duration", "tags", "user", "host"}
MODEL_ROW = {"id", "name", "project", "framework", "task_id", "origin", "tags", "created", "updated", "labels",
             "config_text"}
SNAPSHOT_ROW = {"id", "model_id", "seq", "iteration", "size", "digest", "sha256", "status", "reason", "uri",
                "created", "stored_at", "download"}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The store of ui_helpers.CHAIN_SCRIPT (built once for this module): (home, {stage: task id})."""
    root = tmp_path_factory.mktemp("ui-chain")
    # tests/conftest.py's subprocess_env, which `from conftest import` cannot reach from here when pytest runs
    # every folder (another folder's conftest.py is the module named conftest then)
    env = dict(os.environ, AUTOLOG_STRICT="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    ids = build_chain(root / "home", root / "work", env)
    return root / "home", ids


@pytest.fixture
def client(chain):
    with make_client(chain[0]) as c:
        yield c


@pytest.fixture
def pages(client, chain):
    """{stage: the /api/tasks/ID document}."""
    return {stage: json_ok(client, f"/api/tasks/{task_id}") for stage, task_id in chain[1].items()}


def test_projects_count_the_tasks(client):
    assert json_ok(client, "/api/projects") == {"projects": [{"name": "chain", "tasks": 3}]}


def test_task_list_rows_newest_first_with_a_total(client, chain):
    page = json_ok(client, "/api/tasks")
    assert [t["name"] for t in page["tasks"]] == ["evaluate", "finetune", "pretrain"]
    assert page["total"] == 3 and page["next_cursor"] is None
    for row in page["tasks"]:
        assert set(row) == TASK_ROW
        assert row["duration"] == pytest.approx(row["ended"] - row["created"])
    by_name = {t["name"]: t for t in page["tasks"]}
    assert by_name["pretrain"]["tags"] == ["base", "best"] and by_name["evaluate"]["status"] == "failed"
    assert by_name["pretrain"]["id"] == chain[1]["pretrain"] and by_name["pretrain"]["user"]
    assert [t["name"] for t in json_ok(client, "/api/tasks?status=failed")["tasks"]] == ["evaluate"]
    assert [t["name"] for t in json_ok(client, "/api/tasks?tag=best")["tasks"]] == ["pretrain"]
    assert [t["name"] for t in json_ok(client, "/api/tasks?q=TUNE")["tasks"]] == ["finetune"]
    assert json_ok(client, "/api/tasks?q=nothing-like-it") == {"tasks": [], "next_cursor": None, "total": 0}


def test_task_page_of_pretrain(pages):
    page = pages["pretrain"]
    assert set(page) == {"task", "run_info", "parameters", "configuration", "scalars", "single_values", "artifacts",
                         "input_models", "output_models"}
    assert set(page["task"]) == TASK_ROW | {"status_message", "output_uri", "task_type", "comment"}
    assert page["task"]["task_type"] == "training" and page["task"]["output_uri"]
    assert set(page["run_info"]) == {"argv", "script", "cwd", "git_commit", "git_branch", "python", "host", "user",
                                     "pid", "packages"}
    assert page["run_info"]["packages"].get("numpy") and page["run_info"]["pid"]
    series = {(s["title"], s["series"]): s for s in page["scalars"]}
    loss = series[("loss", "train")]
    assert loss["count"] == 31 and loss["last_iteration"] == 30
    assert loss["last"] is None  # NaN at the last iteration: null in strict JSON
    assert loss["min"] == pytest.approx(1 / 30) and loss["max"] == 1.0
    assert series[("acc", "val")]["last"] == pytest.approx(29 / 30)
    assert page["single_values"] == {"best_acc": 0.93}
    assert page["input_models"] == []
    outputs = {m["model"]["name"]: m for m in page["output_models"]}
    assert set(outputs) == {"pretrain.joblib", "exported"}
    exported = outputs["exported"]
    assert set(exported["model"]) == MODEL_ROW and exported["model"]["labels"] == {"cat": 0, "dog": 1}
    assert json.loads(exported["model"]["config_text"]) == {"hidden": 64}
    for model in outputs.values():
        (snap,) = model["snapshots"]
        assert set(snap) == SNAPSHOT_ROW and snap["status"] == "stored"
        assert snap["digest"].startswith("blake3:") and snap["sha256"] is None  # sha256: computed on demand only
        assert snap["download"] == f"/api/snapshots/{snap['id']}/download"


def test_artifact_rows_and_previews(client, pages):
    artifacts = {a["name"]: a for a in pages["pretrain"]["artifacts"]}
    assert set(artifacts) == {"config", "frame", "picture", "notes", "dataset"}
    for a in artifacts.values():
        assert a["download"] == f"/api/artifacts/{a['id']}/download"
        assert a["preview"] == f"/api/artifacts/{a['id']}/preview"
    assert json.loads(json_ok(client, artifacts["config"]["preview"])["text"]) == {"lr": 0.1, "layers": [64, 32]}
    assert json_ok(client, artifacts["config"]["preview"])["kind"] == "json"
    table = json_ok(client, artifacts["frame"]["preview"])
    assert table["kind"] == "table" and table["columns"] == ["", "a", "b"]
    assert len(table["rows"]) == 20 and table["rows"][3] == ["3", "3", "6"]
    assert json_ok(client, artifacts["picture"]["preview"]) == {"kind": "image", "url": artifacts["picture"]["download"]}
    assert json_ok(client, artifacts["notes"]["preview"]) == {"kind": "text", "text": "first line\nsecond line\n"}
    reference = json_ok(client, artifacts["dataset"]["preview"])
    assert reference == {"kind": "text", "text": "s3://bucket/data/train.csv"}
    assert_error(client.get(artifacts["dataset"]["download"]), 409, "reference")


def test_artifact_downloads_are_the_recorded_bytes(client, pages):
    for a in pages["pretrain"]["artifacts"]:
        if a["kind"] == "url":
            continue
        response = client.get(a["download"])
        assert response.status_code == 200, response.text
        assert hashlib.sha256(response.content).hexdigest() == a["sha256"]
        assert response.headers["content-disposition"].startswith("attachment; filename=")
        assert int(response.headers["content-length"]) == len(response.content) == a["size"]


def test_snapshot_downloads_are_verified_bytes(client, pages):
    from autolog.storage.hashing import manifest_digest

    outputs = {m["model"]["name"]: m["snapshots"][0] for m in pages["pretrain"]["output_models"]}
    one = client.get(outputs["pretrain.joblib"]["download"])
    assert one.status_code == 200
    assert "blake3:" + blake3(one.content).hexdigest() == outputs["pretrain.joblib"]["digest"]
    assert 'filename="pretrain.joblib"' in one.headers["content-disposition"]
    folder = client.get(outputs["exported"]["download"])
    assert folder.status_code == 200 and 'filename="export.zip"' in folder.headers["content-disposition"]
    with zipfile.ZipFile(io.BytesIO(folder.content)) as archive:
        names = sorted(archive.namelist())
        assert names == ["config.json", "sub/weights.bin"]
        assert archive.read("sub/weights.bin") == bytes(range(256)) * 40
        files = [{"name": n, "digest": "blake3:" + blake3(archive.read(n)).hexdigest()} for n in names]
    assert manifest_digest(files) == outputs["exported"]["digest"]


def test_model_page_and_loads_linked_by_path_and_by_content(client, pages):
    pre_model = {m["model"]["name"]: m["model"] for m in pages["pretrain"]["output_models"]}["pretrain.joblib"]
    doc = json_ok(client, f"/api/models/{pre_model['id']}")
    assert set(doc) == {"model", "task", "snapshots", "loaded_by"}
    assert doc["model"] == pre_model and doc["task"]["name"] == "pretrain" and set(doc["task"]) == TASK_ROW
    (load,) = doc["loaded_by"]
    assert load["task"]["name"] == "finetune" and load["snapshot_seq"] == 1
    assert load["snapshot_id"] == doc["snapshots"][0]["id"]
    (fine_input,) = pages["finetune"]["input_models"]
    assert fine_input["model"]["id"] == pre_model["id"] and fine_input["snapshot"]["seq"] == 1
    fine_model = pages["finetune"]["output_models"][0]["model"]
    (copy_load,) = pages["evaluate"]["input_models"]  # a copy from another folder: the same content
    assert copy_load["model"]["id"] == fine_model["id"] and copy_load["loaded_at"]
    loaders = json_ok(client, f"/api/models/{fine_model['id']}")["loaded_by"]
    assert [x["task"]["name"] for x in loaders] == ["evaluate"]


def _graph(doc):
    nodes = {n["id"]: n for n in doc["nodes"]}
    label = {key: n["label"] for key, n in nodes.items()}
    edges = {(label[e["source"]], e["kind"], label[e["target"]], e["label"]) for e in doc["edges"]}
    return nodes, edges


CHAIN_EDGES = {
    ("pretrain", "produced", "pretrain.joblib", "1 snapshot"),
    ("pretrain.joblib", "loaded", "finetune", "seq 1"),
    ("finetune", "produced", "finetune.joblib", "1 snapshot"),
    ("finetune.joblib", "loaded", "evaluate", "seq 1"),
}


def test_lineage_of_the_chain_from_each_end(client, chain):
    ids = chain[1]
    up = json_ok(client, f"/api/lineage?task={ids['evaluate']}")
    nodes, edges = _graph(up)
    assert up["root"] == f"task:{ids['evaluate']}" and up["truncated"] is False
    assert edges == CHAIN_EDGES  # upstream only: pretrain's other model is not evaluate's lineage
    assert nodes[f"task:{ids['pretrain']}"] == {"id": f"task:{ids['pretrain']}", "kind": "task", "label": "pretrain",
                                                 "sub": "chain", "status": "completed", "url": f"/tasks/{ids['pretrain']}"}
    down = json_ok(client, f"/api/lineage?task={ids['pretrain']}")
    nodes, edges = _graph(down)
    assert edges == CHAIN_EDGES | {("pretrain", "produced", "exported", "1 snapshot")}
    model = [n for n in nodes.values() if n["label"] == "exported"][0]
    assert model["kind"] == "model" and model["sub"] == "custom" and model["status"] == "stored"
    assert model["url"] == "/models/" + model["id"].split(":", 1)[1]
    middle = json_ok(client, f"/api/lineage?model={model['id'].split(':', 1)[1]}")
    assert _graph(middle)[1] == {("pretrain", "produced", "exported", "1 snapshot")}


def test_lineage_depth_and_size_limits_say_truncated(client, chain):
    ids = chain[1]
    near = json_ok(client, f"/api/lineage?task={ids['evaluate']}&depth=1")
    assert _graph(near)[1] == {("finetune.joblib", "loaded", "evaluate", "seq 1")} and near["truncated"] is True
    two = json_ok(client, f"/api/lineage?task={ids['evaluate']}&depth=2")
    assert len(two["nodes"]) == 3 and two["truncated"] is True
    small = json_ok(client, f"/api/lineage?task={ids['pretrain']}&max_nodes=2")
    assert len(small["nodes"]) == 2 and small["truncated"] is True
    assert all(e["source"] in {n["id"] for n in small["nodes"]} for e in small["edges"])
    whole = json_ok(client, f"/api/lineage?task={ids['finetune']}")
    assert len(whole["nodes"]) == 5 and whole["truncated"] is False  # pretrain's "exported" is a sibling branch


def test_scalars_route_downsamples_keeping_ends_and_extremes(client, chain):
    full = json_ok(client, f"/api/tasks/{chain[1]['pretrain']}/scalars")["series"]
    loss = [s for s in full if s["title"] == "loss"][0]
    assert loss["x"] == list(range(31)) and loss["y"][0] == 1.0 and loss["y"][-1] is None
    few = json_ok(client, f"/api/tasks/{chain[1]['pretrain']}/scalars?max_points=6")["series"]
    loss = [s for s in few if s["title"] == "loss"][0]
    assert len(loss["x"]) <= 6 and loss["x"][0] == 0 and loss["x"][-1] == 30
    assert loss["x"] == sorted(set(loss["x"]))
    acc = [s for s in few if s["title"] == "acc"][0]  # rising: two buckets of 1..14 and 15..28, their ends
    assert acc["x"] == [0, 1, 14, 15, 28, 29] and acc["y"] == pytest.approx([x / 30 for x in acc["x"]])
    assert_error(client.get(f"/api/tasks/{chain[1]['pretrain']}/scalars?max_points=2"), 400, "max_points")


def test_scalars_route_aggregates_a_long_series_in_sql():
    """30,000 points with a spike and a NaN run, max_points 2000, 100 and 3 (ui_helpers.check_long_series)."""
    task_id = write_long_series()  # this test's store
    with make_client() as client:
        check_long_series(client, task_id)


def test_pages_are_the_shell_for_ids_that_exist(client, chain):
    from autolog.ui.app import STATIC

    shell = (STATIC / "index.html").read_bytes()
    for path in ("/", f"/tasks/{chain[1]['pretrain']}", f"/lineage?task={chain[1]['evaluate']}"):
        response = client.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html") and response.content == shell
