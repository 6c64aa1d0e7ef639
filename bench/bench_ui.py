"""Server time of every `autolog ui` API route on a big store: 100,000 tasks, 1,000,000 snapshots.

    python bench/bench_ui.py                              # builds the store in a temp folder, then times
    python bench/bench_ui.py --store /scratch/ui-store    # builds it there once; later runs reuse it
    python bench/bench_ui.py --store DIR --rounds 31 --json

The store is built once per folder (a few minutes; `built.json` in it marks it complete) with the rows the
SDK writes: 100 projects, tasks completed, failed (7%) and running (3%, no end), tags (one rare), a run_info
with the installed packages (a few kB, as every real task has), one model of 10 snapshots per task, half
the tasks loading an earlier task's model, one task with 10 series x 10,000 scalars, and two 200-node
lineage graphs: a chain of 100 tasks (each loading the previous one's model) and a fan (one model loaded
by 198 tasks).

Each route is called through Starlette's TestClient in this process, `--rounds` times after one warm-up
call; the time is the app's own, from the request reaching it to its last byte (routing, the queries,
JSON rendering; not the test client's transport), and its median compared with the targets of issue 12: 200 ms for a page's API, 100 ms for the lineage API.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PAGE_MS, LINEAGE_MS = 200.0, 100.0
CHAIN, FAN = 100, 198  # chain: 100 tasks + 100 models; fan: producer + model + 198 loaders
WORDS = ["resnet", "bert", "gpt", "vit", "unet", "lstm", "mlp", "xgb", "detr", "clip"]


def build(tasks: int, per_task: int) -> dict:
    """Fill the store of $AUTOLOG_HOME (see the module's docstring); returns the ids the timing needs."""
    from autolog.context import default_context
    from autolog.db import schema as s

    engine = default_context().store.engine
    rng = random.Random(0)
    packages = {f"package-{i}": f"{i}.{i % 7}.{i % 3}" for i in range(150)}
    start = time.time() - tasks * 60
    ids: dict = {"tasks": [], "models": []}
    for first in range(0, tasks, 5000):
        rows: dict[str, list] = {"tasks": [], "models": [], "snapshots": [], "model_loads": []}
        for i in range(first, min(first + 5000, tasks)):
            _one_task(rng, i, start + i * 60, per_task, packages, ids, rows)
        with engine.begin() as conn:
            for table in ("tasks", "models", "snapshots", "model_loads"):
                if rows[table]:
                    conn.execute(s.metadata.tables[table].insert(), rows[table])
    task_ids, model_ids = ids.pop("tasks"), ids.pop("models")
    ids["task"], ids["model"] = task_ids[tasks // 2], model_ids[tasks // 2][0]
    ids.update(_graphs(engine, rng, start + tasks * 60, packages))
    ids["scalars_task"] = _scalars(engine, task_ids[-1])
    ids["tasks_built"] = tasks
    return ids


def _task_row(rng: random.Random, tid: str, i: int, created: float, packages: dict, status: str | None = None) -> dict:
    status = status or rng.choices(["completed", "failed", "running"], [90, 7, 3])[0]
    tags = rng.choice([[], [], ["baseline"], ["best"], ["debug", "v2"]]) + (["rare"] if rng.random() < 0.001 else [])
    return dict(id=tid, project=f"p{i % 100}", name=f"{rng.choice(WORDS)}-{i}", task_type="training", status=status,
                status_message="diverged" if status == "failed" else None, output_uri="/data/runs", tags=tags,
                created=created, ended=None if status == "running" else created + rng.uniform(10, 50000),
                run_info={"user": f"user{i % 7}", "host": f"host{i % 13}", "argv": ["train.py", "--lr", "0.1"],
                          "script": "/w/train.py", "cwd": "/w", "python": "3.11.7", "pid": 1000 + i,
                          "packages": packages},
                parameters={"General": {"lr": 0.1, "batch": 32}}, comment="")


def _one_task(rng: random.Random, i: int, created: float, per_task: int, packages: dict, ids: dict,
              rows: dict) -> None:
    tid, mid = uuid.uuid4().hex, uuid.uuid4().hex
    rows["tasks"].append(_task_row(rng, tid, i, created, packages))
    rows["models"].append(dict(id=mid, task_id=tid, origin="capture", name="last.pt", project=f"p{i % 100}",
                               framework="PyTorch", source_path="/w/last.pt", tags=[], comment="", meta={},
                               created=created, updated=created + per_task))
    snaps = []
    for seq in range(1, per_task + 1):
        snaps.append(dict(id=uuid.uuid4().hex, model_id=mid, seq=seq, iteration=seq * 100, status="stored",
                          uri=f"/data/runs/{tid}/models/{seq}/last.pt", entry="", digest=f"blake3:{rng.getrandbits(256):064x}",
                          size=1 << 20, files=[], created=created + seq))
    rows["snapshots"] += snaps
    if ids["models"] and rng.random() < 0.5:  # loads a recent task's last snapshot
        back = rng.randrange(1, min(50, len(ids["models"])) + 1)
        other = ids["models"][-back]
        rows["model_loads"].append(dict(id=uuid.uuid4().hex, task_id=tid, model_id=other[0], snapshot_id=other[1],
                                        path="/w/last.pt", digest=None, framework="PyTorch", created=created + 1))
    ids["tasks"].append(tid)
    ids["models"].append((mid, snaps[-1]["id"]))


def _graphs(engine, rng: random.Random, start: float, packages: dict) -> dict:  # type: ignore[no-untyped-def]
    """The chain and the fan (see the module's docstring); their end points."""
    from autolog.db import schema as s

    rows: dict[str, list] = {"tasks": [], "models": [], "snapshots": [], "model_loads": []}
    previous = fan_source = fan_model = None
    chain = []
    for n in range(CHAIN + FAN + 1):
        tid, mid, sid = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
        created = start + n
        rows["tasks"].append(_task_row(rng, tid, n, created, packages, status="completed"))
        if n <= CHAIN:  # the chain's tasks, and the fan's producer (n == CHAIN), each make a model
            rows["models"].append(dict(id=mid, task_id=tid, origin="capture", name=f"stage-{n}.pt", project="graphs",
                                       framework="PyTorch", source_path=f"/w/stage-{n}.pt", tags=[], comment="",
                                       meta={}, created=created, updated=created))
            rows["snapshots"].append(dict(id=sid, model_id=mid, seq=1, iteration=1, status="stored", uri=f"/g/{mid}",
                                          entry="", digest=f"blake3:{rng.getrandbits(256):064x}", size=1, files=[],
                                          created=created))
        loads = previous if n < CHAIN else fan_source  # a chain task loads the previous one's model
        if loads is not None:
            rows["model_loads"].append(dict(id=uuid.uuid4().hex, task_id=tid, model_id=loads[0], snapshot_id=loads[1],
                                            path=None, digest=None, framework="PyTorch", created=created))
        if n < CHAIN:
            chain.append(tid)
            previous = (mid, sid)
        elif n == CHAIN:
            fan_source, fan_model = (mid, sid), mid
    with engine.begin() as conn:
        for table, values in rows.items():
            conn.execute(s.metadata.tables[table].insert(), values)
    return {"chain_end": chain[-1], "chain_start": chain[0], "fan_model": fan_model}


def _scalars(engine, task_id: str) -> str:  # type: ignore[no-untyped-def]
    from autolog.db import schema as s

    now = time.time()
    rows = [dict(task_id=task_id, title="loss" if k < 5 else "accuracy", series=f"s{k}", iteration=i,
                 value=1.0 / (i + 1) + k, time=now) for k in range(10) for i in range(10_000)]
    with engine.begin() as conn:
        conn.execute(s.scalars.insert(), rows)
    return task_id


def page_after(client, path: str, pages: int) -> str:  # type: ignore[no-untyped-def]
    """The cursor of page `pages + 1` of a list, walked to page by page."""
    cursor = None
    for _ in range(pages):
        sep = "&" if "?" in path else "?"
        cursor = client.get(path + (f"{sep}cursor={cursor}" if cursor else "")).json()["next_cursor"]
        if cursor is None:
            raise SystemExit(f"{path} has fewer than {pages + 1} pages: build a bigger store (--tasks).")
    return cursor


def routes(client, ids: dict) -> list[tuple[str, str, float]]:  # type: ignore[no-untyped-def]
    """(name, path, target ms) of every route timed."""
    timed = [("projects", "/api/projects", PAGE_MS)]
    for sort in ("-created", "created", "name", "-name", "status", "-status", "duration", "-duration"):
        timed.append((f"tasks sort={sort}", f"/api/tasks?sort={sort}", PAGE_MS))
    pages = min(999, len(client.get("/api/tasks?limit=1").json()["tasks"]) and ids["tasks_built"] // 50 - 1)
    for sort in ("-created", "name", "-duration"):
        cursor = page_after(client, f"/api/tasks?sort={sort}", pages)
        timed.append((f"tasks sort={sort} page {pages + 1}", f"/api/tasks?sort={sort}&cursor={cursor}", PAGE_MS))
    for name, query in (("project", "project=p7"), ("status", "status=failed"), ("tag", "tag=rare"),
                        ("q", "q=vit-9999"), ("project+status+name", "project=p7&status=running&sort=name")):
        timed.append((f"tasks {name}", f"/api/tasks?{query}", PAGE_MS))
    timed += [
        ("task", f"/api/tasks/{ids['task']}", PAGE_MS),
        ("task with 100k scalars", f"/api/tasks/{ids['scalars_task']}", PAGE_MS),
        ("scalars 10 x 10,000 points", f"/api/tasks/{ids['scalars_task']}/scalars", PAGE_MS),
        ("model", f"/api/models/{ids['model']}", PAGE_MS),
        ("model loaded by 198 tasks", f"/api/models/{ids['fan_model']}", PAGE_MS),
        ("page /tasks/ID", f"/tasks/{ids['task']}", PAGE_MS),
        ("lineage task", f"/api/lineage?task={ids['task']}", LINEAGE_MS),
        ("lineage chain of 200 from its end", f"/api/lineage?task={ids['chain_end']}&depth=1000", LINEAGE_MS),
        ("lineage chain of 200 from its start", f"/api/lineage?task={ids['chain_start']}&depth=1000", LINEAGE_MS),
        ("lineage fan of 200", f"/api/lineage?model={ids['fan_model']}", LINEAGE_MS),
    ]
    return timed


class ServerTime:
    """ASGI wrapper: how long the app took to answer each request, from its call to its last byte (what the
    server spends; the test client's own transport is left out)."""

    def __init__(self, app):  # type: ignore[no-untyped-def]
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        await self.app(scope, receive, send)
        self.last_ms = (time.perf_counter() - start) * 1000


def measure(client, timer: ServerTime, timed: list, rounds: int) -> list[dict]:  # type: ignore[no-untyped-def]
    results = []
    for name, path, target in timed:
        response = client.get(path)  # warm-up; also checks the route answers
        if response.status_code != 200:
            raise SystemExit(f"{name}: {path} answered {response.status_code}: {response.text[:300]}")
        times = []
        for _ in range(rounds):
            client.get(path)
            times.append(timer.last_ms)
        median = statistics.median(times)
        results.append({"route": name, "median_ms": round(median, 2), "max_ms": round(max(times), 2),
                        "target_ms": target, "pass": median <= target})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="folder of the store (built there once, reused after)")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--snapshots-per-task", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    home = Path(args.store or tempfile.mkdtemp(prefix="autolog-bench-ui-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ["AUTOLOG_HOME"] = str(home)
    os.environ.pop("AUTOLOG_DB_URL", None)
    marker = home / "built.json"
    build_s = None
    if not marker.exists():
        start = time.perf_counter()
        ids = build(args.tasks, args.snapshots_per_task)
        build_s = round(time.perf_counter() - start, 1)
        marker.write_text(json.dumps(ids))
    ids = json.loads(marker.read_text())

    from starlette.testclient import TestClient

    from autolog.config import load_settings
    from autolog.context import Context
    from autolog.ui.app import create_app

    timer = ServerTime(create_app(Context(load_settings()), loopback_only=True))
    with TestClient(timer, base_url="http://127.0.0.1") as client:  # one event loop for every request
        results = measure(client, timer, routes(client, ids), args.rounds)
    report = {"store": str(home), "build_s": build_s, "rounds": args.rounds, "results": results,
              "all_pass": all(r["pass"] for r in results)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"store {home} (built in {build_s} s)" if build_s else f"store {home} (reused)")
    for r in results:
        print(f"{'PASS' if r['pass'] else 'MISS'}  {r['median_ms']:8.2f} ms  (max {r['max_ms']:8.2f}, target "
              f"{r['target_ms']:.0f})  {r['route']}")


if __name__ == "__main__":
    main()
