"""8 processes x 100 captured torch.save into one store, started together so they truly contend.

Four are separate runs (a sweep: each its own task); four are workers of one multi-worker job (started
by a parent process after its Task.init, so they attach to the parent's task, as DataLoader workers,
torchrun or multiprocessing children do). Each saves half of its checkpoints to one path (`last.pt`,
one model with 50 snapshots) and half to distinct paths, and writes a manifest of the bytes it saved.
Then: exactly 800 snapshots, all stored, none lost or duplicated, (model, seq) unique and gapless,
every stored object holds the bytes of its manifest entry, and no process printed a traceback or warning.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from team_helpers import Team, objects_digest, team  # noqa: F401 - fixture

from autolog import Task

PROCESSES, SAVES = 8, 100
INDEPENDENT = range(0, 4)
ATTACHED = range(4, 8)

WORKER = """
import json, sys, time
from pathlib import Path
import torch
from autolog import Task
from autolog.storage.hashing import file_digest

index, root, saves = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
task = Task.init(project_name="concurrency", task_name=f"run-{index}", output_uri=True)  # attaches under a parent
work = root / "work" / f"p{index}"
work.mkdir(parents=True)
(root / "ready" / f"{index}.tmp").write_text(json.dumps({"task_id": task.id, "attached": task._attached}))
(root / "ready" / f"{index}.tmp").rename(root / "ready" / str(index))
while not (root / "go").exists():
    time.sleep(0.002)
manifest = []
for k in range(saves):
    path = work / ("last.pt" if k % 2 == 0 else f"step{k:03d}.pt")
    torch.save(torch.full((32,), float(index * 1000 + k)), path)
    manifest.append([str(path), file_digest(path)])
task.close()
(root / "manifests" / f"{index}.json").write_text(json.dumps(manifest))
"""

LAUNCHER = """
import subprocess, sys
from autolog import Task

worker, root, saves, shared, *indexes = sys.argv[1:]
task = Task.init(project_name="concurrency", task_name="multi-worker", output_uri=True)
if shared == "shared":  # a model every saver will load at once
    import joblib
    joblib.dump({"weights": list(range(10))}, f"{root}/shared.joblib")
    task.flush()
procs = [subprocess.Popen([sys.executable, worker, i, root, saves], stderr=open(f"{root}/stderr-{i}.txt", "w"))
         for i in indexes]
codes = [p.wait() for p in procs]
task.close()
sys.exit(max(codes))
"""


def start_all(root: Path, env: dict[str, str], script: str, saves: int,
              shared: bool = False) -> tuple[list[subprocess.Popen], float]:
    """Start the 8 savers (4 alone, 4 under a launcher), wait until each is ready, then release them at once.
    shared: the launcher first saves shared.joblib in its task. Returns the processes and the release time."""
    for folder in ("ready", "manifests"):
        (root / folder).mkdir()
    worker = root / "worker.py"
    worker.write_text(script)
    launcher = root / "launcher.py"
    launcher.write_text(LAUNCHER)
    procs = [subprocess.Popen([sys.executable, str(worker), str(i), str(root), str(saves)], env=env,
                              stderr=open(root / f"stderr-{i}.txt", "w")) for i in INDEPENDENT]
    procs.append(subprocess.Popen([sys.executable, str(launcher), str(worker), str(root), str(saves),
                                   "shared" if shared else "-", *map(str, ATTACHED)],
                                  env=env, stderr=open(root / "stderr-launcher.txt", "w")))
    deadline = time.monotonic() + 180
    while len(list((root / "ready").glob("[0-9]"))) < PROCESSES:
        dead = [p.args for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            for p in procs:
                p.kill()
            raise AssertionError(f"not every saver got ready (exited: {dead}): {stderr_of(root)}")
        time.sleep(0.01)
    (root / "go").write_text("")
    return procs, time.monotonic()


def assert_attached(root: Path) -> None:
    """The four workers attached to their parent's task; the four others run tasks of their own."""
    ready = {i: json.loads((root / "ready" / str(i)).read_text()) for i in range(PROCESSES)}
    assert [ready[i]["attached"] for i in range(PROCESSES)] == [i in ATTACHED for i in range(PROCESSES)], ready
    assert len({ready[i]["task_id"] for i in ATTACHED}) == 1, "the workers must share the parent's task"


def stderr_of(root: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(root.glob("stderr-*.txt"))}


def wait_all(root: Path, procs: list[subprocess.Popen]) -> None:
    codes = [p.wait(timeout=600) for p in procs]
    errors = stderr_of(root)
    assert codes == [0] * len(procs), errors
    for name, text in errors.items():
        lowered = text.lower()
        for bad in ("traceback", "locked", "warn", "error"):
            assert bad not in lowered, f"{name} says {bad!r}:\n{text[-3000:]}"


TEAM = [pytest.mark.postgres, pytest.mark.s3]


@pytest.fixture(params=["sqlite+local", pytest.param("postgres+s3", marks=TEAM),
                        pytest.param("postgres+local", marks=TEAM)])
def backend(request, tmp_path, monkeypatch, child_env) -> tuple[str, dict[str, str]]:
    """(name, environment of the savers). SQLite: every process shares the test's AUTOLOG_HOME."""
    if request.param == "sqlite+local":
        return request.param, child_env()
    shared: Team = request.getfixturevalue("team")
    if request.param == "postgres+local":
        monkeypatch.setenv("AUTOLOG_DEFAULT_OUTPUT_URI", str(tmp_path / "shared-storage"))
        return request.param, shared.env(AUTOLOG_DEFAULT_OUTPUT_URI=str(tmp_path / "shared-storage"))
    return request.param, shared.env()


class PeakConnections:
    """Samples how many connections the savers hold open to their PostgreSQL database (none for SQLite)."""

    def __init__(self, db_url: str | None):
        self.db_url, self.peak, self._stop = db_url, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> "PeakConnections":
        if self.db_url:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _sample(self) -> None:
        import sqlalchemy as sa

        # Autocommit: within one transaction pg_stat_activity would repeat its first answer.
        engine = sa.create_engine(self.db_url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
        query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()")
        try:
            with engine.connect() as conn:
                while not self._stop.wait(0.02):
                    self.peak = max(self.peak, conn.execute(query).scalar())
        finally:
            engine.dispose()


def stored_digests(uris: list[str]) -> dict[str, str]:
    from autolog.storage.hashing import file_digest

    if all(u.startswith("s3://") for u in uris):
        return objects_digest(uris)
    return {u: file_digest(u) if Path(u).is_file() else "missing" for u in uris}


def test_eight_processes_save_800_snapshots_into_one_store(backend, tmp_path):
    name, env = backend
    root = tmp_path / "run"
    root.mkdir()
    with PeakConnections(env.get("AUTOLOG_DB_URL")) as connections:
        procs, released = start_all(root, env, WORKER, SAVES)
        wait_all(root, procs)
    elapsed = time.monotonic() - released
    # Each process has a stager, 4 uploaders, the training thread and the init thread; SQLAlchemy's
    # default pool (5 + 10 overflow) bounds it at 15: 9 processes stay far below max_connections (300).
    assert connections.peak <= (PROCESSES + 1) * 15
    assert connections.peak > 0 or "AUTOLOG_DB_URL" not in env, "the sampler saw no connection at all"

    assert_attached(root)
    tasks = Task.get_tasks(project_name="concurrency")
    assert sorted(t.name for t in tasks) == sorted([f"run-{i}" for i in INDEPENDENT] + ["multi-worker"])
    assert {t.status for t in tasks} == {"completed"}

    models = [m for t in tasks for m in t.models["output"]]
    snapshots = {m.source_path: m.snapshots for m in models}
    assert len(snapshots) == len(models), "one model per saved path, not one per process that saved it"
    every = [s for snaps in snapshots.values() for s in snaps]
    assert len(every) == PROCESSES * SAVES and len({s.id for s in every}) == len(every)
    assert Counter(s.status for s in every) == {"stored": PROCESSES * SAVES}
    for path, snaps in snapshots.items():
        assert [s.seq for s in snaps] == list(range(1, len(snaps) + 1)), f"{path}: seq not gapless"

    saved: dict[str, list[str]] = defaultdict(list)  # path -> digest of each save, in order
    for i in range(PROCESSES):
        for path, digest in json.loads((root / "manifests" / f"{i}.json").read_text()):
            saved[path].append(digest)
    assert sorted(saved) == sorted(snapshots)
    for path, digests in saved.items():
        assert [s.digest for s in snapshots[path]] == digests, f"{path}: snapshots do not match what was saved"
    in_store = stored_digests([s.uri for s in every])
    assert {s.uri: s.digest for s in every} == in_store, "a stored object does not hold its recorded bytes"
    print(f"\n{name}: {PROCESSES} x {SAVES} captured saves stored in {elapsed:.1f} s; "
          f"peak PostgreSQL connections {connections.peak}")


ONE_MODEL = """
import json, sys, time
from pathlib import Path
import joblib
from autolog import Task
from autolog.storage.hashing import file_digest

index, root, saves = int(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
task = Task.init(project_name="concurrency", task_name=f"run-{index}", output_uri=True)
weights = root / f"weights-{index}.bin"
(root / "ready" / f"{index}.tmp").write_text(json.dumps({"task_id": task.id, "attached": task._attached}))
(root / "ready" / f"{index}.tmp").rename(root / "ready" / str(index))
while not (root / "go").exists():
    time.sleep(0.002)
joblib.load(root / "shared.joblib")  # same file, same task (for the workers): one lineage link, one hash row
task.upload_artifact("status", {"worker": index})  # same name in the same task: the last one wins
manifest = []
for k in range(saves):
    weights.write_bytes(f"process {index} report {k}".encode())
    task.update_output_model(model_path=str(weights), name="best", iteration=k)
    manifest.append([index, k, file_digest(weights)])
task.close()
(root / "manifests" / f"{index}.json").write_text(json.dumps(manifest))
"""


def test_workers_of_one_task_add_snapshots_to_one_model_without_collisions(backend, tmp_path):
    """The attached workers all report to the model 'best' of their shared task (one model, seq gapless),
    load the same file at once (one lineage link) and upload an artifact of the same name."""
    name, env = backend
    root = tmp_path / "run"
    root.mkdir()
    saves = 25
    procs, released = start_all(root, env, ONE_MODEL, saves, shared=True)
    wait_all(root, procs)
    elapsed = time.monotonic() - released

    assert_attached(root)
    shared = Task.get_task(project_name="concurrency", task_name="multi-worker")
    models = shared.models
    [source] = [m for m in models["output"] if m.name == "shared.joblib"]
    [best] = [m for m in models["output"] if m.name == "best"]
    snaps = best.snapshots
    assert [s.seq for s in snaps] == list(range(1, len(ATTACHED) * saves + 1))
    assert {s.status for s in snaps} == {"stored"}
    reported = [tuple(e) for i in ATTACHED for e in json.loads((root / "manifests" / f"{i}.json").read_text())]
    assert sorted(s.digest for s in snaps) == sorted(digest for _, _, digest in reported)
    assert stored_digests([s.uri for s in snaps]) == {s.uri: s.digest for s in snaps}
    for i in INDEPENDENT:
        [own] = Task.get_task(project_name="concurrency", task_name=f"run-{i}").models["output"]
        assert [s.seq for s in own.snapshots] == list(range(1, saves + 1))

    [shared_snapshot] = source.snapshots
    loads = shared._ctx.store.loads_of_model(source.id)
    assert sorted(ld.task_id for ld in loads) == sorted(t.id for t in Task.get_tasks(project_name="concurrency"))
    assert {ld.snapshot_id for ld in loads} == {shared_snapshot.id}
    assert [m.id for m in models["input"]] == [source.id]
    assert shared.artifacts["status"].get() in [{"worker": i} for i in ATTACHED]
    print(f"\n{name}: {PROCESSES} x {saves} update_output_model calls stored in {elapsed:.1f} s")
