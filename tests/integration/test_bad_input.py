"""Bad input: each case fails with an error that says what and what to do, and loses nothing that was
recorded before. Cases already tested elsewhere (not repeated here):
- malformed config values and TOML syntax, per key: unit/test_config.py::test_malformed_config_raises_config_error_naming_file_and_key,
  ::test_task_init_reports_a_malformed_config
- unknown output_uri scheme, output_uri under a file: integration/test_task.py::test_unusable_output_uri_fails_init_early_and_clearly
- corrupted SQLite file: unit/test_db.py::test_corrupted_file_raises_autolog_error_naming_it, ::test_task_init_on_a_corrupted_database
- newer schema: unit/test_db.py::test_newer_schema_version_is_refused_clearly, unit/test_migrations.py (version 99)
- artifact names with .., /, NUL, 300 characters, emoji: integration/test_artifacts.py::test_awkward_names_work_and_stay_inside_the_artifacts_folder
- altered pickle refused before unpickling: integration/test_artifacts.py::test_tampered_pickle_is_refused_and_never_unpickled
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from autolog import InputModel, Model, OutputModel, Task
from autolog.db.store import MetadataStore
from autolog.errors import AutologError, StorageError
from autolog.storage.hashing import bytes_digest

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
EMPTY_DIGEST = bytes_digest(b"")


@pytest.fixture
def recorded(tmp_path):
    """A finished run in the default database: an artifact and a model snapshot. Returns a checker
    that asserts all of it is still there and readable."""
    weights = tmp_path / "recorded.bin"
    weights.write_bytes(b"weights v1" * 100)
    task = Task.init(project_name="safe", task_name="before", output_uri=str(tmp_path / "out"))
    task.upload_artifact("cfg", {"lr": 0.5})
    OutputModel(task=task, name="m").update_weights(str(weights))
    task.close()

    def still_intact() -> None:
        again = Task.get_task(task_id=task.id)
        assert again.status == "completed"
        assert again.artifacts["cfg"].get() == {"lr": 0.5}
        assert Path(again.models["output"]["m"].get_local_copy()).read_bytes() == b"weights v1" * 100
        assert [t.id for t in Task.get_tasks()] == [task.id]  # and nothing half-recorded was added

    return still_intact


# -- configuration and URLs ----------------------------------------------------------------

BROKEN_CONFIGS = {
    "toml syntax": ('[db\nurl = "x"\n', "not valid TOML", "Fix the syntax"),
    "wrong type": ("[sdk.development]\ndefault_output_uri = 5\n", "must be a str", "default_output_uri"),
    "malformed db url": ('[db]\nurl = "postgresql://:::"\n', "port '::' is not a number", "Check AUTOLOG_DB_URL / [db] url"),
    "unknown db scheme": ('[db]\nurl = "foo://x"\n', "no database type 'foo'", "Check AUTOLOG_DB_URL / [db] url"),
    "not a url": ('[db]\nurl = "my-database"\n', "not a database URL", "Check AUTOLOG_DB_URL / [db] url"),
}


@pytest.mark.parametrize("text,what,todo", BROKEN_CONFIGS.values(), ids=BROKEN_CONFIGS.keys())
def test_a_broken_config_stops_init_at_once_and_loses_nothing(recorded, autolog_home, text, what, todo):
    config = autolog_home / "autolog.toml"
    config.write_text(text)
    with pytest.raises(AutologError) as info:
        Task.init(project_name="safe", task_name="after")
    message = str(info.value)
    assert what in message and todo in message, message
    assert Task.current_task() is None
    config.unlink()
    recorded()


BAD_DB_URLS = {
    "malformed port": ("postgresql://:::", "is not a number"),
    "port not a number": ("postgresql+psycopg://bob:hunter2@db.example:54x2/autolog", "is not a number"),
    "unknown scheme": ("foo://x", "no database type 'foo'"),
    "no scheme": ("/var/lib/autolog.db", "not a database URL"),
}


@pytest.mark.parametrize("url,what", BAD_DB_URLS.values(), ids=BAD_DB_URLS.keys())
def test_a_bad_database_url_is_a_clear_error_before_anything_runs(recorded, monkeypatch, url, what):
    monkeypatch.setenv("AUTOLOG_DB_URL", url)
    with pytest.raises(AutologError) as info:
        Task.init(project_name="safe", task_name="after")
    message = str(info.value)
    assert what in message and "Check AUTOLOG_DB_URL / [db] url" in message
    assert "hunter2" not in message  # shown redacted
    assert Task.current_task() is None
    with pytest.raises(AutologError, match="Check AUTOLOG_DB_URL"):  # the store says the same
        MetadataStore(url).find_tasks()
    monkeypatch.delenv("AUTOLOG_DB_URL")
    recorded()


def test_an_unknown_database_driver_is_a_clear_error(tmp_path):
    with pytest.raises(AutologError, match="Check AUTOLOG_DB_URL") as info:
        MetadataStore("postgresql+nosuchdriver://u@localhost/db").find_tasks()
    assert "nosuchdriver" in str(info.value)


def test_an_unknown_upload_uri_fails_that_call_only(recorded, tmp_path):
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"abc")
    task = Task.init(project_name="safe", task_name="upload", output_uri=str(tmp_path / "out2"))
    model = OutputModel(task=task, name="m2")
    model.update_weights(str(weights))
    with pytest.raises(StorageError) as info:
        model.update_weights(str(weights), upload_uri="foo://x")
    message = str(info.value)
    assert "foo://x" in message and "Use a local path" in message
    assert [(s.seq, s.status) for s in model.snapshots] == [(1, "stored")]
    assert Path(model.get_local_copy()).read_bytes() == b"abc"
    task.upload_artifact("after", {"ok": True})  # the task goes on
    task.close()
    assert Task.get_task(task_id=task.id).status == "completed"


def test_a_corrupted_database_file_is_left_as_it_was(autolog_home):
    db = autolog_home / "autolog.db"
    garbage = b"SQLite format 3\x00" + os.urandom(8000)
    db.write_bytes(garbage)
    with pytest.raises(AutologError) as info:
        Task.init(project_name="p", task_name="t")
    assert str(db) in str(info.value) and "move it aside" in str(info.value)
    assert db.read_bytes() == garbage  # never "repaired" or overwritten: the user can still rescue it
    assert sorted(p.name for p in autolog_home.iterdir()) == ["autolog.db"]


# -- zero-byte files -----------------------------------------------------------------------


@pytest.fixture
def empty_file(tmp_path) -> Path:
    path = tmp_path / "work" / "empty.pt"
    path.parent.mkdir()
    path.touch()
    return path


@pytest.mark.parametrize("where", ["path", "memory"])
def test_a_zero_byte_artifact_round_trips(empty_file, tmp_path, memory_uri, where):
    task = Task.init(project_name="p", task_name="t", output_uri=str(tmp_path / "out") if where == "path" else memory_uri)
    task.upload_artifact("empty", empty_file)
    task.close()
    art = Task.get_task(task_id=task.id).artifacts["empty"]
    assert (art.type, art.size, art.sha256) == ("file", 0, EMPTY_SHA256)
    assert Path(art.get_local_copy()).read_bytes() == b""


def test_a_zero_byte_model_file_is_stored_registered_and_imported(empty_file, tmp_path):
    task = Task.init(project_name="p", task_name="t", output_uri=str(tmp_path / "out"))
    model = OutputModel(task=task, name="empty")
    model.update_weights(str(empty_file), iteration=1)
    model.update_weights(register_uri=str(empty_file), iteration=2)
    imported = InputModel.import_model(str(empty_file), name="empty-import")
    task.close()
    snaps = Model(model.id).snapshots
    assert [(s.status, s.size, s.digest) for s in snaps] == [("stored", 0, EMPTY_DIGEST)] * 2
    assert all(s.stored_at is not None for s in snaps)  # copied, and registered in place
    assert Path(model.get_local_copy(1)).read_bytes() == b""
    assert imported.snapshot().digest == EMPTY_DIGEST
    assert imported.sha256() == EMPTY_SHA256


def test_torch_load_of_a_zero_byte_file_raises_torch_own_error_and_records_nothing(empty_file, tmp_path):
    torch = pytest.importorskip("torch")
    try:
        torch.load(empty_file)
    except Exception as exc:  # noqa: BLE001 - what torch says without autolog
        expected = (type(exc), str(exc))
    task = Task.init(project_name="p", task_name="t", output_uri=str(tmp_path / "out"))
    with pytest.raises(Exception) as info:
        torch.load(empty_file)
    assert (type(info.value), str(info.value)) == expected
    torch.save({"w": torch.zeros(2)}, tmp_path / "ok.pt")  # the task still records what follows
    task.close()
    models = Task.get_task(task_id=task.id).models
    assert list(models["input"]) == []
    assert [m.name for m in models["output"]] == ["ok.pt"]


# -- symlinks in uploaded folders ----------------------------------------------------------


def every_stored_byte(root: Path) -> list[bytes]:
    """The raw bytes of every stored file, and of every member of the zips among them."""
    chunks = []
    for path in root.rglob("*"):
        if path.is_file():
            chunks.append(path.read_bytes())
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as zf:
                    chunks += [zf.read(name) for name in zf.namelist() if not name.endswith("/")]
    return chunks


def test_links_out_of_an_uploaded_folder_are_never_followed(tmp_path, autolog_home):
    secret = b"SECRET-" + os.urandom(16).hex().encode()
    (tmp_path / "secret.txt").write_bytes(secret)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "also-secret.txt").write_bytes(secret)
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "real.txt").write_bytes(b"inside")
    os.symlink(tmp_path / "secret.txt", folder / "absolute-link.txt")
    os.symlink("../../secret.txt", folder / "sub" / "relative-link.txt")
    os.symlink(tmp_path / "outside", folder / "dir-link")
    os.symlink(folder / "real.txt", folder / "inside-link.txt")

    out = tmp_path / "out"
    task = Task.init(project_name="p", task_name="t", output_uri=str(out))
    task.upload_artifact("data", folder)
    OutputModel(task=task, name="folder-model").update_weights(str(folder))
    task.close()

    assert not any(secret in chunk for chunk in every_stored_byte(out))
    assert not any(secret in chunk for chunk in every_stored_byte(autolog_home))  # nor in the cache or db
    again = Task.get_task(task_id=task.id)
    extracted = Path(again.artifacts["data"].get())
    model_copy = Path(again.models["output"]["folder-model"].get_local_copy())
    for copy in (extracted, model_copy):
        files = sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file())
        assert files == ["inside-link.txt", "real.txt"], copy
        assert (copy / "inside-link.txt").read_bytes() == b"inside"


# -- a file larger than 4 GiB --------------------------------------------------------------

BIG_UPLOAD = r"""
import json, sys
from autolog import Task
path, out = sys.argv[1], sys.argv[2]
task = Task.init(project_name="big", task_name="upload", output_uri=out)
task.upload_artifact("huge", path)
art = task.artifacts["huge"]
task.close()
# VmHWM: this process image's own peak. ru_maxrss would not do: Linux carries it over exec from the
# forking parent (a pytest worker with TensorFlow loaded), which has nothing to do with this upload.
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) * 1024
print(json.dumps({"path": art.get_local_copy(), "sha256": art.sha256, "size": art.size, "peak": peak}))
"""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@pytest.mark.slow
def test_an_artifact_over_4_gib_is_streamed_not_read_into_memory(tmp_path, run_py):
    size = (4 << 30) + 12345  # past every 32-bit size and offset
    free = shutil.disk_usage(tmp_path).free
    if free < 12e9:  # the skip and its numbers show in -ra and in .ci/run's skip count
        pytest.skip(f"needs 12 GB free disk for a sparse 4 GiB source and its real stored copy; "
                    f"{free / 1e9:.1f} GB free under {tmp_path.parent}")
    source, out = tmp_path / "huge.bin", tmp_path / "out"
    with open(source, "wb") as f:  # sparse: marks at the start, across 2 and 4 GiB, and at the end
        for offset in (0, (2 << 30) - 3, (4 << 30) - 3, size - 5):
            f.seek(offset)
            f.write(b"MARK!")
        f.truncate(size)
    try:
        expected = sha256_of(source)
        proc = run_py(f"import sys; sys.argv = ['', {str(source)!r}, {str(out)!r}]\n" + BIG_UPLOAD)
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["size"] == size and result["sha256"] == expected
        assert result["peak"] < 400 << 20, f"peak RSS {result['peak'] >> 20} MiB for a {size >> 20} MiB file"
        stored = Path(result["path"])
        assert stored.stat().st_size == size and out in stored.parents
        assert sha256_of(stored) == expected
    finally:
        shutil.rmtree(out, ignore_errors=True)
        source.unlink(missing_ok=True)
