"""A closed task's background threads end: a process that runs task after task (a multiprocessing
Pool worker, a notebook, a hyper-parameter sweep in one process) keeps none of its closed tasks'
threads. They ended only with the process before: nine per task."""
from __future__ import annotations

import threading

import torch

from autolog import Task
from pipeline_helpers import assert_stored_tensor, output_snapshots, tensor, wait_until

PIPELINE_THREADS = ("autolog-recorder", "autolog-stager", "autolog-hasher", "autolog-lineage",
                    "autolog-coalescer", "autolog-uploader-")


def pipeline_threads(earlier: set[threading.Thread]) -> list[threading.Thread]:
    """Pipeline threads running now that were not in `earlier` (tests before this one in this process
    may leave some: a stager stuck on purpose, a task never closed)."""
    return [t for t in threading.enumerate() if t.name.startswith(PIPELINE_THREADS) and t not in earlier]


def test_task_after_task_in_one_process_keeps_no_closed_tasks_threads(local_store, work):
    earlier = set(threading.enumerate())
    for run in range(3):
        task = Task.init(project_name="pipeline", task_name=f"sweep {run}", output_uri=local_store)
        torch.save(tensor(run), work / "ckpt.pt")
        torch.load(work / "ckpt.pt")  # the lineage worker too
        assert pipeline_threads(earlier), "the task's workers run while it does"
        task.close()
        [snap] = output_snapshots(task, "ckpt.pt")
        assert_stored_tensor(snap, tensor(run))
        wait_until(lambda: not pipeline_threads(earlier), f"task {run}'s threads to end after its close()")
        supervisor = task._runtime.pipeline._supervisor
        assert all(w.stopped and w.restarts == 0 and w.death is None for w in supervisor.workers)
        assert supervisor.check() is None  # ended, not dead: nothing to restart


def test_a_job_after_the_workers_ended_starts_them_again(local_store, work):
    task = Task.init(project_name="pipeline", task_name="restart", output_uri=local_store)
    torch.save(tensor(1), work / "ckpt.pt")
    pipeline = task._runtime.pipeline
    task.flush()
    pipeline.stop()  # as close() does; the task itself goes on
    wait_until(lambda: all(not w.alive() for w in pipeline._supervisor.workers), "the workers to end")
    torch.save(tensor(2), work / "ckpt.pt")
    torch.save(tensor(3), work / "other.pt")
    assert task.flush(), "the saves after the workers ended were not stored"
    task.close()
    for name, steps in (("ckpt.pt", (1, 2)), ("other.pt", (3,))):
        for snap, step in zip(output_snapshots(task, name), steps, strict=True):
            assert_stored_tensor(snap, tensor(step))
