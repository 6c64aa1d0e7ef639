"""Faults in team mode (PostgreSQL + S3), seen as a user sees them: training in a child process with
AUTOLOG_STRICT=0. Each fault: every save returns what torch.save returns, quickly; one warning per kind;
every snapshot ends stored (the bytes in the bucket hash to the recorded digest) or is reported as not
stored, and `autolog sync` finishes what can be finished once the fault is gone."""
from __future__ import annotations

import json
import time

import pytest

import services
from fault_helpers import (SilencingProxy, Trainer, autolog_warnings, run_cli, s3_objects, s3fs_client,
                           snapshot_rows, wait_for, write_config)

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


def _assert_saves_returned(summary: dict, max_seconds: float) -> None:
    """Every save returned torch.save's result. The bound is loose for a loaded 2-core machine; a save
    that waited for the fault would take far longer (the retries alone take > 5 s)."""
    print("save durations (s):", [round(s["seconds"], 3) for s in summary["saves"]])
    for save in summary["saves"]:
        assert save["error"] is None and save["result"] == "None", save  # torch.save's own return value
        assert save["seconds"] < max_seconds, f"save {save['step']} blocked training for {save['seconds']:.2f} s"


def _assert_stored_and_verified(rows: list[dict], output_uri: str) -> None:
    """Each row is stored, and its object in the bucket hashes to its digest; nothing else is there."""
    in_bucket = s3_objects(output_uri)
    for row in rows:
        assert row["status"] == "stored", (row["seq"], row["status"], row["reason"])
        assert in_bucket.get(row["uri"]) == row["digest"], (row["uri"], sorted(in_bucket))
    assert set(in_bucket) == {r["uri"] for r in rows}


def test_database_outage_mid_run(private_postgres, s3_uri, tmp_path, child_env):
    """The database stops after 3 saves and comes back after 3 more. Saves never wait for the database:
    those during the outage return at once, and the workers (which retry while it is unreachable, up to
    db_retry_seconds) journal and record every one of them once it is back."""
    env = child_env({"AUTOLOG_DB_URL": private_postgres.url, "AUTOLOG_STRICT": "0"})
    trainer = Trainer(tmp_path / "work", env, output_uri=s3_uri, floats=250_000, file="ckpt.pt",
                      phases=[{"saves": 3}, {"gate": "down", "saves": 3}, {"gate": "up", "saves": 3}])
    trainer.reached("down")
    private_postgres.stop()  # phase 1's uploads may still be in flight
    trainer.go("down")
    trainer.reached("up")
    private_postgres.start()
    trainer.go("up")
    summary, _, err = trainer.finish()

    _assert_saves_returned(summary, max_seconds=3.0)
    outage = [s for s in summary["saves"] if s["phase"] == "down"]
    print("saves during the outage took", [round(s["seconds"], 4) for s in outage], "s")
    rows = snapshot_rows(private_postgres.url)
    assert [r["digest"] for r in rows] == [s["digest"] for s in summary["saves"]], "every save, in order, once"
    assert [r["status"] for r in rows] == ["stored"] * 9
    _assert_stored_and_verified(rows, s3_uri)
    assert autolog_warnings(err) == [], err
    (task,) = [t for t in _rows(private_postgres.url, "tasks")]
    assert task["status"] == "completed"


def test_database_down_when_the_run_starts(private_postgres, s3_uri, tmp_path, child_env):
    """The database is down at Task.init and comes back after 3 saves: the first connection (which also
    sets up the schema) is retried like any other, so the whole run is recorded. Before, the error of
    opening the database was not seen as "unreachable" and the run went unrecorded."""
    private_postgres.stop()
    env = child_env({"AUTOLOG_DB_URL": private_postgres.url, "AUTOLOG_STRICT": "0"})
    trainer = Trainer(tmp_path / "work", env, output_uri=s3_uri, floats=1000, file="ckpt.pt",
                      phases=[{"saves": 3}, {"gate": "up", "saves": 2}])
    trainer.reached("up")
    time.sleep(1.0)  # meanwhile the init thread meets the refused connection (it starts at Task.init)
    private_postgres.start()
    trainer.go("up")
    summary, _, err = trainer.finish()

    _assert_saves_returned(summary, max_seconds=3.0)
    assert autolog_warnings(err) == [], err
    rows = snapshot_rows(private_postgres.url)
    assert [r["digest"] for r in rows] == [s["digest"] for s in summary["saves"]], "every save, in order, once"
    _assert_stored_and_verified(rows, s3_uri)


def _rows(url: str, table: str) -> list[dict]:
    from fault_helpers import sql_rows

    return sql_rows(url, table)


def test_bucket_deleted_mid_run_is_reported_and_finished_by_sync(pg_url, s3_uri, tmp_path, autolog_home, child_env):
    """After Task.init the bucket is deleted. Uploads fail after their retries (autolog must not create the
    bucket again); snapshots stay pending with their staged copies and the reason; one warning when it
    happens and one summary at close. Once the bucket is back, `autolog sync` stores every one from its
    staged copy."""
    write_config(autolog_home, pipeline={"upload_retries": 2})
    env = child_env({"AUTOLOG_DB_URL": pg_url, "AUTOLOG_STRICT": "0"})
    trainer = Trainer(tmp_path / "work", env, output_uri=s3_uri, floats=250_000, file="ckpt.pt",
                      phases=[{"gate": "gone", "saves": 3}])
    trainer.reached("gone")
    fs, bucket = s3fs_client(), s3_uri[len("s3://"):].split("/")[0]
    fs.rm(bucket, recursive=True)  # the probe of Task.init left nothing: the bucket is empty
    assert not fs.exists(bucket)
    trainer.go("gone")
    summary, _, err = trainer.finish()

    _assert_saves_returned(summary, max_seconds=3.0)
    assert not s3fs_client().exists(bucket), "autolog created the deleted bucket again"
    rows = snapshot_rows(pg_url)
    assert [r["digest"] for r in rows] == [s["digest"] for s in summary["saves"]]
    for row in rows:
        assert row["status"] == "pending", (row["status"], row["reason"])
        assert "staged copy kept" in row["reason"] and "autolog sync" in row["reason"], row["reason"]
        assert "bucket" in row["reason"].lower(), row["reason"]
    warnings = autolog_warnings(err)
    assert len(warnings) == 2 and "autolog sync" in warnings[0], err
    assert "3 snapshot(s) not stored yet, their staged copies kept" in warnings[1], err
    assert "autolog sync" in warnings[1] and "failed" not in warnings[1], err

    s3fs_client().mkdir(bucket)
    sync = run_cli(env, "sync", "--json")
    assert sync.returncode == 0, sync.stderr
    assert len(json.loads(sync.stdout)["stored"]) == 3
    _assert_stored_and_verified(snapshot_rows(pg_url), s3_uri)


# Short botocore timeouts through fsspec's own configuration (FSSPEC_S3, a JSON of S3FileSystem kwargs).
FAST_TIMEOUTS = json.dumps({"config_kwargs": {"connect_timeout": 1, "read_timeout": 1,
                                              "retries": {"max_attempts": 1}}})


def test_s3_endpoint_that_never_answers(pg_url, s3_endpoint, s3_uri, tmp_path, autolog_home, child_env):
    """Mid-run, the S3 endpoint still accepts connections but never answers. Saves do not wait for it;
    close() gives up after flush_timeout with a warning naming the snapshots not stored; `autolog sync`
    stores them from their staged copies once the endpoint answers again."""
    flush_timeout = 3
    write_config(autolog_home, pipeline={"flush_timeout": flush_timeout, "upload_retries": 3})
    proxy = SilencingProxy(s3_endpoint)
    try:
        env = child_env({"AUTOLOG_DB_URL": pg_url, "AUTOLOG_STRICT": "0", "AWS_ENDPOINT_URL": proxy.endpoint,
                         "FSSPEC_S3": FAST_TIMEOUTS})
        trainer = Trainer(tmp_path / "work", env, output_uri=s3_uri, floats=250_000, file="ckpt-{step}.pt",
                          phases=[{"gate": "hang", "saves": 3}])
        trainer.reached("hang")  # Task.init's write probe went through the proxy
        proxy.silence()
        trainer.go("hang")
        summary, _, err = trainer.finish()
    finally:
        proxy.close()

    _assert_saves_returned(summary, max_seconds=3.0)
    assert summary["close_seconds"] < flush_timeout + 2, summary["close_seconds"]
    rows = snapshot_rows(pg_url)
    assert len(rows) == 3 and all(r["status"] == "pending" for r in rows), [(r["status"], r["reason"]) for r in rows]
    warnings = autolog_warnings(err)
    assert len(warnings) == 1, err
    assert "3 snapshot(s)" in warnings[0] and "not stored" in warnings[0] and "autolog sync" in warnings[0], err
    for save in summary["saves"]:
        assert save["path"].rsplit("/", 1)[-1] in warnings[0]

    # The endpoint is fixed: the CLI reaches the S3 server directly.
    env["AWS_ENDPOINT_URL"] = s3_endpoint
    start = time.monotonic()
    sync = run_cli(env, "sync", "--json")
    assert sync.returncode == 0, sync.stderr
    print(f"autolog sync took {time.monotonic() - start:.1f} s")
    rows = snapshot_rows(pg_url)
    assert sorted(r["digest"] for r in rows) == sorted(s["digest"] for s in summary["saves"])
    _assert_stored_and_verified(rows, s3_uri)


def test_database_that_accepts_connections_and_never_answers(s3_uri, tmp_path, child_env, autolog_home):
    """A hung database (a proxy that accepts TCP and never replies): without a connect timeout libpq waits
    as long as the OS does. autolog's default connect_timeout (10 s) bounds each wait: the run goes on,
    unrecorded once the retries end ([db] retry_seconds, short here), with one warning per kind."""
    from fault_helpers import SilentServer

    write_config(autolog_home, db={"retry_seconds": 5})
    server = SilentServer()
    try:
        env = child_env({"AUTOLOG_DB_URL": f"postgresql+psycopg://autolog:pw-hung-db@127.0.0.1:{server.port}/x",
                         "AUTOLOG_STRICT": "0"})
        start = time.monotonic()
        trainer = Trainer(tmp_path / "work", env, output_uri=s3_uri, floats=1000, file="ckpt.pt",
                          phases=[{"saves": 3}])
        summary, _, err = trainer.finish(timeout=60, check=False)
        elapsed = time.monotonic() - start
    finally:
        server.close()
    print(f"run with a hung database: {elapsed:.1f} s in all")
    _assert_saves_returned(summary, max_seconds=15.0)  # the first save waits for the task's row: <= 10 s
    # Waiting again would cost each later save another connect_timeout (10 s).
    assert sum(s["seconds"] for s in summary["saves"][1:]) < 5.0, "later saves must not wait again"
    warnings = autolog_warnings(err)
    assert any("timeout expired" in w for w in warnings), err
    assert len(warnings) == len(set(w.split(" was not logged")[0] for w in warnings)), err
    assert "pw-hung-db" not in err
    assert trainer.proc.returncode == 0, err


def test_database_frozen_mid_run(private_postgres, s3_uri, tmp_path, child_env):
    """The database server is frozen (SIGSTOP: connections are accepted and data acknowledged, nothing
    answers; no socket timeout can tell). Saves never touch the database on the training thread: they
    go on at once; the recorder's write waits, and once the server answers again every snapshot,
    those saved while it was frozen too, is recorded and stored."""
    from fault_helpers import freeze, server_processes, thaw

    env = child_env({"AUTOLOG_DB_URL": private_postgres.url, "AUTOLOG_STRICT": "0"})
    trainer = Trainer(tmp_path / "work", env, output_uri=s3_uri, floats=250_000, file="ckpt.pt",
                      phases=[{"saves": 2}, {"gate": "freeze", "saves": 3}, {"gate": "thaw", "saves": 2}])
    trainer.reached("freeze")
    pids = server_processes(private_postgres)
    freeze(pids)
    try:
        trainer.go("freeze")
        trainer.reached("thaw", timeout=60)
    finally:
        thaw(pids)
    trainer.go("thaw")
    summary, _, err = trainer.finish()

    frozen = [s["seconds"] for s in summary["saves"] if s["phase"] == "freeze"]
    print("saves while the database was frozen took", [round(t, 3) for t in frozen], "s")
    # A save that waited for the frozen server would wait until the thaw, which comes only once all of
    # them returned (trainer.reached("thaw") above would have timed out), or for a new connection's
    # connect_timeout (10 s): a generous bound still tells them apart on a loaded machine.
    _assert_saves_returned(summary, max_seconds=3.0)
    rows = snapshot_rows(private_postgres.url)
    by_digest = {r["digest"]: r for r in rows if r["digest"]}
    for save in summary["saves"]:
        assert by_digest[save["digest"]]["status"] == "stored", (save, by_digest.get(save["digest"]))
    assert len(rows) == len(summary["saves"]), rows
    _assert_stored_and_verified(rows, s3_uri)
    assert autolog_warnings(err) == [], err
