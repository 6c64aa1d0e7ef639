"""What queries return: plain frozen dataclasses, one per table, detached from any connection."""
from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, fields
from typing import Any, Mapping, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class TaskRecord:
    id: str
    project: str
    name: str
    task_type: str
    status: str
    status_message: str | None
    output_uri: str | None
    tags: list
    created: float
    ended: float | None
    run_info: dict
    parameters: dict
    comment: str
    configuration: dict | None = None  # schema 3
    labels: dict | None = None  # schema 3


@dataclass(frozen=True)
class ModelRecord:
    id: str
    task_id: str | None
    origin: str
    name: str
    project: str
    framework: str | None
    source_path: str | None
    tags: list
    comment: str
    meta: dict
    created: float
    updated: float


@dataclass(frozen=True)
class SnapshotRecord:
    id: str
    model_id: str
    seq: int
    iteration: int | None
    status: str
    reason: str | None
    uri: str | None
    entry: str
    sha256: str | None
    size: int | None
    files: list
    source_path: str | None
    source_stat: dict | None
    stage_uri: str | None
    created: float
    stored_at: float | None = None  # when status became "stored" (NULL for rows stored before schema 2)
    digest: str | None = None  # the content's identity, "<algorithm>:<hex>" (storage/hashing.py)


@dataclass(frozen=True)
class ArtifactRecord:
    id: str
    task_id: str
    name: str
    kind: str
    uri: str
    filename: str
    sha256: str | None
    size: int | None
    preview: str
    meta: dict
    created: float


@dataclass(frozen=True)
class LoadRecord:
    id: str
    task_id: str
    model_id: str
    snapshot_id: str
    path: str | None
    sha256: str | None  # loads recorded before schema 4
    framework: str | None
    created: float
    digest: str | None = None  # the loaded content's digest


def new_id() -> str:
    return uuid.uuid4().hex


def new_time_ordered_id() -> str:
    """32 hex digits like new_id, led by the time in ms: for the rows written by the thousand (snapshots),
    whose primary-key index then grows at its end instead of one random page per row. (Only task and
    model ids are ever shortened to a prefix by users; those stay random.)"""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.randbits(80):020x}"


def to_record(cls: type[R], row: Mapping[str, Any]) -> R:
    return cls(**{f.name: row[f.name] for f in fields(cls)})  # type: ignore[arg-type]
