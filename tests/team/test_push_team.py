"""`autolog push` from a laptop-style embedded store (SQLite + local folder) into the team store: a real
PostgreSQL database and a real S3 bucket (moto_server), read back by another "machine" (another
process with its own AUTOLOG_HOME) through the public API."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import torch

import services
from autolog import Task

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

TABLES = ("tasks", "models", "snapshots", "artifacts", "model_loads")
SECRETS = [services.S3_ENV["AWS_SECRET_ACCESS_KEY"]]

READ_BACK = """
import hashlib, json
from pathlib import Path
from autolog import Task

train = Task.get_task(project_name="push", task_name="train")
finetune = Task.get_task(project_name="push", task_name="finetune")
out = train.models["output"][-1]
[used] = finetune.models["input"]
print(json.dumps({
    "train": train.id, "finetune": finetune.id, "status": train.status,
    "model_local": out.get_local_copy(), "model_uri": out.url,
    "model_sha": hashlib.sha256(Path(out.get_local_copy()).read_bytes()).hexdigest(),
    "finetuned_sha": hashlib.sha256(Path(finetune.models["output"][-1].get_local_copy()).read_bytes()).hexdigest(),
    "metrics": train.artifacts["metrics"].get(), "metrics_uri": train.artifacts["metrics"].url,
    "used": used.id, "out": out.id,
}))
"""

FAIL_ONE_S3_UPLOAD = """
import sys
from autolog.cli import main
from autolog.storage.blobstore import BlobStore

original, calls = BlobStore.put_file, []


def put_file(self, local_path, key):
    calls.append(key)
    if len(calls) == 2:
        raise PermissionError(13, "Access Denied (simulated)", key)
    return original(self, local_path, key)


BlobStore.put_file = put_file
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def runs(tmp_path: Path) -> dict:
    """Recorded on this 'laptop': train saves a torch model and an artifact; finetune loads it."""
    work = tmp_path / "work"
    work.mkdir()
    train = Task.init(project_name="push", task_name="train", output_uri=True)
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(4, 2).state_dict(), work / "model.pt")
    train.upload_artifact("metrics", {"accuracy": 0.91})
    train.close()
    finetune = Task.init(project_name="push", task_name="finetune", output_uri=True)
    state = torch.load(work / "model.pt", weights_only=True)
    state["weight"] *= 2
    torch.save(state, work / "finetuned.pt")
    finetune.close()
    return {"train": train.id, "finetune": finetune.id,
            "model_sha": hashlib.sha256((work / "model.pt").read_bytes()).hexdigest(),
            "finetuned_sha": hashlib.sha256((work / "finetuned.pt").read_bytes()).hexdigest()}


class Pusher:
    """Runs `autolog push` as a user would, and keeps every byte it printed for the secrets check."""

    def __init__(self, child_env, pg_url: str, s3_uri: str):
        self.child_env, self.pg_url, self.s3_uri = child_env, pg_url, s3_uri
        self.printed: list[str] = []

    def run(self, *args: str, script: str | None = None, storage: bool = True) -> subprocess.CompletedProcess:
        argv = ["push", "--to", self.pg_url, *(["--storage", self.s3_uri] if storage else []), *args]
        cmd = [sys.executable, "-c", script, *argv] if script else [sys.executable, "-m", "autolog.cli", *argv]
        proc = subprocess.run(cmd, env=self.child_env(), capture_output=True, text=True, timeout=300)
        self.printed += [proc.stdout, proc.stderr]
        return proc

    def json(self, *args: str, storage: bool = True) -> dict:
        proc = self.run("--json", *args, storage=storage)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


@pytest.fixture
def pusher(child_env, pg_url, s3_uri) -> Pusher:
    return Pusher(child_env, pg_url, s3_uri)


def bucket_objects(s3_uri: str) -> dict[str, str]:
    """Every object in the bucket -> its ETag (changes if it is written again)."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False,
                           client_kwargs={"endpoint_url": os.environ["AWS_ENDPOINT_URL"]})
    bucket = s3_uri[len("s3://"):].split("/", 1)[0]
    return {path: info["ETag"] for path, info in fs.find(bucket, detail=True).items()}


def row_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("tasks"):
                return {}
            return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in TABLES}
    finally:
        engine.dispose()


def database_text(url: str) -> str:
    """Every row of every autolog table, as JSON text."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return "\n".join(str(conn.execute(sa.text(f"SELECT json_agg(t)::text FROM {t} AS t")).scalar())
                             for t in (*TABLES, "file_hashes"))
    finally:
        engine.dispose()


def read_back(run_py, pg_url: str, home: Path) -> dict:
    proc = run_py(READ_BACK, env={"AUTOLOG_HOME": str(home), "AUTOLOG_DB_URL": pg_url})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_runs_pushed_to_postgres_and_s3_read_back_elsewhere_with_ids_bytes_and_lineage(
        runs, pusher, pg_url, s3_uri, run_py, tmp_path):
    report = pusher.json()
    assert {k: report[k]["new"] for k in ("tasks", "models", "snapshots", "artifacts", "loads")} == {
        "tasks": 2, "models": 2, "snapshots": 2, "artifacts": 1, "loads": 1}
    assert report["objects"]["copied"] == 3 and report["storage"] == s3_uri

    got = read_back(run_py, pg_url, tmp_path / "other-machine")
    assert (got["train"], got["finetune"], got["status"]) == (runs["train"], runs["finetune"], "completed")
    assert got["model_uri"].startswith(s3_uri + "/push/train.") and got["metrics_uri"].startswith(s3_uri + "/")
    assert got["model_local"].startswith(str(tmp_path / "other-machine"))  # downloaded from S3 into its cache
    assert (got["model_sha"], got["finetuned_sha"]) == (runs["model_sha"], runs["finetuned_sha"])
    assert got["metrics"] == {"accuracy": 0.91}
    assert got["used"] == got["out"]  # finetune's load still points at train's model

    rows, objects = row_counts(pg_url), bucket_objects(s3_uri)
    assert len(objects) == 3
    again = pusher.json()
    assert all(again[k]["new"] == 0 and again[k]["updated"] == 0 for k in ("tasks", "models", "snapshots", "artifacts",
                                                                          "loads"))
    assert again["objects"]["copied"] == 0
    assert row_counts(pg_url) == rows and bucket_objects(s3_uri) == objects

    password = sa.engine.make_url(pg_url).password
    assert password and len(password) > 8
    printed = "\n".join(pusher.printed)
    assert ":***@" in printed  # the target is named, redacted
    for secret in (password, *SECRETS):
        assert secret not in printed and secret not in database_text(pg_url)


def test_dry_run_creates_no_table_and_no_object(runs, pusher, pg_url, s3_uri):
    report = pusher.json("--dry-run")
    assert report["dry_run"] and report["tasks"]["new"] == 2 and report["objects"]["copied"] == 3
    assert row_counts(pg_url) == {} and bucket_objects(s3_uri) == {}


def test_an_interrupted_upload_to_s3_is_completed_by_a_rerun(runs, pusher, pg_url, s3_uri, run_py, tmp_path):
    failed = pusher.run(script=FAIL_ONE_S3_UPLOAD)
    assert failed.returncode == 1 and "Access Denied (simulated)" in failed.stderr, failed.stderr
    assert set(row_counts(pg_url).values()) == {0}  # rows are written only once every object is there
    first = bucket_objects(s3_uri)
    assert len(first) == 1
    report = pusher.json()
    assert report["objects"]["copied"] == 2 and report["objects"]["already_there"] == 1
    assert {k: v for k, v in bucket_objects(s3_uri).items() if k in first} == first  # not uploaded again
    got = read_back(run_py, pg_url, tmp_path / "other-machine")
    assert (got["model_sha"], got["metrics"]) == (runs["model_sha"], {"accuracy": 0.91})
    for secret in (sa.engine.make_url(pg_url).password, *SECRETS):
        assert secret not in "\n".join(pusher.printed)


def test_objects_already_in_s3_keep_their_uris_without_storage(pusher, pg_url, s3_uri, run_py, tmp_path):
    task = Task.init(project_name="push", task_name="remote", output_uri=s3_uri)
    torch.save(torch.arange(4), tmp_path / "w.pt")
    task.close()
    [snap] = task.models["output"][-1].snapshots
    report = pusher.json(storage=False)
    assert report["storage"] is None and report["snapshots"]["new"] == 1 and report["objects"]["copied"] == 0
    proc = run_py(f"""
        from autolog import Task
        import torch
        model = Task.get_task(task_id="{task.id}").models["output"][-1]
        print(model.url)
        assert torch.equal(torch.load(model.get_local_copy(), weights_only=True), torch.arange(4))
    """, env={"AUTOLOG_HOME": str(tmp_path / "other"), "AUTOLOG_DB_URL": pg_url})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == snap.uri


def test_an_unreachable_database_is_one_line_without_the_password(runs, pusher, pg_url):
    url = sa.engine.make_url(pg_url)
    wrong = url.set(port=services.free_port()).render_as_string(hide_password=False)
    proc = pusher.run()
    assert proc.returncode == 0
    pusher.pg_url = wrong
    proc = pusher.run()
    assert proc.returncode == 1 and proc.stderr.startswith("autolog: error: ")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert url.password not in proc.stderr + proc.stdout


KILLED_MID_SAVE = """
import os, sys, threading
import torch
from autolog import Task
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


def test_a_killed_run_is_held_back_until_autolog_sync_then_pushed(runs, pusher, pg_url, s3_uri, child_env, tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_SAVE, str(tmp_path / "k.pt")], env=child_env(),
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == 0, killed.stderr
    proc = pusher.run()
    assert proc.returncode == 1 and "autolog sync" in proc.stderr and killed.stdout.strip()[:12] in proc.stderr
    assert row_counts(pg_url)["tasks"] == 2 and len(bucket_objects(s3_uri)) == 3
    assert subprocess.run([sys.executable, "-m", "autolog.cli", "sync"], env=child_env(), timeout=300).returncode == 0
    report = pusher.json()
    assert (report["tasks"]["new"], report["snapshots"]["new"], report["objects"]["copied"]) == (1, 1, 1)
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            statuses = conn.execute(sa.text("SELECT status FROM tasks WHERE id = :id"),
                                    {"id": killed.stdout.strip()}).scalars().all()
    finally:
        engine.dispose()
    assert statuses == ["failed"]  # autolog sync closed the dead run; the push carried that over
