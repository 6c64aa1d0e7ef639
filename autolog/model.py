"""Models and their snapshots: Model (any stored model), OutputModel (one a task writes),
InputModel (one a task reads), and ModelList (task.models["output"], indexable by name too)."""
from __future__ import annotations

import logging
import os
import shutil
import time
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from . import lineage, runtime
from .config import redact_url
from .context import Context, default_context
from .db import ModelRecord, SnapshotRecord
from .errors import IntegrityError, ModelNotFoundError, NotFoundError
from .storage import Sources, collect_file_list, collect_sources, fetch
from .storage.objects import object_content
from .storage.layout import display_path, real_path
from .snapshots.identity import identify
from .snapshots.waiting import wait_for_journal, wait_for_snapshot

if TYPE_CHECKING:
    from .task import Task

logger = logging.getLogger("autolog")

Snapshot = SnapshotRecord  # public name: seq, iteration, status, uri, sha256, size, created, ...
USABLE = ("stored", "local")


class Model:
    """A model in the store: its identity, its snapshots, and a way to fetch any of them."""

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
    def metadata(self) -> dict[str, Any]:
        return dict(self._refresh().meta)

    def get_all_metadata(self) -> dict[str, Any]:
        return self.metadata

    def get_metadata(self, key: str) -> Any:
        return self.metadata.get(key)

    def set_metadata(self, key: str, value: Any) -> None:
        meta = self.metadata
        meta[key] = value
        self._ctx.store.update_model(self.id, meta=meta)

    def set_tags(self, tags: Iterable[str]) -> None:
        self._ctx.store.update_model(self.id, tags=list(tags))

    def get_local_copy(self, version: int | None = None) -> str:
        """A local path with the snapshot's weights (file, folder, or checkpoint prefix), verified by sha256.

        The newest snapshot by default; see `snapshot()` for `version`. Remote snapshots are cached
        under $AUTOLOG_HOME/cache; local ones are returned in place.
        """
        snap = self.snapshot(version)
        if snap.status == "local":
            return _verified_local_path(self._ctx, snap)
        return fetch(snap.uri, snap.entry, snap.sha256, snap.files, self._ctx.cache_dir)

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
        framework: str | None = None,
        task_id: str | None = None,
        max_results: int | None = None,
    ) -> list["Model"]:
        """Models matching every given filter, most recently saved first."""
        ctx = default_context()
        records = ctx.store.find_models(
            project=project_name, name=model_name, task_id=task_id, framework=framework, tags=tags, limit=max_results
        )
        return [Model._from_record(ctx, r) for r in records]


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


class OutputModel(Model):
    """A model this task writes; each update_weights() call adds a snapshot.

    >>> model = OutputModel(task=task, framework="PyTorch")
    >>> model.update_weights(weights_filename="model.pt", iteration=3)
    """

    def __init__(
        self,
        task: "Task | None" = None,
        name: str | None = None,
        framework: str | None = None,
        tags: Sequence[str] | None = None,
        comment: str | None = None,
        config_dict: dict | None = None,
        label_enumeration: dict | None = None,
    ):
        run = task._writer("create an output model") if task is not None else runtime.live()
        if run is None:
            raise ValueError("OutputModel needs a task: call Task.init() first or pass task=.")
        meta: dict[str, Any] = {}
        if config_dict is not None:
            meta["config"] = config_dict
        if label_enumeration is not None:
            meta["labels"] = label_enumeration
        record = run.ctx.store.create_model(
            task_id=run.task_id, origin="api", name=name or run.record.name, project=run.record.project,
            framework=framework, tags=list(tags or []), comment=comment or "", meta=meta,
        )
        self._run = run
        self._bind(run.ctx, record)

    def update_weights(
        self,
        weights_filename: str | os.PathLike | None = None,
        upload_uri: str | None = None,
        target_filename: str | None = None,
        auto_delete_file: bool = False,
        register_uri: str | None = None,
        iteration: int | None = None,
    ) -> str:
        """Add a snapshot of a weights file (or folder), copied to the task's output_uri (or upload_uri).

        register_uri records an already stored object instead (read once to hash it, not copied).
        auto_delete_file deletes the local file after it was stored. Returns the snapshot's URI.
        """
        if register_uri is not None:
            return self._register_uri(register_uri, iteration)
        if weights_filename is None:
            raise ValueError("update_weights needs weights_filename= (a file or folder) or register_uri=.")
        sources = collect_sources(weights_filename)
        if target_filename and sources.single:
            name = display_path(target_filename)  # object keys are UTF-8
            sources = Sources(files=((sources.files[0][0], name),), name=name, single=True)
        return self._store(sources, iteration, upload_uri, auto_delete=[os.fspath(weights_filename)] if auto_delete_file else [])

    def update_weights_package(
        self,
        weights_filenames: Sequence[str | os.PathLike] | None = None,
        weights_path: str | os.PathLike | None = None,
        upload_uri: str | None = None,
        iteration: int | None = None,
        auto_delete_file: bool = False,
    ) -> str:
        """Add ONE snapshot holding several files (weights_filenames) or a whole folder (weights_path)."""
        if (weights_filenames is None) == (weights_path is None):
            raise ValueError("update_weights_package needs exactly one of weights_filenames= or weights_path=.")
        sources = collect_sources(weights_path) if weights_path is not None else collect_file_list(list(weights_filenames))
        deletions = [os.fspath(p) for p in (weights_filenames or [weights_path])] if auto_delete_file else []
        return self._store(sources, iteration, upload_uri, auto_delete=deletions)

    def _store(self, sources: Sources, iteration: int | None, upload_uri: str | None, auto_delete: list[str]) -> str:
        snap, real_uri = self._run.store_snapshot(self._record, sources, iteration, upload_uri)
        logger.info("autolog: model %r snapshot %d stored at %s", self._record.name, snap.seq, redact_url(real_uri))
        for path in auto_delete:
            delete_path(path)
        return real_uri

    def _register_uri(self, uri: str, iteration: int | None) -> str:
        content = object_content(uri)
        snap = self._ctx.store.add_snapshot(
            self.id, status="stored", uri=redact_url(uri), sha256=content.sha256, size=content.size, iteration=iteration,
            stored_at=time.time(),
        )
        logger.info("autolog: model %r snapshot %d registered at %s", self._record.name, snap.seq, redact_url(uri))
        return uri


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
        """Register weights nobody logged (a local path), by path and sha256 only; nothing is copied."""
        ctx = default_context()
        path = os.path.abspath(os.fspath(weights_url))
        sources = collect_sources(path)
        content = identify(ctx, sources)
        snap = lineage.import_content(ctx, project or "imported", path, sources, content, framework, name)
        if tags:
            ctx.store.update_model(snap.model_id, tags=list(tags))
        return cls._from_record(ctx, ctx.store.get_model(snap.model_id))

    def connect(self, task: "Task") -> None:
        """Record that `task` uses this model (its newest snapshot) as input."""
        store = task._writer("connect an input model").ctx.store
        snapshot = self.snapshot()
        store.link_load(task.id, snapshot, path=None, sha256=snapshot.sha256, framework=self.framework)


def _verified_local_path(ctx: Context, snap: SnapshotRecord) -> str:
    """A snapshot recorded without a copy is only as good as the file still on disk."""
    # Rows hold display text: a name that is not UTF-8 is turned back into the real path here.
    path = real_path(os.path.join(snap.uri, snap.entry) if snap.entry else snap.uri)
    try:
        content = identify(ctx, _recorded_sources(snap, path))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} is gone. This snapshot was recorded without a copy (output_uri=None); "
            "set output_uri to keep copies of future snapshots."
        ) from None
    if content.sha256 != snap.sha256:
        raise IntegrityError(
            f"{path} changed since snapshot {snap.seq} was recorded (no copy was kept, output_uri=None). "
            "Set output_uri to keep copies of future snapshots."
        )
    return path


def _recorded_sources(snap: SnapshotRecord, path: str) -> Sources:
    """The files a path-only snapshot was made of: exactly those, so other files beside them don't count."""
    recorded = [real_path(entry[0]) for entry in (snap.source_stat or {}).get("files", [])]
    if not snap.files or len(recorded) != len(snap.files):
        return collect_sources(path)
    return Sources(files=tuple(zip(recorded, (e["name"] for e in snap.files))), name="", entry=snap.entry)


def delete_path(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)
