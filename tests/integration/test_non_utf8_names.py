r"""File names that are not valid UTF-8 (on Linux b"mod\xe8le.pt", which Python holds as 'mod\udce8le.pt').

They are recorded, escaped the one way storage.layout.display_path writes them ('mod\\xe8le.pt'), in
rows and in storage keys; files are read by their real path; a lookup by the real path finds the row.
Real files with such names, on a real SQLite database (nothing mocked).
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from autolog.db import MetadataStore
from autolog.storage import objects
from autolog.storage import sources as sources_module
from autolog.storage.hashing import bytes_digest, manifest_digest
from autolog.storage.layout import display_path, real_path, safe_component

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="file names are bytes on Linux only")

NAME = b"mod\xe8le.pt"
ESCAPED_NAME = "mod\\xe8le.pt"
DATA = b"weights that were saved under a name that is not UTF-8"


def raw_path(folder: Path, name: bytes = NAME) -> str:
    """The path as Python sees it: the undecodable byte as a lone surrogate."""
    return os.fsdecode(os.fsencode(str(folder)) + b"/" + name)


@pytest.fixture
def saved(tmp_path: Path) -> str:
    path = raw_path(tmp_path)
    with open(path, "wb") as f:
        f.write(DATA)
    assert os.fsencode(path).endswith(NAME)
    return path


@pytest.fixture
def store(tmp_path: Path):
    st = MetadataStore(f"sqlite:///{tmp_path / 'meta.db'}")
    yield st
    if st._engine is not None:
        st._engine.dispose()


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# -- the one escaping function -------------------------------------------------------------------


def test_display_path_escapes_undecodable_bytes_as_fsencode_backslashreplace(saved):
    assert display_path(saved) == os.fsencode(saved).decode("utf-8", "backslashreplace")
    assert display_path(saved).endswith(ESCAPED_NAME)
    assert display_path(display_path(saved)) == display_path(saved)  # idempotent
    assert display_path(os.fsencode(saved)) == display_path(saved)  # bytes too
    assert display_path("/données/modèle.pt") == "/données/modèle.pt"  # valid text is untouched
    display_path("a\ud800b").encode("utf-8")  # any lone surrogate, not only escaped bytes


def test_real_path_finds_the_file_of_an_escaped_path(saved, tmp_path):
    assert real_path(display_path(saved)) == saved
    assert real_path(saved) == saved
    literal = tmp_path / "lit\\xe8ral"  # a name holding a real backslash is taken as it is
    literal.write_bytes(b"x")
    assert real_path(str(literal)) == str(literal)
    assert real_path(str(tmp_path / "missing\\xe8")) == str(tmp_path / "missing\\xe8")


def test_storage_key_components_are_utf8(saved):
    component = safe_component(os.path.basename(saved))
    component.encode("utf-8")
    assert component == "mod_xe8le.pt"


# -- the store ---------------------------------------------------------------------------------------


def test_store_records_a_model_and_snapshot_under_an_undecodable_name(store, saved, tmp_path):
    task = store.create_task(project="p", name="t", task_type="training", status="running", output_uri=None,
                             tags=[], run_info={"argv": ["train.py", saved]}, parameters={}, comment="")
    model, created = store.find_or_create_model(task.id, "capture", {"source_path": saved},
                                                name=os.path.basename(saved), project="p", framework="torch")
    assert created
    assert model.source_path == display_path(saved)
    assert model.name == ESCAPED_NAME
    again, created = store.find_or_create_model(task.id, "capture", {"source_path": saved},
                                                name=os.path.basename(saved), project="p", framework="torch")
    assert (again.id, created) == (model.id, False)  # looked up by the real path: the same model

    digest = bytes_digest(DATA)
    snap = store.add_snapshot(model.id, status="local", uri=saved, digest=digest, size=len(DATA), source_path=saved,
                              source_stat={"files": [[saved, len(DATA), 1]]},
                              files=[{"name": os.path.basename(saved), "size": len(DATA), "digest": digest}])
    assert snap.source_path == snap.uri == display_path(saved)
    assert snap.source_stat == {"files": [[display_path(saved), len(DATA), 1]]}
    assert snap.files[0]["name"] == ESCAPED_NAME
    assert store.get_task(task.id).run_info["argv"][1] == display_path(saved)

    found = store.producer_of(digest, saved)  # the path a load sees: the real one
    assert found is not None and found.id == snap.id
    assert store.producer_of(digest, display_path(saved)).id == snap.id

    # what the file holds is valid UTF-8 text, the escape included
    assert rows(tmp_path / "meta.db", "SELECT source_path, name FROM models") == [(display_path(saved), ESCAPED_NAME)]

    # a path read back from the row still reaches the file
    assert objects.fetch(snap.uri, "", digest, [], str(tmp_path / "cache")) == saved


def test_a_batch_escapes_only_its_undecodable_values_and_keeps_other_text(store, saved, tmp_path):
    """The recorder's batches (one executemany, JSON documents by the thousand) are checked as a whole
    for undecodable names: a single one among plain rows is escaped, the others, and text that JSON
    also writes with surrogate escapes (an emoji), are stored as they are."""
    task = store.create_task(project="p", name="t", task_type="training", status="running", output_uri=None,
                             tags=[], run_info={}, parameters={}, comment="")
    model, _ = store.find_or_create_model(task.id, "capture", {"source_path": saved}, name="m", project="p",
                                          framework="torch")
    plain, emoji = str(tmp_path / "plain.pt"), str(tmp_path / "mod\N{GRINNING FACE}l.pt")
    paths = [plain, saved, emoji, plain]
    ids = [f"{i:032x}" for i in range(1, 5)]
    seqs = store.add_snapshots([{"id": i, "model_id": model.id, "status": "pending", "source_path": p,
                                 "source_stat": {"files": [[p, 1, 1]], p: "key"}} for i, p in zip(ids, paths)])
    assert sorted(seqs.values()) == [1, 2, 3, 4]
    store.finish_snapshots([(i, {"status": "local", "uri": p}) for i, p in zip(ids, paths)])
    got = rows(tmp_path / "meta.db", "SELECT source_path, uri, source_stat FROM snapshots ORDER BY seq")
    expected = [display_path(p) for p in paths]
    assert expected[0] == plain and expected[2] == emoji and expected[1].endswith(ESCAPED_NAME)
    assert [(r[0], r[1]) for r in got] == [(p, p) for p in expected]
    assert [json.loads(r[2]) for r in got] == [{"files": [[p, 1, 1]], p: "key"} for p in expected]


def test_snapshot_sources_read_the_real_file_and_name_it_in_utf8(saved, tmp_path):
    sources = sources_module.collect_sources(saved)
    assert sources.files == ((saved, ESCAPED_NAME),) and sources.name == ESCAPED_NAME
    assert sources_module.source_path(sources) == saved
    assert sources_module.collect_sources(display_path(saved)).files[0][0] == saved  # from a row: the real file
    content = objects.hash_sources(sources)
    assert content.digest == bytes_digest(DATA)
    assert objects.hash_sources(sources, "sha256").sha256 == hashlib.sha256(DATA).hexdigest()


def test_a_folder_with_an_undecodable_member_is_stored_and_verified(tmp_path):
    folder = Path(raw_path(tmp_path, b"f\xe9lder"))
    folder.mkdir()
    member = raw_path(folder, b"w\xe8.bin")
    with open(member, "wb") as f:
        f.write(DATA)
    (folder / "ok.bin").write_bytes(b"ok")
    sources = sources_module.collect_sources(folder)
    assert sources.name == "f\\xe9lder"
    assert sorted(rel for _, rel in sources.files) == ["ok.bin", "w\\xe8.bin"]
    assert sources_module.source_path(sources) == str(folder)

    out = tmp_path / "out"
    from autolog.storage import BlobStore

    published = objects.publish(sources, BlobStore(str(out)), "p/t/models/m.1/0001", str(tmp_path / "cache"),
                                find_copy=lambda sha: None)
    published.uri.encode("utf-8")
    local = objects.fetch(published.uri, published.entry, published.content.digest, published.content.manifest,
                          str(tmp_path / "cache"))
    assert (Path(local) / "w\\xe8.bin").read_bytes() == DATA  # verified against the recorded manifest
    raw_manifest = [{"name": os.path.basename(member), "digest": bytes_digest(DATA)}]
    assert manifest_digest(raw_manifest) == manifest_digest([{**raw_manifest[0], "name": "w\\xe8.bin"}])


# -- end to end ---------------------------------------------------------------------------------------


SAVE = """
import os
from autolog import Task
import torch
path = os.fsdecode({path!r})
task = Task.init(project_name="p", task_name="save", output_uri=True)
torch.save({{"w": torch.ones(2)}}, path)
task.close()
print(task.id)
"""

LOAD = """
import os
from autolog import Task
import torch
path = os.fsdecode({path!r})
task = Task.init(project_name="p", task_name="load", output_uri=True)
assert torch.load(path)["w"].tolist() == [1.0, 1.0]
task.close()
print(task.id)
"""


def autolog_lines(stderr: str) -> list[str]:
    """autolog's warnings and any traceback; not the progress line close() shows when storing takes a
    while (a loaded machine), which blames nothing."""
    return [line for line in stderr.splitlines()
            if ("autolog" in line.lower() or "Traceback" in line) and "autolog: storing snapshots:" not in line]


def test_a_torch_save_under_an_undecodable_name_is_stored_and_linked_to_its_load(autolog_home, run_py, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    path = os.fsencode(str(work)) + b"/" + NAME

    saving = run_py(SAVE.format(path=path))
    assert saving.returncode == 0, saving.stderr
    assert autolog_lines(saving.stderr) == []  # no warning blaming the database
    saver_id = saving.stdout.split()[-1]

    store = MetadataStore(f"sqlite:///{autolog_home / 'autolog.db'}")
    try:
        [model] = store.models_of_task(saver_id)
        assert model.source_path == display_path(os.fsdecode(path))
        assert model.name == ESCAPED_NAME
        [snap] = store.snapshots_of(model.id)
        assert snap.status == "stored", snap.reason
        with open(path, "rb") as f:
            saved_bytes = f.read()
        assert snap.digest == bytes_digest(saved_bytes)
        stored = objects.fetch(snap.uri, snap.entry, snap.digest, snap.files or [], str(tmp_path / "cache"))
        with open(stored, "rb") as f:
            assert f.read() == saved_bytes

        loading = run_py(LOAD.format(path=path))
        assert loading.returncode == 0, loading.stderr
        assert autolog_lines(loading.stderr) == []
        loader_id = loading.stdout.split()[-1]
        [load] = store.loads_by_task(loader_id)
        assert (load.snapshot_id, load.model_id) == (snap.id, model.id)
        assert load.path == display_path(os.fsdecode(path))
    finally:
        if store._engine is not None:
            store._engine.dispose()


def test_the_public_models_view_of_an_undecodable_save(autolog_home, run_py, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    path = os.fsencode(str(work)) + b"/" + NAME
    code = SAVE.format(path=path) + """
[model] = task.models["output"]
local = model.get_local_copy()
with open(path, "rb") as f, open(local, "rb") as g:
    assert f.read() == g.read()
print(model.name)
"""
    result = run_py(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == ESCAPED_NAME
    assert autolog_lines(result.stderr) == []
