"""`autolog push`, its objects: the stored snapshots and file artifacts in a local folder are checked
against their recorded content hash and copied to the team storage under the same key (one already
there with the right content is not copied again); the rows being pushed are pointed at them."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from . import push_reports
from .config import Settings, redact_url
from .errors import AutologError, IntegrityError, StorageError
from .storage.blobstore import BlobStore, filesystem, is_local, normalize_uri, open_for_read
from .storage.hashing import algorithm_of, entry_digest, file_digest, sha256_digest, short, stream_digests
from .storage.layout import artifact_key, join, safe_component, snapshot_key, task_prefix

if TYPE_CHECKING:
    from .push import Plan, PushReport, Rows


@dataclass
class CopyJob:
    """One stored object: a file, or a folder of the files listed in `files`."""
    source: str  # local path
    key: str  # relative to the storage root
    digest: str  # "<algorithm>:<hex>": a snapshot's digest, an artifact's sha256
    size: int
    files: list


def relocate(plan: Plan, rows: Rows, settings: Settings, storage: str | None, report: PushReport) -> list[CopyJob]:
    """Point the rows to be written at the storage URI; the objects that must be copied there."""
    written = [(kind, r) for kind in ("snapshots", "artifacts") for r in plan.inserts[kind] + plan.updates[kind]]
    written += push_reports.uploaded_images(plan)
    moving = [(kind, r) for kind, r in written if _has_local_object(kind, r)]
    root = _storage_root(storage, settings, len(moving))
    report.storage = root
    if root is None:
        return []
    owners = _owner_roots(rows)
    defaults = normalize_uri(settings.default_output_uri), normalize_uri(str(settings.local_storage))
    jobs: dict[str, CopyJob] = {}
    for kind, row in moving:
        source = normalize_uri(row["uri"])
        if source not in jobs:
            roots = owners.get(row.get("task_id") or row.get("model_id"), ()) + defaults
            key = _relative_key(source, roots) or _own_key(kind, row, rows)
            digest = row.get("digest") if kind == "snapshots" else sha256_digest(row["sha256"])
            jobs[source] = CopyJob(source, key, digest, row["size"] or 0, row.get("files") or [])
        row["uri"] = redact_url(join(root, jobs[source].key))
    for task in plan.inserts["tasks"] + plan.updates["tasks"]:
        if task["output_uri"] and is_local(task["output_uri"]):
            task["output_uri"] = redact_url(root)
    return list(jobs.values())


def _has_local_object(kind: str, row: dict) -> bool:
    stored = row["status"] == "stored" and bool(row["uri"]) if kind == "snapshots" else row["kind"] != "url"
    return stored and is_local(row["uri"])


def _storage_root(storage: str | None, settings: Settings, local_objects: int) -> str | None:
    if storage:
        return normalize_uri(storage)
    default = normalize_uri(settings.default_output_uri)
    if default != normalize_uri(str(settings.local_storage)):
        return default
    if local_objects:
        raise AutologError(f"{local_objects} object(s) to push are in local storage on this machine, and no team "
                           "storage is configured. Pass --storage URI (e.g. --storage s3://bucket/prefix), or set "
                           "[sdk.development] default_output_uri / AUTOLOG_DEFAULT_OUTPUT_URI.")
    return None


def _owner_roots(rows: Rows) -> dict[str, tuple[str, ...]]:
    """task id and model id -> the output_uri its objects were stored under."""
    roots = {tid: (normalize_uri(t["output_uri"]),) for tid, t in rows["tasks"].items() if t["output_uri"]}
    for model in rows["models"].values():
        roots[model["id"]] = roots.get(model["task_id"], ())
    return roots


def _relative_key(path: str, roots: Iterable[str]) -> str | None:
    for root in roots:
        if path.startswith(root.rstrip("/") + "/"):
            return path[len(root.rstrip("/")) + 1:]
    return None


def _own_key(kind: str, row: dict, rows: Rows) -> str:
    """The key autolog gives such an object, for one kept outside any known root (register_uri=, or
    a default_output_uri configured differently back then)."""
    name = os.path.basename(normalize_uri(row["uri"]))
    if kind == "reports":
        return push_reports.own_key(row, rows)
    if kind == "artifacts":
        task = rows["tasks"][row["task_id"]]
        return f"{artifact_key(task_prefix(task['project'], task['name'], task['id']), row['name'], row['id'])}/{name}"
    model = rows["models"][row["model_id"]]
    task = rows["tasks"].get(model["task_id"] or "")
    prefix = task_prefix(task["project"], task["name"], task["id"]) if task else safe_component(model["project"])
    return f"{snapshot_key(prefix, model['name'], model['id'], row['seq'])}/{name}"


def copy_objects(jobs: list[CopyJob], report: PushReport, progress: bool) -> None:
    """Copy each object absent from the storage (a dry run only counts them)."""
    if not jobs or report.storage is None:
        return
    from tqdm import tqdm

    store = BlobStore(report.storage)
    if not report.dry_run:
        store.check_writable()
    with tqdm(total=sum(j.size for j in jobs), unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
              desc="autolog push: objects", disable=None if progress else True) as bar:
        for job in jobs:
            parts = _parts(job)
            if all(_present(store, key, size, sha) for _, key, size, sha in parts):
                report.objects["already_there"] += 1
            else:
                for local, key, _, _ in parts:
                    if not report.dry_run:
                        store.put_file(local, key)
                report.objects["copied"] += 1
                report.objects["bytes_copied"] += job.size
            bar.update(job.size)


def _parts(job: CopyJob) -> list[tuple[str, str, int, str]]:
    """(local file, key, size, digest) of each file of the object, checked against what was recorded."""
    entries = job.files or [{"name": "", "size": job.size, "digest": job.digest}]
    parts = []
    for e in entries:
        local = os.path.join(job.source, e["name"]) if e["name"] else job.source
        if not os.path.isfile(local):
            raise StorageError(f"{local} is recorded as stored but is missing (deleted by hand?). Push the other "
                               "tasks with --task, or delete the runs that need it.")
        expected = entry_digest(e)
        if expected is None:  # registered by URI, its background hash never finished
            raise IntegrityError(f"{local} has no recorded content hash to check it against, so it is not pushed. "
                                 "Push the other tasks with --task.")
        got = file_digest(local, algorithm_of(expected))
        if got != expected:
            raise IntegrityError(f"{local} does not match its recorded content hash ({short(got)} != {short(expected)}): "
                                 "the local copy was altered, so it is not pushed. Push the other tasks with --task.")
        parts.append((local, f"{job.key}/{e['name']}" if e["name"] else job.key, e["size"], expected))
    return parts


def _present(store: BlobStore, key: str, size: int, digest: str) -> bool:
    """The target already holds these bytes at key (a rerun after an interrupted push)."""
    url = store.url(key)
    algorithm = algorithm_of(digest)
    if store.local:
        return os.path.isfile(url) and os.path.getsize(url) == size and file_digest(url, algorithm) == digest
    fs, path = filesystem(url)
    if not fs.exists(path) or fs.size(path) != size:
        return False
    with open_for_read(url) as f:
        return stream_digests(f, (algorithm,))[0][0] == digest
