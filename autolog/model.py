"""Models and their snapshots: Model (any stored model), InputModel (one a task reads), and ModelList
(task.models["output"], indexable by name too). OutputModel (one a task writes) is in output_model.py."""
from __future__ import annotations

import logging
import os
import shutil
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from . import lineage
from .context import Context, default_context
from .db import ModelRecord, SnapshotRecord
from .errors import IntegrityError, ModelNotFoundError, NotFoundError
from .model_design import RESERVED_KEYS, design_dict, design_of, labels_of, user_metadata
from .model_reporting import ModelReporting
from .storage import collect_sources, fetch, fetch_sha256, hash_sources, verify
from .storage.hashing import IDENTITY, algorithm_of
from .storage.layout import real_path
from .snapshots.identity import identify
from .snapshots.in_place import local_location, recorded_sources
from .snapshots.waiting import wait_for_journal, wait_for_snapshot
from .tag_query import parse_tag_query

if TYPE_CHECKING:
    from .task import Task

logger = logging.getLogger("autolog")

Snapshot = SnapshotRecord  # public name: seq, iteration, status, uri, digest, sha256, size, created, ...
USABLE = ("stored", "local")


class Model(ModelReporting):
    """A model in the store: its identity, its snapshots, a way to fetch any of them, and its own reports
    (report_scalar, report_table, ... and get_reported_scalars(): model_reporting.py)."""

    def __init__(self, model_id: str):
        ctx = default_context()
        self._bind(ctx, ctx.store.get_model(model_id))

    @classmethod
    def _from_record(cls, ctx: Context, record: ModelRecord) -> "Model":
        model = cls.__new__(cls)
        model._bind(ctx, record)
        return model

    def _bind(self, ctx: Context, record: ModelRecord) -> None:
        self._ctx = ctx
        self._record = record

    def _refresh(self) -> ModelRecord:
        self._record = self._ctx.store.get_model(self._record.id)
        return self._record

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} id={self.id[:8]} framework={self.framework}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    id = property(lambda self: self._record.id, doc="The model's id.")
    name = property(lambda self: self._refresh().name, doc="The model's name.")
    project = property(lambda self: self._record.project)
    task = property(lambda self: self._record.task_id, doc="Id of the task that created it (None if imported).")
    origin = property(lambda self: self._record.origin, doc="'capture', 'api' or 'imported'.")
    framework = property(lambda self: self._refresh().framework)
    source_path = property(lambda self: self._record.source_path, doc="Where the file was saved or imported from.")
    tags = property(lambda self: list(self._refresh().tags))
    comment = property(lambda self: self._refresh().comment)

    @property
    def snapshots(self) -> list[Snapshot]:
        """Every snapshot, oldest first, whatever its status (saves of this process included)."""
        wait_for_journal()
        return self._ctx.store.snapshots_of(self.id)

    def snapshot(self, version: int | None = None) -> Snapshot:
        """A usable snapshot: the newest (None), seq number `version` (>0), or counting back (-1, -2, ...).

        Snapshots this process is still storing are waited for first.
        """
        for snap in self.snapshots:
            if snap.status == "pending":
                wait_for_snapshot(snap.id)
        usable = [s for s in self.snapshots if s.status in USABLE]
        if version is None or version < 0:
            index = -1 if version is None else version
            if len(usable) >= abs(index):
                return usable[index]
        else:
            for snap in usable:
                if snap.seq == version:
                    return snap
        raise NotFoundError(
            f"Model {self.name!r} ({self.id[:8]}) has no usable snapshot {version if version is not None else ''}"
            f" (statuses: {[s.status for s in self.snapshots]}). See `autolog model show {self.id[:8]}`."
        )

    @property
    def iteration(self) -> int | None:
        snaps = [s for s in self.snapshots if s.status in USABLE]
        return snaps[-1].iteration if snaps else None

    @property
    def url(self) -> str | None:
        """URI of the newest usable snapshot."""
        snaps = [s for s in self.snapshots if s.status in USABLE]
        return snaps[-1].uri if snaps else None

    @property
    def labels(self) -> dict[str, int]:
        """The label enumeration {label: integer id} ({} when it has none)."""
        return labels_of(self._refresh().meta)

    @property
    def config_text(self) -> str:
        """The design (configuration) as text ("" when it has none). A config_dict is kept as JSON text."""
        return design_of(self._refresh().meta)

    @property
    def config_dict(self) -> dict[str, Any]:
        """The design parsed as JSON ({} when it has none); ValueError when config_text is not a JSON object
        (ClearML parses HOCON here: a design set as text in another syntax has no dict form)."""
        return design_dict(self.config_text, f"{self._record.name!r} ({self.id[:8]})")

    @property
    def metadata(self) -> dict[str, Any]:
        """What set_metadata() stored (the design and labels have properties of their own)."""
        return user_metadata(self._refresh().meta)

    def get_all_metadata(self) -> dict[str, Any]:
        return self.metadata

    def get_metadata(self, key: str) -> Any:
        return self.metadata.get(key)

    def set_metadata(self, key: str, value: Any) -> None:
        """Store value (JSON-able) under key in the model's metadata."""
        if key in RESERVED_KEYS:
            raise ValueError(f"Metadata key {key!r} is where autolog keeps the model's design and labels: "
                             "set those with update_design() and update_labels(), and pick another key.")
        meta = dict(self._refresh().meta)
        meta[key] = value
        self._ctx.store.update_model(self.id, meta=meta)

    def set_tags(self, tags: Iterable[str]) -> None:
        self._ctx.store.update_model(self.id, tags=list(tags))

    def get_local_copy(self, version: int | None = None) -> str:
        """A local path with the snapshot's weights (file, folder, or checkpoint prefix), verified by its digest.

        The newest snapshot by default; see `snapshot()` for `version`. Remote snapshots are cached
        under $AUTOLOG_HOME/cache; local ones are returned in place.
        """
        snap = self.snapshot(version)
        if snap.status == "local":
            return _verified_local_path(self._ctx, snap)
        return fetch(snap.uri, snap.entry, snap.digest, snap.files, self._ctx.cache_dir)

    def sha256(self, version: int | None = None) -> str:
        """The sha256 of a snapshot's bytes, to compare with `sha256sum` (snapshots are identified by BLAKE3,
        which is faster to compute; their sha256 is computed on demand). Read from the verified copy
        (get_local_copy) the first time it is asked for, then kept in the snapshot's row. A snapshot of
        several files: the sha256 over its sorted "name NUL file-sha256 LF" lines, as before schema 4."""
        snap = self.snapshot(version)
        if snap.sha256:
            return snap.sha256
        if not snap.digest:
            raise IntegrityError(f"Snapshot {snap.seq} of model {self.id[:8]} has no recorded content to compute "
                                 f"a sha256 from ({snap.status}: {snap.reason or 'its content is not known yet'}).")
        if snap.status == "local":  # no copy: the file where it was saved, checked against its digest
            path = self.get_local_copy(snap.seq)
            root = path[: len(path) - len(snap.entry)].rstrip(os.sep) if snap.entry else path  # path = root/entry
            sha = verify(root, snap.digest, snap.files, path, with_sha256=True)
        else:  # a copy in a local store is checked in place; a remote one while it is downloaded
            _, sha = fetch_sha256(snap.uri, snap.entry, snap.digest, snap.files, self._ctx.cache_dir)
        self._ctx.store.update_snapshot(snap.id, sha256=sha)
        return sha

    @property
    def loaded_by(self) -> list[str]:
        """Ids of the tasks that loaded this model, first load first."""
        seen: dict[str, None] = {}
        for load in self._ctx.store.loads_of_model(self.id):
            seen.setdefault(load.task_id, None)
        return list(seen)

    @classmethod
    def query_models(
        cls,
        project_name: str | None = None,
        model_name: str | None = None,
        tags: Sequence[str] | None = None,
        only_published: bool = False,
        include_archived: bool = False,
        max_results: int | None = None,
        metadata: dict[str, Any] | None = None,
        framework: str | None = None,
        task_id: str | None = None,
    ) -> list["Model"]:
        """Models matching every given filter, most recently saved first (ClearML's signature).

        tags: ClearML's tag query: any one of the tags by default, "__$and" first for all of them,
        "-tag" or "__$not" to exclude one (autolog/tag_query.py). metadata: {key: value} pairs the
        model's metadata must hold (compared as text, as ClearML stores them). Nothing is archived
        here, so include_archived changes nothing; models have no published state, so
        only_published=True raises instead of quietly finding none.
        """
        if only_published:
            raise ValueError("query_models(only_published=True): autolog models have no published state (there is "
                             "no server to publish to). Filter by tags instead, e.g. tag the release with "
                             "model.set_tags([..., 'published']) and query tags=['published'].")
        ctx = default_context()
        records = ctx.store.find_models(project=project_name, name=model_name, task_id=task_id, framework=framework,
                                        limit=None if tags or metadata else max_results)
        if tags:
            query = parse_tag_query(tags)
            records = [r for r in records if query.matches(r.tags)]
        if metadata:
            records = [r for r in records if _has_metadata(user_metadata(r.meta), metadata)]
        return [Model._from_record(ctx, r) for r in records[:max_results]]


def _has_metadata(meta: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(key in meta and str(meta[key]) == str(value) for key, value in wanted.items())


class ModelList(list):
    """A list of models ordered by last save (so [-1] is the newest), also indexable by model name."""

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            for model in reversed(self):
                if model.name == key:
                    return model
            raise KeyError(f"No model named {key!r}; names here: {[m.name for m in self]}")
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return [m.name for m in self]


class InputModel(Model):
    """A model this task reads. `InputModel(model_id)`, or the newest model named `name` in `project`."""

    def __init__(self, model_id: str | None = None, name: str | None = None, project: str | None = None):
        ctx = default_context()
        if model_id is None:
            if name is None:
                raise ValueError("InputModel needs model_id= or name= (and optionally project=).")
            found = ctx.store.find_models(project=project, name=name, limit=1)
            if not found:
                raise ModelNotFoundError(f"No model named {name!r} in project {project!r}. List them: `autolog model list`.")
            model_id = found[0].id
        self._bind(ctx, ctx.store.get_model(model_id))

    @classmethod
    def import_model(
        cls, weights_url: str | os.PathLike, name: str | None = None, project: str | None = None,
        framework: str | None = None, tags: Sequence[str] | None = None,
    ) -> "InputModel":
        """Register weights nobody logged (a local path), by path and content hash only; nothing is copied."""
        ctx = default_context()
        path = os.path.abspath(os.fspath(weights_url))
        sources = collect_sources(path)
        content = identify(ctx, sources)
        snap = lineage.import_content(ctx, project or "imported", path, sources, content, framework, name)
        if tags:
            ctx.store.update_model(snap.model_id, tags=list(tags))
        return cls._from_record(ctx, ctx.store.get_model(snap.model_id))

    def connect(self, task: "Task") -> None:
        """Record that `task` uses this model (its newest snapshot) as input. A task with no label
        enumeration takes this model's, as in ClearML: its output models created afterwards get it."""
        store = task._writer("connect an input model").ctx.store
        snapshot = self.snapshot()
        store.link_load(task.id, snapshot, path=None, digest=snapshot.digest, framework=self.framework)
        labels = self.labels
        if labels and not store.get_task(task.id).labels:
            store.update_task(task.id, labels=labels)


def _verified_local_path(ctx: Context, snap: SnapshotRecord) -> str:
    """A snapshot recorded without a copy is only as good as the file still on disk."""
    # Rows hold display text: a name that is not UTF-8 is turned back into the real path here.
    path = real_path(local_location(snap))
    if snap.digest is None:  # registered by path before the file existed: there is nothing to verify against
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} does not exist: snapshot {snap.seq} was registered by its path only "
                                    f"({snap.reason or 'no content recorded'}). Save the file there, or set "
                                    "output_uri to keep copies of future snapshots.")
        logger.warning("autolog: %s is returned unverified: snapshot %d was registered before the file existed, "
                       "so no content hash was recorded", path, snap.seq)
        return path
    try:
        sources = recorded_sources(snap, path)
        algorithm = algorithm_of(snap.digest)  # sha256 for snapshots recorded before schema 4
        content = identify(ctx, sources) if algorithm == IDENTITY else hash_sources(sources, algorithm)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} is gone. This snapshot was recorded without a copy (output_uri=None); "
            "set output_uri to keep copies of future snapshots."
        ) from None
    if content.digest != snap.digest:
        raise IntegrityError(
            f"{path} changed since snapshot {snap.seq} was recorded (no copy was kept, output_uri=None). "
            "Set output_uri to keep copies of future snapshots."
        )
    return path


def delete_path(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)
