"""Crash trials: a training process (PostgreSQL + S3) saving checkpoints of a few MB is SIGKILLed at a
random point - half of the trials right when a snapshot is staged for upload - then `autolog sync` runs
in a new process. After each trial: no snapshot is pending; each is stored (its object, downloaded and
hashed, matches the recorded digest) or failed with a reason; and the bucket holds no object that is not
a stored snapshot's (so no partial object ever reached a final key)."""
from __future__ import annotations

import json
import os
import random
import signal
import time

import pytest

from fault_helpers import Trainer, run_cli, s3_objects, s3fs_client, snapshot_rows, sql_rows, wait_for

from autolog.storage.hashing import file_digest

pytestmark = [pytest.mark.postgres, pytest.mark.s3]

TRIALS = 10
SEED = int(os.environ.get("AUTOLOG_CRASH_SEED", "20261126"))


def _saves_done(work) -> int:
    progress = work / "progress"
    return len(progress.read_text().split()) if progress.exists() else 0


def _staged(home) -> int:
    """Snapshots staged and not yet uploaded (an uploaded copy moves on into the cache)."""
    staging = home / "cache" / "staging"
    return len([p for p in staging.iterdir() if p.is_dir()]) if staging.is_dir() else 0


def _journaled(pg_url: str) -> int:
    """Snapshot rows in the database (0 before the first run created the tables)."""
    try:
        return len(snapshot_rows(pg_url))
    except Exception:  # noqa: BLE001 - no tables yet
        return 0


def _check_bucket_and_journal(pg_url: str, s3_uri: str) -> dict[str, int]:
    rows = snapshot_rows(pg_url)
    in_bucket = s3_objects(s3_uri)  # every object under the prefix, downloaded and hashed
    counts = {"stored": 0, "failed": 0}
    for row in rows:
        assert row["status"] in ("stored", "failed"), (row["status"], row["reason"])
        counts[row["status"]] += 1
        if row["status"] == "stored":
            assert in_bucket.get(row["uri"]) == row["digest"], (row["uri"], row["digest"])
        else:
            assert row["reason"], row
    stored_uris = {r["uri"] for r in rows if r["status"] == "stored"}
    stray = set(in_bucket) - stored_uris
    assert not stray, f"objects at final keys that no stored snapshot owns (partial or orphaned): {stray}"
    assert not [t for t in sql_rows(pg_url, "tasks") if t["status"] == "running"], "a killed run is still running"
    return counts


def test_sigkill_during_uploads_then_sync(pg_url, s3_uri, tmp_path, child_env):
    rng = random.Random(SEED)
    print(f"crash trials: seed {SEED} (set AUTOLOG_CRASH_SEED to replay)")
    started, totals = time.monotonic(), {"stored": 0, "failed": 0, "killed mid-upload": 0}
    trial, attempt = 0, 0
    while trial < TRIALS:
        mid_upload = trial % 2 == 0
        delay = rng.uniform(0, 0.05) if mid_upload else rng.uniform(0, 0.8)
        attempt += 1  # one database for all
        work, home = tmp_path / f"trial-{trial}-{attempt}", tmp_path / f"home-{trial}-{attempt}"
        env = child_env({"AUTOLOG_DB_URL": pg_url, "AUTOLOG_STRICT": "0", "AUTOLOG_HOME": str(home)})
        # Odd trials overwrite one file (the staged copy is then the only copy); even ones keep every file.
        # The run then waits at a gate that never opens: it cannot finish (close, uploads done) before the
        # kill, which a fast machine let it do.
        journaled_before = _journaled(pg_url)
        trainer = Trainer(work, env, output_uri=s3_uri, floats=750_000, seed=trial, name=f"trial-{trial}",
                          file="ckpt.pt" if trial % 2 else "ckpt-{step}.pt",
                          phases=[{"saves": 10}, {"gate": "never", "saves": 0}])
        # A save is journaled by a background thread a few ms after it returns: crash after the first one
        # is (a kill before that leaves no trace of it, which is what the README says).
        wait_for(lambda: _journaled(pg_url) > journaled_before or trainer.proc.poll() is not None, 120)
        if mid_upload:
            at_gate = work / "never.reached"
            try:
                wait_for(lambda: _staged(home) or at_gate.exists() or trainer.proc.poll() is not None, 60,
                         interval=0.002)
            except TimeoutError:
                raise AssertionError(f"trial {trial}: {_saves_done(work)} save(s) done, none staged and the run not "
                                     f"at its gate after 60 s: it hangs?\n{trainer.stacks()[-8000:]}") from None
            if not _staged(home) and attempt < 3:  # every upload was done before a poll saw one (a loaded
                trainer.proc.kill()                # machine): not the crash this trial is for; again
                trainer.proc.communicate()
                print(f"trial {trial}: no snapshot was seen staged before the uploads ended; trying again")
                continue
        time.sleep(delay)
        staged_at_kill = _staged(home)
        trainer.proc.send_signal(signal.SIGKILL)
        trainer.proc.communicate()
        assert trainer.proc.returncode == -signal.SIGKILL, "the run ended before it was killed: no crash tested"
        totals["killed mid-upload"] += bool(staged_at_kill)
        pending = [r for r in snapshot_rows(pg_url) if r["status"] == "pending"]

        sync = run_cli(env, "sync", "--json")
        assert sync.returncode == 0, sync.stderr
        report = json.loads(sync.stdout)
        counts = _check_bucket_and_journal(pg_url, s3_uri)
        print(f"trial {trial}: killed {delay:.3f} s after {_saves_done(work)} save(s) "
              f"({staged_at_kill} staged, not uploaded); {len(pending)} pending -> sync stored "
              f"{len(report['stored'])}, failed {len(report['failed'])}; journal so far {counts}")
        assert len(report["stored"]) + len(report["failed"]) == len(pending)
        for snap in report["failed"]:
            print(f"    failed seq {snap['seq']}: {snap['reason']}")
        totals.update(counts)
        trial, attempt = trial + 1, 0
    elapsed = time.monotonic() - started
    print(f"crash trials: {totals} in {elapsed:.0f} s")
    assert totals["killed mid-upload"] >= TRIALS // 2, "too few trials killed the run mid-upload"
    assert totals["stored"] > 0


# Deterministic crashes at the two points a random kill rarely hits: the child kills itself there.
KILLED_AT = """
import os, signal, sys, time
import torch
from autolog import Task
from autolog.db.store import MetadataStore
from autolog.snapshots.pipeline import SnapshotPipeline

uri, path, point = sys.argv[1:4]
task = Task.init(project_name="crash", task_name=point, output_uri=uri)
if point == "copied":  # the copy is complete and checked, its hash not yet journaled; the fence opens
    release = SnapshotPipeline._release_fence

    def release_and_die(self, job):
        release(self, job)
        deadline = time.monotonic() + 60  # the row is written beside the copy: die once it exists
        while not job.journaled and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGKILL)

    SnapshotPipeline._release_fence = release_and_die
else:  # "uploaded": the object is at its final key; the row is about to become stored
    finish = MetadataStore.finish_snapshots

    def die_before_stored(self, updates, *args, **kwargs):
        if any(values.get("status") == "stored" for _, values in updates):
            os.kill(os.getpid(), signal.SIGKILL)
        return finish(self, updates, *args, **kwargs)

    MetadataStore.finish_snapshots = die_before_stored
torch.save({"w": torch.arange(200_000)}, path)
task.flush()
"""


def _killed_at(point: str, pg_url: str, s3_uri: str, tmp_path, child_env) -> tuple[dict, str]:
    """Run KILLED_AT, then overwrite the saved file (as the run's next save would have): only what autolog
    kept can restore the snapshot. Returns the pending row and the digest of the saved bytes."""
    import subprocess
    import sys

    path = tmp_path / "ckpt.pt"
    env = child_env({"AUTOLOG_DB_URL": pg_url, "AUTOLOG_STRICT": "0"})
    proc = subprocess.run([sys.executable, "-c", KILLED_AT, s3_uri, str(path), point], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    saved = file_digest(path)
    path.write_bytes(b"the next epoch")
    (row,) = snapshot_rows(pg_url)
    assert row["status"] == "pending"
    return row, saved


def test_killed_after_the_copy_before_its_hash_was_journaled(pg_url, s3_uri, tmp_path, child_env):
    row, saved = _killed_at("copied", pg_url, s3_uri, tmp_path, child_env)
    assert row["digest"] is None and row["stage_uri"], row
    sync = run_cli(child_env({"AUTOLOG_DB_URL": pg_url}), "sync", "--json")
    assert sync.returncode == 0 and len(json.loads(sync.stdout)["stored"]) == 1, sync.stdout + sync.stderr
    (row,) = snapshot_rows(pg_url)
    assert row["digest"] == saved, "sync stored something else than the bytes saved"
    _check_bucket_and_journal(pg_url, s3_uri)


@pytest.mark.parametrize("object_intact", [True, False])
def test_killed_after_the_upload_before_it_was_recorded(object_intact, pg_url, s3_uri, tmp_path, child_env):
    row, saved = _killed_at("uploaded", pg_url, s3_uri, tmp_path, child_env)
    assert row["digest"] == saved
    (key,) = s3_objects(s3_uri)  # the upload completed
    if not object_intact:
        s3fs_client().pipe_file(key[len("s3://"):], b"not the checkpoint")
    sync = run_cli(child_env({"AUTOLOG_DB_URL": pg_url}), "sync", "--json")
    assert sync.returncode == 0, sync.stderr
    (row,) = snapshot_rows(pg_url)
    if object_intact:
        assert row["status"] == "stored" and "upload had completed" in row["reason"], row
        assert row["uri"] == key
    else:  # no trustworthy copy is left anywhere: failed, and the unverified object is removed
        assert row["status"] == "failed" and "changed or was deleted" in row["reason"], row
        assert s3_objects(s3_uri) == {}
    _check_bucket_and_journal(pg_url, s3_uri)
