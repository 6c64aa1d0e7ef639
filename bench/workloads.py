"""Measurements run one per fresh interpreter by run_bench.py; each prints one JSON line.

    python bench/workloads.py <name> '<json args>'
"""
from __future__ import annotations

import io
import json
import os
import resource
import shutil
import statistics
import sys
import threading
import time


def time_calls(owner, name: str, record) -> None:
    """owner.name is wrapped: record(args, kwargs, start, end) after each call, however it ends
    (perf_counter seconds). bench/experiments/ time autolog's own steps with it, in the run itself."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            record(args, kwargs, start, time.perf_counter())

    setattr(owner, name, wrapper)


def state_dict(megabytes: int, device: str = "cpu"):
    """float32 on the CPU; bf16 on a GPU (what a mixed-precision run saves). A CUDA save's time includes
    the copy to the host, as a user's does."""
    import torch

    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    n = megabytes * (1 << 20) // dtype.itemsize
    return {"weight": torch.zeros(n, dtype=dtype, device=device)}


def wait_for_start(task) -> None:
    """Until Task.init's background start is over: the task's row, then the rest (the packages, a
    warning), as a run that builds its model and trains before its first save finds it."""
    from autolog import Task

    Task.get_task(task_id=task.id)  # waits for the task's row
    for thread in threading.enumerate():
        if thread.name == "autolog-init":
            thread.join()


def save_calls(mode: str, megabytes: int, saves: int, workdir: str, device: str = "cpu") -> dict:
    """mode: plain | floor (plain save + shutil.copyfile of each snapshot) | autolog | autolog-started |
    clearml. autolog-started waits until Task.init's background start is over before the first save, as a
    run that builds its model and trains before it saves does; autolog saves at once. The peak RSS is
    the kernel's high-water mark: a thread sampling it would take the GIL from the saves it measures."""
    import torch

    sd = state_dict(megabytes, device)
    path = os.path.join(workdir, "model.pt")
    store = os.path.join(workdir, "store")
    os.makedirs(store, exist_ok=True)
    task = None
    if mode in ("autolog", "autolog-started"):
        from autolog import Task

        task = Task.init(project_name="bench", task_name=f"save-{megabytes}", output_uri=store)
        if mode == "autolog-started":
            wait_for_start(task)
    elif mode == "clearml":
        from clearml import Task as ClearMLTask

        ClearMLTask.set_offline(offline_mode=True)
        task = ClearMLTask.init(project_name="bench", task_name=f"save-{megabytes}", output_uri=store)
    calls = []
    start = time.perf_counter()
    for i in range(saves):
        sd["weight"][0] = i + 1  # new bytes each save
        if device != "cpu":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        torch.save(sd, path)
        calls.append(time.perf_counter() - t0)
        if mode == "floor":
            shutil.copyfile(path, os.path.join(store, f"model.{i}.pt"))
    closed = None  # what close() waited for after the last save
    if task is not None:
        closing = time.perf_counter()
        task.close()
        closed = time.perf_counter() - closing
    total = time.perf_counter() - start
    stored = sum(1 for _, _, files in os.walk(store) for name in files if name.endswith(".pt"))
    return {"calls": calls, "persisted": total, "closed": closed, "peak_rss_mb": _peak_rss_mb(), "stored": stored}


def import_and_init(workdir: str, first: str = "") -> dict:
    """first: a module imported before the clock starts (torch, as a training script does; torch,
    TensorFlow and scikit-learn all import asyncio, which autolog's wrapt would otherwise import). Its
    garbage is collected before the clock starts: else the full collection that torch's ~10^6 objects
    owe (~90 ms here) lands in whatever allocates next, autolog's import in this measure."""
    if first:
        import gc

        __import__(first)
        gc.collect()
    t0 = time.perf_counter()
    from autolog import Task

    task = Task.init(project_name="bench", task_name="init", output_uri=os.path.join(workdir, "store"))
    elapsed = time.perf_counter() - t0
    task.close()
    return {"seconds": elapsed}


def call_overhead(mode: str, n: int, rounds: int = 41) -> dict:
    """µs that the patch adds to torch.save of a tiny tensor to BytesIO ("task": a task is active,
    the target is skipped as not a file; "no-task": after close). Paired in one process: blocks of
    the patched call and of the original (`torch.save.__wrapped__`) alternate, and the median of the
    per-block differences is reported, since a torch.save varies by more than the patch costs."""
    import torch

    from autolog import Task

    task = Task.init(project_name="bench", task_name="overhead", output_uri=False)
    Task.get_task(task_id=task.id)  # the background start is over
    if mode == "no-task":
        task.close()
    patched, original = torch.save, torch.save.__wrapped__
    t = torch.zeros(4)

    def block(fn) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            fn(t, io.BytesIO())
        return (time.perf_counter() - t0) / n * 1e6

    block(patched), block(original)
    diffs, plain = [], []
    for _ in range(rounds):
        p, o = block(patched), block(original)
        diffs.append(p - o)
        plain.append(o)
    return {"us": statistics.median(diffs), "plain_us": statistics.median(plain)}


def task_ready(workdir: str) -> dict:
    """Task.init until its row exists: the part of start-up that runs in the background."""
    t0 = time.perf_counter()
    from autolog import Task

    task = Task.init(project_name="bench", task_name="init", output_uri=os.path.join(workdir, "store"))
    Task.get_task(task_id=task.id)
    elapsed = time.perf_counter() - t0
    task.close()
    return {"seconds": elapsed}


def load_lineage(mode: str, megabytes: int, loads: int, workdir: str) -> dict:
    """torch.load of a file an earlier task saved: plain vs with lineage (first and repeated loads)."""
    import torch

    path = os.path.join(workdir, "known.pt")
    if mode == "autolog":
        from autolog import Task

        task = Task.init(project_name="bench", task_name="load", output_uri=False)
    times = []
    for _ in range(loads):
        t0 = time.perf_counter()
        torch.load(path)
        times.append(time.perf_counter() - t0)
    if mode == "autolog":
        task.close()
    return {"times": times}


def produce_known_file(megabytes: int, workdir: str) -> dict:
    import torch

    from autolog import Task

    task = Task.init(project_name="bench", task_name="produce", output_uri=os.path.join(workdir, "store"))
    torch.save(state_dict(megabytes), os.path.join(workdir, "known.pt"))
    task.close()
    return {}


def metadata_scale(tasks: int, snapshots_per_task: int, lookups: int) -> dict:
    """Build a store with many tasks and snapshots, then time the lookups users make (ms, median)."""
    import random
    import uuid

    from autolog import Task
    from autolog.context import default_context
    from autolog.db import schema as s

    ctx = default_context()
    engine = ctx.store.engine
    rng = random.Random(0)
    now = time.time()
    task_ids, shas = [], []
    t0 = time.perf_counter()
    batch = 10_000
    for first in range(0, tasks, batch):
        task_rows, model_rows, snap_rows = [], [], []
        for i in range(first, min(first + batch, tasks)):
            tid, mid = uuid.uuid4().hex, uuid.uuid4().hex
            task_ids.append(tid)
            task_rows.append(dict(id=tid, project=f"p{i % 100}", name=f"t{i}", task_type="training",
                                  status="completed", output_uri="/x", tags=[], created=now + i, run_info={},
                                  parameters={}, comment=""))
            model_rows.append(dict(id=mid, task_id=tid, origin="capture", name="last.pt", project=f"p{i % 100}",
                                   framework="PyTorch", source_path="/w/last.pt", tags=[], comment="", meta={},
                                   created=now + i, updated=now + i))
            for seq in range(1, snapshots_per_task + 1):
                sha = f"blake3:{rng.getrandbits(256):064x}"
                if rng.random() < 0.001:
                    shas.append(sha)
                snap_rows.append(dict(id=uuid.uuid4().hex, model_id=mid, seq=seq, iteration=seq, status="stored",
                                      uri=f"/x/{tid}/{seq}", entry="", digest=sha, size=1, files=[],
                                      created=now + i + seq / 100))
        with engine.begin() as conn:
            conn.execute(s.tasks.insert(), task_rows)
            conn.execute(s.models.insert(), model_rows)
            conn.execute(s.snapshots.insert(), snap_rows)
    build = time.perf_counter() - t0

    def timed(fn) -> float:
        times = []
        for _ in range(lookups):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)

    return {
        "build_s": build,
        "get_task_by_id_ms": timed(lambda: Task.get_task(task_id=rng.choice(task_ids))),
        "get_task_by_name_ms": timed(lambda: Task.get_task(project_name="p7", task_name=f"t{7 + 100 * rng.randrange(tasks // 100)}")),
        "task_models_ms": timed(lambda: [m.snapshots for m in Task.get_task(task_id=rng.choice(task_ids))
                                         .models["output"]]),
        "lineage_by_hash_ms": timed(lambda: ctx.store.producer_of(rng.choice(shas))),
    }


def _peak_rss_mb() -> float:
    """The process's peak resident set size, as the kernel tracks it (a thread sampling /proc instead
    woke every 5 ms and took the GIL from the saves it measured)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    name, args = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(globals()[name](**args)))
