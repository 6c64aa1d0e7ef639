"""lineage.record_load on a real store and real files: which snapshot a load links to, and what model
a file no task saved becomes."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from autolog import lineage
from autolog.context import default_context
from autolog.db import SnapshotRecord
from autolog.db.store import MetadataStore
from autolog.snapshots.identity import identify
from autolog.storage.sources import collect_sources

WEIGHTS = b"the same weights, saved by two runs"


def _task(store: MetadataStore, name: str):
    return store.create_task(project="p", name=name, task_type="training", status="completed", output_uri=None,
                             tags=[], run_info={}, parameters={}, comment="")


def _sha256_era_snapshot(store: MetadataStore, name: str, path: Path) -> SnapshotRecord:
    """A snapshot as schema 3 recorded it (migrated: its digest is 'sha256:<hex>')."""
    task = _task(store, name)
    model = store.create_model(task_id=task.id, origin="capture", name=path.name, project="p", framework="PyTorch",
                               source_path=str(path))
    return store.add_snapshot(model.id, status="stored", uri=f"/store/{task.id}/{path.name}", size=len(WEIGHTS),
                              digest="sha256:" + hashlib.sha256(WEIGHTS).hexdigest(), source_path=str(path))


def _saved(ctx, name: str, path: Path, content, origin: str = "capture", **values) -> SnapshotRecord:
    """A run's save of content at path (status stored unless values say otherwise)."""
    task = _task(ctx.store, name)
    model = ctx.store.create_model(task_id=None if origin == "imported" else task.id, origin=origin, name=path.name,
                                   project="p", framework="PyTorch", source_path=str(path))
    values = {"status": "stored", "uri": f"/store/{task.id}/{path.name}", "files": content.manifest, **values}
    return ctx.store.add_snapshot(model.id, size=content.size, digest=content.digest, source_path=str(path), **values)


def _load(ctx, path: str, framework: str, beside: tuple[str, ...] = ()) -> SnapshotRecord:
    sources = collect_sources(path)
    loader = _task(ctx.store, "loader")
    return lineage.record_load(ctx, loader.id, "p", path, framework, sources, identify(ctx, sources), beside=beside)


def test_a_load_matched_by_its_sha256_links_to_the_save_of_the_path_it_was_loaded_from(tmp_path):
    ctx = default_context()
    first, second = tmp_path / "run-a.pt", tmp_path / "run-b.pt"
    for path in (first, second):
        path.write_bytes(WEIGHTS)
    by_a = _sha256_era_snapshot(ctx.store, "run a", first)
    by_b = _sha256_era_snapshot(ctx.store, "run b", second)

    # Their BLAKE3 digest is in no row: the store holds sha256 identities, so the load is hashed again.
    # Both snapshots hold these bytes; the one saved at the path loaded is the producer, not the first.
    assert _load(ctx, str(second), "PyTorch").id == by_b.id
    assert _load(ctx, str(first), "PyTorch").id == by_a.id


def test_a_load_matched_by_its_digest_is_not_hashed_again_in_a_store_holding_sha256_identities(tmp_path, monkeypatch):
    """The sha256 fallback is for loads no digest matches: a store with older rows does not make every
    load read its file a second time (nor lose the producer it found)."""
    ctx = default_context()
    old, new = tmp_path / "old.pt", tmp_path / "new.pt"
    old.write_bytes(b"weights saved before schema 4")
    _sha256_era_snapshot(ctx.store, "an old run", old)
    new.write_bytes(b"weights saved by a run today")
    today = _saved(ctx, "a run today", new, identify(ctx, collect_sources(str(new))))
    monkeypatch.setattr(lineage, "hash_sources", lambda *a: pytest.fail("hashed again with sha256"))
    assert _load(ctx, str(new), "PyTorch").id == today.id


def test_a_file_no_task_saved_is_not_hashed_again_in_a_store_holding_sha256_identities(tmp_path, monkeypatch):
    """Its first load made an import (after looking for an older save by sha256): later loads reuse that
    import without reading the file a second time."""
    ctx = default_context()
    old, base = tmp_path / "old.pt", tmp_path / "base-model.pt"
    old.write_bytes(b"weights saved before schema 4")
    _sha256_era_snapshot(ctx.store, "an old run", old)
    base.write_bytes(b"a base model no task saved")
    first = _load(ctx, str(base), "PyTorch")
    assert ctx.store.get_model(first.model_id).origin == "imported"
    monkeypatch.setattr(lineage, "hash_sources", lambda *a: pytest.fail("hashed again with sha256"))
    assert _load(ctx, str(base), "PyTorch").id == first.id


def test_a_load_links_to_the_save_of_the_path_it_was_loaded_from_not_the_first_save_of_those_bytes(tmp_path):
    """Two runs saved the same bytes (a seeded rerun) at two paths: each load is the save of its path."""
    ctx = default_context()
    first, second = tmp_path / "run-a.pt", tmp_path / "run-b.pt"
    snaps = []
    for name, path in (("run a", first), ("run b", second)):
        path.write_bytes(WEIGHTS)
        snaps.append(_saved(ctx, name, path, identify(ctx, collect_sources(str(path)))))
    by_a, by_b = snaps
    assert by_a.digest == by_b.digest and by_a.digest.startswith("blake3:")

    assert _load(ctx, str(second), "PyTorch").id == by_b.id
    assert _load(ctx, str(first), "PyTorch").id == by_a.id
    [link] = ctx.store.loads_of_model(by_b.model_id)  # what the load row says: the path, bytes and framework
    assert (link.path, link.digest, link.framework, link.snapshot_id) == (str(second), by_b.digest, "PyTorch", by_b.id)
    elsewhere = tmp_path / "copied.pt"  # the bytes at a path no run saved: the first save of them
    elsewhere.write_bytes(WEIGHTS)
    assert _load(ctx, str(elsewhere), "PyTorch").id == by_a.id


def test_a_load_through_a_symlink_links_to_the_save_of_the_file_it_leads_to(tmp_path):
    """`latest.pt` -> `last.pt`, beside a `best.pt` with the same bytes saved first: the load is the
    save of last.pt (the first save of those bytes was best.pt); one through a symlink a run saved
    through is that save."""
    ctx = default_context()
    best, last = tmp_path / "best.pt", tmp_path / "last.pt"
    snaps = []
    for path in (best, last):
        path.write_bytes(WEIGHTS)
        snaps.append(_saved(ctx, "run", path, identify(ctx, collect_sources(str(path)))))
    by_best, by_last = snaps
    latest = tmp_path / "latest.pt"
    latest.symlink_to(last.name)

    assert _load(ctx, str(latest), "PyTorch").id == by_last.id
    [link] = ctx.store.loads_of_model(by_last.model_id)
    assert link.path == str(latest)  # the load keeps the name it was made by
    through = _saved(ctx, "run through the link", latest, identify(ctx, collect_sources(str(latest))))
    assert _load(ctx, str(latest), "PyTorch").id == through.id


def test_a_snapshot_whose_bytes_were_not_stored_is_no_producer(tmp_path):
    """Run A's save of x.pt was hashed, then failed to store (or is still pending): its bytes are
    nowhere. A load of x.pt links to the run that did store those bytes (at another path)."""
    ctx = default_context()
    lost, kept = tmp_path / "x.pt", tmp_path / "y.pt"
    for path in (lost, kept):
        path.write_bytes(WEIGHTS)
    content = identify(ctx, collect_sources(str(kept)))
    stored = None
    for name, path, status in (("run b", kept, "stored"), ("run a", lost, "failed"), ("run c", lost, "pending")):
        snap = _saved(ctx, name, path, content, status=status)
        stored = stored or snap

    assert _load(ctx, str(lost), "PyTorch").id == stored.id


def test_a_save_recorded_in_place_is_the_producer_of_its_file(tmp_path):
    """output_uri=None: run A's save is recorded by path and hash only (status local, nothing copied).
    A later load of that file is A's, not an imported model."""
    ctx = default_context()
    path = tmp_path / "x.pt"
    path.write_bytes(WEIGHTS)
    content = identify(ctx, collect_sources(str(path)))
    in_place = _saved(ctx, "run a", path, content, status="local", uri=str(path))

    assert _load(ctx, str(path), "PyTorch").id == in_place.id
    copied = tmp_path / "copy.pt"  # the same bytes elsewhere: still A's
    copied.write_bytes(WEIGHTS)
    assert _load(ctx, str(copied), "PyTorch").id == in_place.id


def test_of_two_runs_that_saved_the_same_bytes_at_the_loaded_path_the_newer_is_the_producer(tmp_path):
    """A seeded rerun wrote the same weights to the same path: the load is of the newer save."""
    ctx = default_context()
    path = tmp_path / "model.pt"
    path.write_bytes(WEIGHTS)
    content = identify(ctx, collect_sources(str(path)))
    older = _saved(ctx, "run 1", path, content)
    newer = _saved(ctx, "run 2", path, content)
    assert newer.created > older.created

    assert _load(ctx, str(path), "PyTorch").id == newer.id


def test_an_earlier_import_of_the_same_bytes_does_not_hide_the_run_that_saved_them(tmp_path):
    """x.pt was loaded (and imported) before any run's save of those bytes was known; a run then saved
    the same bytes at y.pt. A new load of x.pt is that run's save, not the import, even at the same path."""
    ctx = default_context()
    imported_at, saved_at = tmp_path / "x.pt", tmp_path / "y.pt"
    for path in (imported_at, saved_at):
        path.write_bytes(WEIGHTS)
    content = identify(ctx, collect_sources(str(imported_at)))
    _saved(ctx, "the import", imported_at, content, origin="imported", status="local")
    by_run = _saved(ctx, "run", saved_at, content)

    assert _load(ctx, str(imported_at), "PyTorch").id == by_run.id


def test_the_first_save_of_some_bytes_is_the_one_made_first_not_the_one_recorded_first(tmp_path):
    """`autolog push` copies older runs into a team store after newer ones were recorded there: a load of
    those bytes from a path no run saved links to the save made first."""
    ctx = default_context()
    recorded_first, made_first, loaded = tmp_path / "b.pt", tmp_path / "a.pt", tmp_path / "elsewhere.pt"
    for path in (recorded_first, made_first, loaded):
        path.write_bytes(WEIGHTS)
    content = identify(ctx, collect_sources(str(loaded)))
    later = _saved(ctx, "run b", recorded_first, content)
    earlier = _saved(ctx, "run a, pushed later", made_first, content, created=later.created - 3600)

    assert _load(ctx, str(loaded), "PyTorch").id == earlier.id


def test_a_file_overwritten_while_no_task_ran_is_an_import_not_the_stale_save_of_its_path(tmp_path):
    """Issue 14's first case: a run saved x.pt; the file was then overwritten outside any task."""
    ctx = default_context()
    path = tmp_path / "x.pt"
    path.write_bytes(b"saved by run A")
    stale = _saved(ctx, "run a", path, identify(ctx, collect_sources(str(path))))
    path.write_bytes(b"written by hand later")
    snap = _load(ctx, str(path), "PyTorch")
    assert snap.id != stale.id
    assert ctx.store.get_model(snap.model_id).origin == "imported"


def test_a_folder_no_task_saved_becomes_an_imported_model_named_after_it(tmp_path):
    ctx = default_context()
    folder = tmp_path / "bert-tiny"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}')

    snap = _load(ctx, str(folder) + os.sep, "HuggingFace")  # from_pretrained("bert-tiny/")

    model = ctx.store.get_model(snap.model_id)
    assert (model.origin, model.name, model.framework, model.task_id) == ("imported", "bert-tiny", "HuggingFace", None)
    assert model.source_path == str(folder) + os.sep
    assert snap.status == "local" and snap.digest.startswith("blake3:")
    assert os.path.normpath(snap.uri) == str(folder)  # recorded where it is: nothing was copied
    assert (snap.size, [f["name"] for f in snap.files], snap.source_path) == (18, ["config.json"], str(folder) + os.sep)


def test_a_checkpoint_prefix_no_task_saved_is_recorded_as_its_folder_and_prefix(tmp_path):
    ctx = default_context()
    for name, data in (("ckpt-3.index", b"index"), ("ckpt-3.data-00000-of-00001", b"tensors")):
        (tmp_path / name).write_bytes(data)

    snap = _load(ctx, str(tmp_path / "ckpt-3"), "TensorFlow")

    assert (snap.status, snap.uri, snap.entry, snap.size) == ("local", str(tmp_path), "ckpt-3", 12)
    assert sorted(f["name"] for f in snap.files) == ["ckpt-3.data-00000-of-00001", "ckpt-3.index"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ctx(request, monkeypatch):
    """The context of a store in SQLite, or in PostgreSQL (a query that only one of them answers right)."""
    if request.param == "postgres":
        monkeypatch.setenv("AUTOLOG_DB_URL", request.getfixturevalue("pg_url"))
    return default_context()


def _folder(path: Path, files: dict[str, bytes]) -> Path:
    path.mkdir(exist_ok=True)
    for name, data in files.items():
        (path / name).write_bytes(data)
    return path


def test_a_folder_that_gained_files_after_its_save_links_to_that_save(ctx, tmp_path):
    """A Trainer's final save_model(), then its metrics and model card written into the same folder: a
    later from_pretrained of the folder is that save, not an import of a folder no task saved."""
    run = _folder(tmp_path / "run", {"config.json": b"{}", "model.safetensors": b"weights one"})
    first = _saved(ctx, "train", run, identify(ctx, collect_sources(str(run))))
    _folder(run, {"model.safetensors": b"weights two"})
    final = _saved(ctx, "train", run, identify(ctx, collect_sources(str(run))))
    _folder(run, {"all_results.json": b'{"loss": 0.5}', "README.md": b"# card"})

    beside = ("*_results.json", "README.md")
    assert _load(ctx, str(run), "HuggingFace", beside).id == final.id  # the newest save whose files are all there
    [link] = ctx.store.loads_of_model(final.model_id)
    assert link.digest != final.digest  # what was loaded: the folder as it is, extra files included
    _folder(run, {"model.safetensors": b"weights one"})  # the first save's weights back in place
    assert _load(ctx, str(run), "HuggingFace", beside).id == first.id
    # a load that does not declare such files: the folder is not that save
    assert ctx.store.get_model(_load(ctx, str(run), "HuggingFace").model_id).origin == "imported"


def test_a_folder_whose_model_card_was_rewritten_after_its_save_links_to_that_save(ctx, tmp_path):
    """A Trainer run again into the same output_dir: its final save_model() holds the first run's model
    card, which create_model_card() rewrites right after; the folder is still that save."""
    run = _folder(tmp_path / "run", {"config.json": b"{}", "model.safetensors": b"weights two", "README.md": b"# one"})
    final = _saved(ctx, "train", run, identify(ctx, collect_sources(str(run))))
    _folder(run, {"README.md": b"# two", "all_results.json": b"{}"})

    assert _load(ctx, str(run), "HuggingFace", ("*_results.json", "README.md")).id == final.id
    (run / "README.md").unlink()  # one of the declared files gone: still that save's weights
    assert _load(ctx, str(run), "HuggingFace", ("*_results.json", "README.md")).id == final.id
    # a file not declared changed: not that save
    _folder(run, {"config.json": b'{"edited": 1}'})
    assert _load(ctx, str(run), "HuggingFace", ("*_results.json", "README.md")).id != final.id


def test_a_folder_that_gained_weights_after_its_save_is_not_that_save(ctx, tmp_path):
    """config.save_pretrained(d), then the weights written into d more than the settle time later: the
    config-only snapshot did not produce what a from_pretrained of d reads."""
    conv = _folder(tmp_path / "conv", {"config.json": b"{}"})
    config_only = _saved(ctx, "convert", conv, identify(ctx, collect_sources(str(conv))))
    _folder(conv, {"model.safetensors": b"weights", "README.md": b"# card"})
    loaded = _load(ctx, str(conv), "HuggingFace", ("*_results.json", "README.md"))
    assert loaded.id != config_only.id and ctx.store.get_model(loaded.model_id).origin == "imported"


def test_a_folder_whose_saved_files_changed_or_went_is_not_that_save(ctx, tmp_path):
    run = _folder(tmp_path / "run", {"config.json": b"{}", "model.safetensors": b"weights"})
    saved = _saved(ctx, "train", run, identify(ctx, collect_sources(str(run))))
    _folder(run, {"model.safetensors": b"weights edited by hand", "all_results.json": b"{}"})
    changed = _load(ctx, str(run), "HuggingFace", ("*_results.json",))
    assert changed.id != saved.id and ctx.store.get_model(changed.model_id).origin == "imported"

    (run / "model.safetensors").unlink()
    assert _load(ctx, str(run), "HuggingFace", ("*_results.json",)).id not in (saved.id, changed.id)

    # the same files in another folder: extra files are no identity to look up elsewhere
    other = _folder(tmp_path / "copy", {"config.json": b"{}", "model.safetensors": b"weights", "notes.txt": b"x"})
    assert _load(ctx, str(other), "HuggingFace", ("notes.txt",)).id != saved.id


# -- one file of a folder a task saved whole ---------------------------------------------------------
def _imported(ctx, snapshot: SnapshotRecord) -> bool:
    return ctx.store.get_model(snapshot.model_id).origin == "imported"


def test_a_load_of_one_file_of_a_saved_folder_links_to_that_folders_save(ctx, tmp_path):
    """save_pretrained(out), then safetensors' load_file(out/model.safetensors): that file has no row of
    its own; the newest save of the folder that holds it, unchanged, is its producer."""
    out = _folder(tmp_path / "out", {"config.json": b"{}", "model.safetensors": b"weights one"})
    first = _saved(ctx, "train", out, identify(ctx, collect_sources(str(out))))
    _folder(out, {"model.safetensors": b"weights two"})
    second = _saved(ctx, "train", out, identify(ctx, collect_sources(str(out))))

    weights = str(out / "model.safetensors")
    assert _load(ctx, weights, "safetensors").id == second.id
    _folder(out, {"model.safetensors": b"weights one"})
    assert _load(ctx, weights, "safetensors").id == first.id
    # through a symlink elsewhere: the file it leads to is in the folder
    (tmp_path / "latest.safetensors").symlink_to(weights)
    assert _load(ctx, str(tmp_path / "latest.safetensors"), "safetensors").id == first.id

    _folder(out, {"model.safetensors": b"edited by hand"})
    assert _imported(ctx, _load(ctx, weights, "safetensors"))
    # the same bytes outside the folder: a folder's files are looked up where it was saved only
    copy = _folder(tmp_path / "copy", {"model.safetensors": b"weights one"})
    assert _imported(ctx, _load(ctx, str(copy / "model.safetensors"), "safetensors"))


def test_a_load_of_one_file_of_a_trainer_checkpoint_links_to_that_checkpoint(ctx, tmp_path):
    """A Trainer's checkpoint-N folder is a snapshot of output_dir's model; a load of its weights file
    alone is that checkpoint, not the final save of output_dir."""
    output_dir = _folder(tmp_path / "output", {"model.safetensors": b"final weights"})
    checkpoint = _folder(output_dir / "checkpoint-5", {"model.safetensors": b"step 5", "optimizer.pt": b"adam"})
    task = _task(ctx.store, "train")
    model = ctx.store.create_model(task_id=task.id, origin="capture", name="output", project="p",
                                   framework="Hugging Face Transformers", source_path=str(output_dir))
    content = identify(ctx, collect_sources(str(checkpoint)))
    at_step_5 = ctx.store.add_snapshot(model.id, status="stored", uri="/store/ckpt5", size=content.size,
                                       digest=content.digest, files=content.manifest, source_path=str(checkpoint))
    content = identify(ctx, collect_sources(str(output_dir), exclude=("checkpoint-*",)))
    final = ctx.store.add_snapshot(model.id, status="stored", uri="/store/final", size=content.size,
                                   digest=content.digest, files=content.manifest, source_path=str(output_dir))

    assert _load(ctx, str(checkpoint / "model.safetensors"), "safetensors").id == at_step_5.id
    assert _load(ctx, str(checkpoint / "optimizer.pt"), "PyTorch").id == at_step_5.id
    assert _load(ctx, str(output_dir / "model.safetensors"), "safetensors").id == final.id


def test_a_file_saved_on_its_own_inside_a_saved_folder_links_to_its_own_save(ctx, tmp_path):
    out = _folder(tmp_path / "out", {"model.safetensors": b"weights", "optimizer.pt": b"adam"})
    _saved(ctx, "train", out, identify(ctx, collect_sources(str(out))))
    optimizer = out / "optimizer.pt"
    own = _saved(ctx, "train", optimizer, identify(ctx, collect_sources(str(optimizer))))
    assert _load(ctx, str(optimizer), "PyTorch").id == own.id


def test_an_import_of_the_same_bytes_loaded_first_does_not_hide_the_folder_that_saved_them(ctx, tmp_path):
    out = _folder(tmp_path / "out", {"config.json": b"{}", "model.safetensors": b"weights"})
    copy = _folder(tmp_path / "copy", {"model.safetensors": b"weights"})
    assert _imported(ctx, _load(ctx, str(copy / "model.safetensors"), "safetensors"))  # no task saved it yet
    saved = _saved(ctx, "train", out, identify(ctx, collect_sources(str(out))))
    assert _load(ctx, str(out / "model.safetensors"), "safetensors").id == saved.id


def test_a_file_of_a_saved_folder_whose_names_are_not_utf8_links_to_that_folders_save(ctx, tmp_path):
    folder = tmp_path / os.fsdecode(b"mod\xe8les")
    out = _folder(folder, {"config.json": b"{}", os.fsdecode(b"poids\xe9.safetensors"): b"weights"})
    saved = _saved(ctx, "train", out, identify(ctx, collect_sources(str(out))))
    assert _load(ctx, str(out / os.fsdecode(b"poids\xe9.safetensors")), "safetensors").id == saved.id


def test_a_symlink_inside_a_saved_folder_links_by_either_name(ctx, tmp_path):
    """out/model.safetensors -> out/checkpoint-6/model.safetensors: out's save (checkpoint-* left out) holds
    the link's name, not the target's."""
    out = _folder(tmp_path / "out", {"config.json": b"{}"})
    _folder(out / "checkpoint-6", {"model.safetensors": b"step 6"})
    (out / "model.safetensors").symlink_to(out / "checkpoint-6" / "model.safetensors")
    saved = _saved(ctx, "train", out, identify(ctx, collect_sources(str(out), exclude=("checkpoint-*",))))
    assert _load(ctx, str(out / "model.safetensors"), "safetensors").id == saved.id


def test_a_checkpoint_file_links_to_its_checkpoint_however_many_saves_came_after(ctx, tmp_path):
    output_dir = _folder(tmp_path / "output", {"model.safetensors": b"epoch 0"})
    checkpoint = _folder(output_dir / "checkpoint-5", {"model.safetensors": b"step 5"})
    task = _task(ctx.store, "train")
    model = ctx.store.create_model(task_id=task.id, origin="capture", name="output", project="p",
                                   framework="Hugging Face Transformers", source_path=str(output_dir))

    def snapshot_of(folder: Path, **kwargs) -> SnapshotRecord:
        content = identify(ctx, collect_sources(str(folder), **kwargs))
        return ctx.store.add_snapshot(model.id, status="stored", uri=f"/store/{folder.name}", size=content.size,
                                      digest=content.digest, files=content.manifest, source_path=str(folder))

    at_step_5 = snapshot_of(checkpoint)
    for epoch in range(1, 61):  # save_model() into output_dir every epoch
        _folder(output_dir, {"model.safetensors": b"epoch %d" % epoch})
        snapshot_of(output_dir, exclude=("checkpoint-*",))
    assert _load(ctx, str(checkpoint / "model.safetensors"), "safetensors").id == at_step_5.id


def test_a_file_of_a_folder_inside_saved_folders_links_to_the_innermost_that_holds_it(ctx, tmp_path):
    """tokenizer.save_pretrained(out/tokenizer) once, then model.save_pretrained(out) every epoch: each
    of out's saves holds the tokenizer's file too; the tokenizer's own save made it."""
    out = _folder(tmp_path / "out", {"model.safetensors": b"epoch 0"})
    tokenizer = _folder(out / "tokenizer", {"tokenizer.json": b"{}"})
    made = _saved(ctx, "train", tokenizer, identify(ctx, collect_sources(str(tokenizer))))
    for epoch in range(3):
        _folder(out, {"model.safetensors": b"epoch %d" % epoch})
        _saved(ctx, "train", out, identify(ctx, collect_sources(str(out))))
    assert _load(ctx, str(tokenizer / "tokenizer.json"), "Tokenizers").id == made.id


def test_a_file_loaded_through_a_symlinked_folder_links_to_the_innermost_save_that_holds_it(ctx, tmp_path):
    """t -> a_rather_long_folder_name/out/tokenizer: the folders around t/tok.json and around the file it
    leads to are two chains; the tokenizer's own save is still the innermost."""
    (tmp_path / "a_rather_long_folder_name").mkdir()
    out = _folder(tmp_path / "a_rather_long_folder_name" / "out", {"model.safetensors": b"m"})
    tokenizer = _folder(out / "tokenizer", {"tok.json": b"{}"})
    (tmp_path / "t").symlink_to(tokenizer)
    made = _saved(ctx, "train", tmp_path / "t", identify(ctx, collect_sources(str(tmp_path / "t"))))
    _saved(ctx, "train", out, identify(ctx, collect_sources(str(out))))
    assert _load(ctx, str(tmp_path / "t" / "tok.json"), "Tokenizers").id == made.id
