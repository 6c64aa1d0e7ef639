"""`autolog ui` in team mode: the chain of tests/ui written to PostgreSQL + S3 by a child process, read
through the API (the SQL that differs by dialect: tags as JSONB, the duration sort, keyset row values; and
the scalars route's GROUP BY of a long series), downloads fetched from S3 through fsspec and verified, and the
database password in no response."""
from __future__ import annotations

import hashlib
import io
import sys
import zipfile
from pathlib import Path

import pytest
from blake3 import blake3

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ui"))

from team_helpers import team  # noqa: E402, F401 - fixture
from ui_helpers import build_chain, check_long_series, json_ok, make_client, write_long_series  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def test_the_ui_api_on_postgresql_and_s3(team, tmp_path):
    ids = build_chain(tmp_path / "writer-home", tmp_path / "work", team.env())
    with make_client(db_url=team.db_url) as client:  # this test's AUTOLOG_HOME: an empty cache
        listing = client.get("/api/tasks?sort=name&limit=2")
        assert [t["name"] for t in listing.json()["tasks"]] == ["evaluate", "finetune"]
        rest = json_ok(client, f"/api/tasks?sort=name&limit=2&cursor={listing.json()['next_cursor']}")
        assert [t["name"] for t in rest["tasks"]] == ["pretrain"] and rest["total"] == 3
        assert [t["name"] for t in json_ok(client, "/api/tasks?tag=best")["tasks"]] == ["pretrain"]
        assert json_ok(client, "/api/tasks?tag=bes")["total"] == 0
        by_duration = [t["duration"] for t in json_ok(client, "/api/tasks?sort=duration")["tasks"]]
        assert by_duration == sorted(by_duration)
        pages = {stage: client.get(f"/api/tasks/{task_id}") for stage, task_id in ids.items()}
        lineage = client.get(f"/api/lineage?task={ids['evaluate']}")
        texts = [listing.text, lineage.text] + [p.text for p in pages.values()]
        assert all(team.password not in text for text in texts)
        graph = lineage.json()
        labels = {n["id"]: n["label"] for n in graph["nodes"]}
        assert {(labels[e["source"]], labels[e["target"]]) for e in graph["edges"]} == {
            ("pretrain", "pretrain.joblib"), ("pretrain.joblib", "finetune"), ("finetune", "finetune.joblib"),
            ("finetune.joblib", "evaluate")}
        outputs = {m["model"]["name"]: m["snapshots"][0] for m in pages["pretrain"].json()["output_models"]}
        assert outputs["pretrain.joblib"]["uri"].startswith("s3://")
        one = client.get(outputs["pretrain.joblib"]["download"])
        assert one.status_code == 200
        assert "blake3:" + blake3(one.content).hexdigest() == outputs["pretrain.joblib"]["digest"]
        folder = client.get(outputs["exported"]["download"])
        assert folder.status_code == 200
        with zipfile.ZipFile(io.BytesIO(folder.content)) as archive:
            assert archive.read("sub/weights.bin") == bytes(range(256)) * 40
        for artifact in pages["pretrain"].json()["artifacts"]:
            if artifact["kind"] != "url":
                got = client.get(artifact["download"])
                assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == artifact["sha256"]
        assert json_ok(client, "/api/projects") == {"projects": [{"name": "chain", "tasks": 3}]}


def test_scalars_aggregated_in_postgresql(team):
    """The SQL that aggregates a series longer than max_points (GROUP BY a bucket of iterations), on PostgreSQL:
    the same checks as on SQLite (tests/ui/test_api.py)."""
    task_id = write_long_series()  # the team fixture points this process at the database
    with make_client(db_url=team.db_url) as client:
        check_long_series(client, task_id)
