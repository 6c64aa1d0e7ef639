"""Runs one capture scenario in a fresh interpreter and prints a JSON report on the last line.

    python scenario.py '<json spec>'

Kept out of the test process on purpose: import order, patches and atexit are per process.
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sys
import traceback


def main(spec: dict) -> dict:
    case = spec["case"]
    env: dict = {"__name__": "__scenario__"}
    report: dict = {}
    if spec.get("import_first"):
        exec(case["imports"], env)
    os.chdir(spec["workdir"])
    env["path"] = os.path.abspath(spec.get("path") or case["filename"])
    if spec.get("before_init"):  # the same calls without autolog, to compare with
        exec(case["setup"], env)
        run_steps(spec["before_init"], case, spec, env, report, "plain")
    from autolog import Task

    task = Task.init(project_name="conformance", task_name=spec["task_name"], output_uri=spec.get("output_uri", True))
    report["task_id"] = task.id
    if not spec.get("import_first"):
        exec(case["imports"], env)
    if not spec.get("before_init"):
        exec(case["setup"], env)
    run_steps(spec["steps"], case, spec, env, report, "autolog", task)
    report["models"] = describe_models(task)
    task.close()
    return report


def run_steps(steps: list[str], case: dict, spec: dict, env: dict, report: dict, phase: str, task=None) -> None:
    """Steps: save, load, bad_save (into a missing folder), close, fault:<kind> (from now on), fault:none."""
    out = report.setdefault(phase, {"results": [], "errors": [], "checks": [], "warnings": {}})
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logging.getLogger("autolog").addHandler(handler)
    segment, undo = "none", None
    try:
        for step in steps:
            try:
                if step.startswith("fault:"):
                    if task is not None:
                        task.flush()  # what the previous segment queued is logged under that segment
                    if undo:
                        undo()
                    out["warnings"][segment] = warnings_in(log)
                    log.seek(0), log.truncate()
                    segment = step.split(":", 1)[1]
                    undo = inject_fault(segment) if segment != "none" else None
                elif step == "save":
                    env["saved"] = None
                    exec(case["save"], env)
                    out["results"].append(type(env["saved"]).__name__)
                elif step == "load":
                    exec(case["load"], env)
                    if case.get("check") and "saved" in env:  # only the saving process knows what was saved
                        out["checks"].append(bool(eval(case["check"], env)))
                elif step == "close":
                    task.close()
                elif step == "bad_save":
                    good = env["path"]
                    # Under a regular file: savers that create missing folders (TF, Keras) fail too.
                    blocker = os.path.join(spec["workdir"], "not-a-folder")
                    open(blocker, "a").close()
                    env["path"] = os.path.join(blocker, "sub", case["filename"])
                    try:
                        exec(case["save"], env)
                    finally:
                        env["path"] = good
            except Exception as exc:  # noqa: BLE001 - reported to the test, which decides
                out["errors"].append({"step": step, "type": type(exc).__name__, "message": str(exc),
                                      "trace": traceback.format_exc()})
    finally:
        if undo:
            undo()
        out["warnings"][segment] = warnings_in(log)
        logging.getLogger("autolog").removeHandler(handler)


def warnings_in(log: io.StringIO) -> list[str]:
    return [line for line in log.getvalue().splitlines() if "was not logged" in line]


def describe_models(task) -> dict:
    from autolog.storage import collect_sources
    from autolog.storage.objects import hash_sources

    out = {}
    for direction, models in task.models.items():
        out[direction] = []
        for model in models:
            snaps = model.snapshots
            entry = {"id": model.id, "name": model.name, "framework": model.framework, "task": model.task,
                     "origin": model.origin, "source_path": model.source_path,
                     "snapshots": [{"id": s.id, "seq": s.seq, "status": s.status, "digest": s.digest,
                                    "iteration": s.iteration, "reason": s.reason,
                                    "files": [{"name": f["name"], "digest": f["digest"]} for f in s.files or []]}
                                   for s in snaps]}
            usable = [s for s in snaps if s.status in ("stored", "local")]
            if usable and direction == "output":
                local = model.get_local_copy()
                entry["local_copy"] = local
                entry["local_copy_digest"] = hash_sources(collect_sources(local)).digest
            out[direction].append(entry)
    loads = task._ctx.store.loads_by_task(task.id)
    out["loads"] = [{"model_id": ld.model_id, "snapshot_id": ld.snapshot_id, "path": ld.path} for ld in loads]
    return out


def inject_fault(kind: str):
    """Make one part of logging fail the way it fails in the field; returns the undo."""
    import sqlite3

    from autolog import capture, safety
    from autolog.snapshots import identity
    from autolog.db.store import MetadataStore
    from autolog.storage import objects

    def fail(exc):
        def raiser(*args, **kwargs):
            raise exc
        return raiser

    targets = {
        "db": [(MetadataStore, name, sqlite3.OperationalError("database is locked"))
               for name in ("add_snapshot", "add_snapshots", "create_model", "link_load", "producer_of",
                            "cached_digest")],
        # Small files are read on the training thread and written by publish_bytes, others staged.
        "storage": [(objects, name, OSError(28, "No space left on device")) for name in ("copy_out", "publish_bytes")],
        "hash": [(objects, "file_digest", OSError(5, "Input/output error")),
                 (objects, "bytes_digest", OSError(5, "Input/output error")),
                 (identity, "fd_digest", OSError(5, "Input/output error"))],
        "bug": [(capture.CaptureRecorder, "saved", RuntimeError("bug in autolog")),
                (capture.CaptureRecorder, "loaded", RuntimeError("bug in autolog"))],
    }[kind]
    originals = [(owner, name, owner.__dict__[name]) for owner, name, _ in targets]
    for owner, name, exc in targets:
        setattr(owner, name, fail(exc))

    def undo():
        for owner, name, original in originals:
            setattr(owner, name, original)
        safety._reported.clear()  # each fault kind gets its own "first warning"
    return undo


if __name__ == "__main__":
    result = main(json.loads(sys.argv[1]))
    print(json.dumps(result))
