"""MetadataStore: every query autolog makes (tasks, models, snapshots, artifacts, lineage, the stat
cache), over the connections of connection.Database."""
from __future__ import annotations

import fnmatch
import os
import time
from typing import Any, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..errors import NotFoundError
from . import schema as s
from .connection import Database
from .records import (
    ArtifactRecord, LoadRecord, ModelRecord, SnapshotRecord, TaskRecord, new_id, new_time_ordered_id, to_record,
)


class MetadataStore(Database):
    def _one(self, cls: type, query: sa.Select) -> Any:
        with self.read() as conn:
            row = conn.execute(query).mappings().first()
        return to_record(cls, row) if row is not None else None

    def _all(self, cls: type, query: sa.Select) -> list:
        with self.read() as conn:
            return [to_record(cls, row) for row in conn.execute(query).mappings()]

    def _resolve(self, table: sa.Table, id_or_prefix: str, what: str) -> str:
        """Full id from an id or a unique prefix of one (as the CLI accepts)."""
        if len(id_or_prefix) == 32:
            return id_or_prefix.lower()
        # ids are lowercase hex; LIKE ignores case on SQLite but not on PostgreSQL: answer alike on both
        prefix = id_or_prefix.lower()
        query = sa.select(table.c.id).where(table.c.id.startswith(prefix, autoescape=True)).limit(2)
        with self.read() as conn:
            ids = conn.execute(query).scalars().all()
        if len(ids) != 1:
            problem = "no" if not ids else "more than one"
            raise NotFoundError(f"There is {problem} {what} whose id starts with '{id_or_prefix}'. Give more of the id.")
        return ids[0]

    # -- tasks ----------------------------------------------------------------------------
    def create_task(self, **values: Any) -> TaskRecord:
        values.setdefault("id", new_id())
        values.setdefault("created", time.time())
        with self.write() as conn:
            conn.execute(s.tasks.insert().values(**values))
        return self.get_task(values["id"])

    def update_task(self, task_id: str, **values: Any) -> None:
        with self.write() as conn:
            conn.execute(s.tasks.update().where(s.tasks.c.id == task_id).values(**values))

    def get_task(self, task_id: str) -> TaskRecord:
        full = self._resolve(s.tasks, task_id, "task")
        record = self._one(TaskRecord, sa.select(s.tasks).where(s.tasks.c.id == full))
        if record is None:
            raise NotFoundError(f"There is no task with id '{task_id}'. List tasks with `autolog task list`.")
        return record

    def find_tasks(
        self,
        project: str | None = None,
        name: str | None = None,
        status: str | None = None,
        tags: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[TaskRecord]:
        """Matching tasks, newest first. tags: every one must be present."""
        query = sa.select(s.tasks).order_by(s.tasks.c.created.desc())
        if project is not None:
            query = query.where(s.tasks.c.project == project)
        if name is not None:
            query = query.where(s.tasks.c.name == name)
        if status is not None:
            query = query.where(s.tasks.c.status == status)
        if not tags:
            return self._all(TaskRecord, query.limit(limit))
        found = [t for t in self._all(TaskRecord, query) if set(tags) <= set(t.tags)]
        return found[:limit] if limit is not None else found

    # -- models ---------------------------------------------------------------------------
    def create_model(self, **values: Any) -> ModelRecord:
        now = time.time()
        values.setdefault("id", new_id())
        values.setdefault("created", now)
        values.setdefault("updated", now)
        values.setdefault("tags", [])
        values.setdefault("comment", "")
        values.setdefault("meta", {})
        with self.write() as conn:
            conn.execute(s.models.insert().values(**values))
        return self.get_model(values["id"])

    def update_model(self, model_id: str, **values: Any) -> None:
        with self.write() as conn:
            conn.execute(s.models.update().where(s.models.c.id == model_id).values(**values))

    def get_model(self, model_id: str) -> ModelRecord:
        full = self._resolve(s.models, model_id, "model")
        record = self._one(ModelRecord, sa.select(s.models).where(s.models.c.id == full))
        if record is None:
            raise NotFoundError(f"There is no model with id '{model_id}'. List models with `autolog model list`.")
        return record

    def find_or_create_model(
        self, task_id: str, origin: str, key: dict[str, str], **values: Any
    ) -> tuple[ModelRecord, bool]:
        """The task's model matching key ({"source_path": p} or {"name": n}), created with key and values if
        there is none; returns (record, created).

        Processes attached to one task may save the same model at once: the task's row is locked
        while looking, so they get one model, not one each.
        """
        with self.write() as conn:
            # FOR NO KEY UPDATE: excludes the others looking, not inserts that merely reference the task.
            conn.execute(sa.select(s.tasks.c.id).where(s.tasks.c.id == task_id).with_for_update(key_share=True))
            query = _model_query(task_id, origin, key.get("source_path"), key.get("name"))
            row = conn.execute(query).mappings().first()
            if row is None:
                now = time.time()
                values = {"id": new_id(), "created": now, "updated": now, "tags": [], "comment": "", "meta": {},
                          **values, **key, "task_id": task_id, "origin": origin}
                conn.execute(s.models.insert().values(**values))
        if row is not None:
            return to_record(ModelRecord, row), False
        return self.get_model(values["id"]), True

    def models_of_task(self, task_id: str) -> list[ModelRecord]:
        """The task's output models, least recently saved first (so [-1] is the newest)."""
        query = sa.select(s.models).where(s.models.c.task_id == task_id, s.models.c.origin != "imported")
        return self._all(ModelRecord, query.order_by(s.models.c.updated, s.models.c.created))

    def find_models(
        self,
        project: str | None = None,
        name: str | None = None,
        task_id: str | None = None,
        framework: str | None = None,
        tags: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[ModelRecord]:
        """Matching models, most recently saved first."""
        query = sa.select(s.models).order_by(s.models.c.updated.desc())
        for column, value in (("project", project), ("name", name), ("task_id", task_id), ("framework", framework)):
            if value is not None:
                query = query.where(s.models.c[column] == value)
        if not tags:
            return self._all(ModelRecord, query.limit(limit))
        found = [m for m in self._all(ModelRecord, query) if set(tags) <= set(m.tags)]
        return found[:limit] if limit is not None else found

    # -- snapshots ------------------------------------------------------------------------
    def add_snapshot(self, model_id: str, **values: Any) -> SnapshotRecord:
        """Append a snapshot with the model's next seq, and make it the model's newest."""
        now = time.time()
        values.setdefault("id", new_time_ordered_id())
        values.setdefault("created", now)
        values.setdefault("files", [])
        values.setdefault("entry", "")
        with self.write() as conn:
            # Writers of one model (processes attached to one task) take turns from here to the commit,
            # or two would read the same max(seq) under READ COMMITTED. (SQLite: BEGIN IMMEDIATE did.)
            conn.execute(sa.select(s.models.c.id).where(s.models.c.id == model_id).with_for_update(key_share=True))
            last = conn.execute(sa.select(sa.func.max(s.snapshots.c.seq)).where(s.snapshots.c.model_id == model_id))
            seq = (last.scalar() or 0) + 1
            conn.execute(s.snapshots.insert().values(model_id=model_id, seq=seq, **values))
            conn.execute(s.models.update().where(s.models.c.id == model_id).values(updated=values["created"]))
        return self.get_snapshot(values["id"])

    def add_snapshots(self, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Append many snapshots (each row names its id and model_id) in one transaction, each with its
        model's next seq; returns id -> seq. The background journal writer's batch of saves."""
        now = time.time()
        seqs: dict[str, int] = {}
        with self.write() as conn:
            next_seq = {}
            for model_id in dict.fromkeys(r["model_id"] for r in rows):
                # Writers of one model (processes attached to one task) take turns, as in add_snapshot
                # (SQLite's BEGIN IMMEDIATE already holds the only write lock).
                if conn.dialect.name != "sqlite":
                    conn.execute(sa.select(s.models.c.id).where(s.models.c.id == model_id)
                                 .with_for_update(key_share=True))
                last = conn.execute(sa.select(sa.func.max(s.snapshots.c.seq)).where(s.snapshots.c.model_id == model_id))
                next_seq[model_id] = (last.scalar() or 0) + 1
            values = []
            for row in rows:
                seq = next_seq[row["model_id"]]
                next_seq[row["model_id"]] = seq + 1
                seqs[row["id"]] = seq
                values.append({"created": now, "files": [], "entry": "", **row, "seq": seq})
            conn.execute(s.snapshots.insert(), values)
            conn.execute(s.models.update().where(s.models.c.id == sa.bindparam("_model")).values(updated=now),
                         [{"_model": model_id} for model_id in next_seq])
        return seqs

    def finish_snapshots(self, updates: list[tuple[str, dict[str, Any]]],
                         hashes: list[tuple[str, os.stat_result, str]] = ()) -> None:
        """Many snapshots' outcomes (snapshot id, values) and stat-cache rows (host, stat, digest), in one
        transaction: rows with the same columns are written as one executemany. Only rows still pending:
        one that `autolog sync` settled meanwhile (it took this run for dead) keeps sync's verdict, which
        removed the object of a snapshot it failed."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for snapshot_id, values in updates:
            groups.setdefault(tuple(sorted(values)), []).append({"_id": snapshot_id, **values})
        with self.write() as conn:
            for columns, params in groups.items():
                statement = s.snapshots.update().where((s.snapshots.c.id == sa.bindparam("_id"))
                                                       & (s.snapshots.c.status == "pending"))
                conn.execute(statement.values({c: sa.bindparam(c) for c in columns}), params)
            if hashes:
                rows = [{"host": host, "device": st.st_dev, "inode": st.st_ino, "size": st.st_size,
                         "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "digest": digest}
                        for host, st, digest in hashes]
                insert = _dialect_insert(conn, s.file_hashes)
                known = ("size", "mtime_ns", "ctime_ns", "digest")
                conn.execute(insert.on_conflict_do_update(
                    index_elements=["host", "device", "inode"], set_={k: insert.excluded[k] for k in known},
                ), rows)

    def update_snapshot(self, snapshot_id: str, **values: Any) -> None:
        with self.write() as conn:
            conn.execute(s.snapshots.update().where(s.snapshots.c.id == snapshot_id).values(**values))

    def update_pending_snapshot(self, snapshot_id: str, **values: Any) -> bool:
        """update_snapshot while the row is still pending; False when another writer (`autolog sync
        --force` beside the live run) settled it first."""
        where = (s.snapshots.c.id == snapshot_id) & (s.snapshots.c.status == "pending")
        with self.write() as conn:
            return conn.execute(s.snapshots.update().where(where).values(**values)).rowcount > 0

    def get_snapshot(self, snapshot_id: str) -> SnapshotRecord:
        record = self._one(SnapshotRecord, sa.select(s.snapshots).where(s.snapshots.c.id == snapshot_id))
        if record is None:
            raise NotFoundError(f"There is no snapshot with id '{snapshot_id}'.")
        return record

    def snapshots_of(self, model_id: str) -> list[SnapshotRecord]:
        query = sa.select(s.snapshots).where(s.snapshots.c.model_id == model_id).order_by(s.snapshots.c.seq)
        return self._all(SnapshotRecord, query)

    def producer_of(self, digest: str, path: str | None = None, resolved: str | None = None,
                    imported: bool = True) -> SnapshotRecord | None:
        """The snapshot a load of this content (from path) comes from.

        Same bytes can come from several saves (a final model equal to the last checkpoint, a seeded
        rerun). The newest save of the very path that was loaded wins, then of the file it leads to
        (`resolved`: a `latest.ckpt` symlink to `last.ckpt`, beside a `best.ckpt` with those bytes);
        else the first save by any task; an import of the content only when no task saved it. A save
        whose bytes were stored comes before one still pending with its digest (hashed, its upload
        under way in a running process: it made those bytes too, and is the producer while no stored
        save is). imported=False: saves only (lineage.record_load looks for imports last).

        path is the real path of the load: a name that is not UTF-8 is compared as display_path text,
        as source_path was recorded (connection._escape_parameters escapes every value sent).
        """
        for statuses in (("stored", "local"), ("pending",)):
            saved = (
                sa.select(s.snapshots)
                .join(s.models, s.models.c.id == s.snapshots.c.model_id)
                .where(s.snapshots.c.digest == digest, s.snapshots.c.status.in_(statuses),
                       s.models.c.origin != "imported")
                .limit(1)
            )
            for name in dict.fromkeys(p for p in (path, resolved) if p is not None):
                found = self._one(SnapshotRecord, saved.where(s.models.c.source_path == name)
                                  .order_by(s.snapshots.c.created.desc()))
                if found is not None:
                    return found
            found = self._one(SnapshotRecord, saved.order_by(s.snapshots.c.created))
            if found is not None:
                return found
        return self.imported_of(digest) if imported else None

    def imported_of(self, digest: str) -> SnapshotRecord | None:
        """The first import of this content (a file no task saved, recorded when it was loaded)."""
        imported = (
            sa.select(s.snapshots)
            .join(s.models, s.models.c.id == s.snapshots.c.model_id)
            .where(s.snapshots.c.digest == digest, s.snapshots.c.status.in_(("stored", "local")),
                   s.models.c.origin == "imported")
            .order_by(s.snapshots.c.created)
            .limit(1)
        )
        return self._one(SnapshotRecord, imported)

    def producer_within(self, files: list, path: str, resolved: str | None = None, beside: tuple[str, ...] = (),
                        newest: int = 50) -> SnapshotRecord | None:
        """The newest save of this folder (path, or the folder it leads to) whose every file is among
        the loaded files, unchanged, apart from its top-level files matching `beside` (globs), which
        the folder may have gained, rewritten or lost since: the metrics and model card a Trainer
        writes next to its final save_model() (a run again into the same output_dir rewrites the card
        that save held) leave the folder that save; weights it gained do not. Only saves of this very
        folder as a model are looked at (its newest ones; not a Trainer's checkpoint-N, a snapshot of
        the run's model): extra files are no identity to look up elsewhere."""
        def weights(manifest: list) -> dict[str, str]:
            return {f["name"]: f["digest"] for f in manifest
                    if "/" in f["name"] or not any(fnmatch.fnmatchcase(f["name"], glob) for glob in beside)}

        loaded = weights(files)
        names = [p for p in (path, resolved) if p is not None]
        for statuses in (("stored", "local"), ("pending",)):
            query = (
                sa.select(s.snapshots)
                .join(s.models, s.models.c.id == s.snapshots.c.model_id)
                .where(s.models.c.source_path.in_(names), s.snapshots.c.source_path.in_(names),
                       s.models.c.origin != "imported", s.snapshots.c.status.in_(statuses))
                .order_by(s.snapshots.c.created.desc())
                .limit(newest)
            )
            for snapshot in self._all(SnapshotRecord, query):
                if loaded and weights(snapshot.files) == loaded:
                    return snapshot
        return None

    def producer_around(self, digest: str, around: dict[str, set[str]]) -> SnapshotRecord | None:
        """The newest save of the innermost folder the loaded file is in that holds this very file,
        unchanged: save_pretrained(out), then load_file(out/model.safetensors); a Trainer's checkpoint-N
        folder (a snapshot of output_dir's model), then a load of one of its files; out/tokenizer saved
        once, then out every epoch (each holding it): the tokenizer's save. around: each folder around
        the file -> the file's names inside it (display_path text, as rows hold them). Only saves of
        those folders, by the models saved there, are looked at (a copy of the file elsewhere links to a
        save of that file only): each file of a folder has no row of its own."""
        if not around:
            return None
        folders = list(around)
        for statuses in (("stored", "local"), ("pending",)):
            query = (
                sa.select(s.snapshots)
                .join(s.models, s.models.c.id == s.snapshots.c.model_id)
                .where(s.models.c.source_path.in_(folders), s.snapshots.c.source_path.in_(folders),
                       s.models.c.origin != "imported", _unindexed(s.snapshots.c.status).in_(statuses),
                       sa.cast(s.snapshots.c.files, sa.Text).contains(digest, autoescape=True))
                .order_by(s.snapshots.c.created.desc())
            )
            # (depth of the file inside the folder, snapshot) of those holding it, newest first: the
            # innermost wins, also across the two chains of folders of a path through a symlink
            holding = [(min(f["name"].count("/") for f in matching), snapshot)
                       for snapshot in self._all(SnapshotRecord, query)
                       if (matching := [f for f in snapshot.files if f["digest"] == digest
                                        and f["name"] in around.get(snapshot.source_path, ())])]
            if holding:
                return min(holding, key=lambda found: found[0])[1]
        return None

    def holds_sha256_identities(self) -> bool:
        """Whether any snapshot is identified by its sha256 (recorded before schema 4): loads that match no
        BLAKE3 digest are then looked up by sha256 too. One index probe."""
        digest = s.snapshots.c.digest
        query = sa.select(digest).where(digest >= "sha256:", digest < "sha256;").limit(1)
        with self.read() as conn:
            return conn.execute(query).first() is not None

    def stored_copies(self, digests: Sequence[str], uri_prefix: str) -> list[SnapshotRecord]:
        """Copies autolog stored of any of these contents under uri_prefix, oldest first (batch dedupe)."""
        prefix = uri_prefix.rstrip("/") + "/"
        query = (
            sa.select(s.snapshots)
            .where(
                s.snapshots.c.digest.in_(sorted(set(digests))),
                _unindexed(s.snapshots.c.status) == "stored",
                sa.func.substr(s.snapshots.c.uri, 1, len(prefix)) == prefix,
                _written_by_autolog(),
            )
            .order_by(s.snapshots.c.created)
        )
        return self._all(SnapshotRecord, query)

    def stored_copy(self, digest: str, uri_prefix: str) -> SnapshotRecord | None:
        """A copy autolog stored of this content under uri_prefix, for deduplication."""
        prefix = uri_prefix.rstrip("/") + "/"
        query = (
            sa.select(s.snapshots)
            .where(
                s.snapshots.c.digest == digest,
                _unindexed(s.snapshots.c.status) == "stored",
                # Not LIKE: SQLite's ignores case, and /runs/a must not find a copy under /Runs/a.
                sa.func.substr(s.snapshots.c.uri, 1, len(prefix)) == prefix,
                _written_by_autolog(),
            )
            .order_by(s.snapshots.c.created)
            .limit(1)
        )
        return self._one(SnapshotRecord, query)

    def snapshots_with_uri(self, uri: str, statuses: Sequence[str] = ("stored", "pending")) -> list[SnapshotRecord]:
        query = sa.select(s.snapshots).where(s.snapshots.c.uri == uri, s.snapshots.c.status.in_(statuses))
        return self._all(SnapshotRecord, query)

    def pending_snapshots(self, exclude_task: str | None = None) -> list[tuple[SnapshotRecord, str]]:
        """Journal entries: (pending snapshot, id of the task that saved it), oldest first."""
        query = (
            sa.select(s.snapshots, s.models.c.task_id.label("owner_task"))
            .join(s.models, s.models.c.id == s.snapshots.c.model_id)
            .where(s.snapshots.c.status == "pending")
            .order_by(s.snapshots.c.created)
        )
        if exclude_task is not None:
            query = query.where(s.models.c.task_id != exclude_task)
        with self.read() as conn:
            return [(to_record(SnapshotRecord, row), row["owner_task"]) for row in conn.execute(query).mappings()]

    # -- artifacts ------------------------------------------------------------------------
    def put_artifact(self, task_id: str, name: str, **values: Any) -> ArtifactRecord:
        """Insert, or replace the artifact of the same name."""
        values.setdefault("id", new_id())
        values.setdefault("created", time.time())
        values.setdefault("meta", {})
        with self.write() as conn:
            # An upsert, not delete + insert: two concurrent uploads of one name would both find
            # nothing to delete under READ COMMITTED, and the second insert would fail.
            insert = _dialect_insert(conn, s.artifacts).values(task_id=task_id, name=name, **values)
            conn.execute(insert.on_conflict_do_update(
                index_elements=["task_id", "name"], set_={k: insert.excluded[k] for k in values},
            ))
        return self._one(ArtifactRecord, sa.select(s.artifacts).where(s.artifacts.c.id == values["id"]))

    def artifacts_of(self, task_id: str) -> list[ArtifactRecord]:
        query = sa.select(s.artifacts).where(s.artifacts.c.task_id == task_id).order_by(s.artifacts.c.created)
        return self._all(ArtifactRecord, query)

    # -- lineage --------------------------------------------------------------------------
    def link_load(self, task_id: str, snapshot: SnapshotRecord, **values: Any) -> bool:
        """Record that task loaded this snapshot; False when it was already recorded."""
        insert = lambda conn: _dialect_insert(conn, s.model_loads).values(  # noqa: E731
            id=new_id(), task_id=task_id, model_id=snapshot.model_id, snapshot_id=snapshot.id,
            created=time.time(), **values,
        ).on_conflict_do_nothing(index_elements=["task_id", "model_id", "snapshot_id"])
        with self.write() as conn:  # two processes of one task may load the same file at once
            return conn.execute(insert(conn)).rowcount == 1

    def loads_by_task(self, task_id: str) -> list[LoadRecord]:
        query = sa.select(s.model_loads).where(s.model_loads.c.task_id == task_id).order_by(s.model_loads.c.created)
        return self._all(LoadRecord, query)

    def loads_of_model(self, model_id: str) -> list[LoadRecord]:
        query = sa.select(s.model_loads).where(s.model_loads.c.model_id == model_id).order_by(s.model_loads.c.created)
        return self._all(LoadRecord, query)

    # -- stat cache -----------------------------------------------------------------------
    def cached_digest(self, host: str, st: os.stat_result) -> str | None:
        t = s.file_hashes.c
        query = sa.select(t.digest).where(
            t.host == host, t.device == st.st_dev, t.inode == st.st_ino, t.size == st.st_size,
            t.mtime_ns == st.st_mtime_ns, t.ctime_ns == st.st_ctime_ns,
        )
        with self.read() as conn:
            return conn.execute(query).scalar()

    def remember_digest(self, host: str, st: os.stat_result, digest: str) -> None:
        known = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "digest": digest}
        with self.write() as conn:  # an upsert: processes sharing a file (or a reused inode) may race
            insert = _dialect_insert(conn, s.file_hashes).values(host=host, device=st.st_dev, inode=st.st_ino, **known)
            conn.execute(insert.on_conflict_do_update(
                index_elements=["host", "device", "inode"], set_={k: insert.excluded[k] for k in known},
            ))


def _model_query(task_id: str, origin: str, source_path: str | None, name: str | None) -> sa.Select:
    query = sa.select(s.models).where(s.models.c.task_id == task_id, s.models.c.origin == origin)
    if source_path is not None:
        query = query.where(s.models.c.source_path == source_path)
    if name is not None:
        query = query.where(s.models.c.name == name)
    return query.order_by(s.models.c.created.desc())


def _dialect_insert(conn: Connection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT (upserts) for the two databases autolog runs on."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _unindexed(column: sa.Column) -> sa.ColumnElement:
    """column as an expression no index can serve. SQLite plans without statistics and prefers an
    equality on the status index, which holds nearly every row: dedupe lookups would then scan all
    stored snapshots once per batch (quadratic over a run), instead of the few rows of one digest."""
    return column.concat("")


def _written_by_autolog() -> sa.ColumnElement:
    """Rows of objects autolog wrote (their journal kept the saved files' stat), which nobody else
    rewrites: never a registered file (`update_weights(register_uri=)`) or a save straight to a URL,
    recorded in place and the user's to overwrite."""
    return s.snapshots.c.source_stat.isnot(None)

