"""Downloads through `autolog ui` send the recorded bytes or an error, never other bytes: stored objects
altered on disk or in a remote store, a path-only snapshot whose file changed or is gone, a snapshot that
was never stored, a file that changes while it is being sent, and rows written before schema 4 (a
"sha256:<hex>" digest, file lists with "sha256") checked with sha256."""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import zipfile
from pathlib import Path

import pytest
from blake3 import blake3


from ui_helpers import assert_error, json_ok, make_client

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


def _stored(task_page: dict, name: str) -> dict:
    return {m["model"]["name"]: m["snapshots"][-1] for m in task_page["output_models"]}[name]


def _object_path(snapshot: dict) -> Path:
    return Path(snapshot["uri"])


@pytest.fixture
def stored(tmp_path):
    """A task (output_uri=True: the local store) with a one-file model, a folder model and a file artifact."""
    from autolog import OutputModel, Task

    task = Task.init(project_name="dl", task_name="t", output_uri=True, auto_connect_frameworks=False)
    (tmp_path / "w.bin").write_bytes(PAYLOAD)
    OutputModel(task=task, name="one", framework="custom").update_weights(tmp_path / "w.bin")
    (tmp_path / "folder" / "deep").mkdir(parents=True)
    (tmp_path / "folder" / "a.txt").write_text("alpha")
    (tmp_path / "folder" / "deep" / "b.bin").write_bytes(PAYLOAD[:1000])
    OutputModel(task=task, name="many", framework="custom").update_weights_package(weights_path=tmp_path / "folder")
    task.upload_artifact("blob", tmp_path / "w.bin")
    task.close()
    with make_client() as client:
        yield client, json_ok(client, f"/api/tasks/{task.id}")


def _tamper(path: Path) -> None:
    """Change one byte in place, size and name unchanged: only the hash can tell."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_untouched_objects_download_whole(stored):
    client, page = stored
    one = client.get(_stored(page, "one")["download"])
    assert one.status_code == 200 and one.content == PAYLOAD
    assert one.headers["content-security-policy"] == "sandbox" and one.headers["cache-control"] == "no-store"
    blob = page["artifacts"][0]
    assert client.get(blob["download"]).content == PAYLOAD


def test_an_altered_stored_file_is_an_error_not_bytes(stored):
    client, page = stored
    snap = _stored(page, "one")
    _tamper(_object_path(snap))
    response = client.get(snap["download"])
    assert_error(response, 500, "do not match", "not sent")
    assert PAYLOAD[:1000] not in response.content
    blob = page["artifacts"][0]
    _tamper(Path(blob["uri"]))
    assert_error(client.get(blob["download"]), 500, "do not match")
    assert client.get(blob["preview"]).status_code == 200  # a .bin file: its recorded preview text, no bytes read


def test_an_altered_file_of_a_folder_snapshot_is_an_error_not_a_zip(stored):
    client, page = stored
    snap = _stored(page, "many")
    good = client.get(snap["download"])
    with zipfile.ZipFile(io.BytesIO(good.content)) as archive:
        assert sorted(archive.namelist()) == ["a.txt", "deep/b.bin"]
    _tamper(_object_path(snap) / "deep" / "b.bin")
    assert_error(client.get(snap["download"]), 500, "deep/b.bin", "do not match")


def test_rows_written_before_schema_4_are_checked_with_sha256(stored):
    """A snapshot recorded before BLAKE3: its digest "sha256:<hex>", its file list {"name", "size", "sha256"}.
    Its bytes are still sent, checked with sha256, and still refused once altered."""
    import sqlalchemy as sa

    from autolog.context import default_context
    from autolog.db import schema as s
    from autolog.storage.hashing import manifest_digest, sha256_digest

    client, page = stored
    one, many = _stored(page, "one"), _stored(page, "many")
    folder = _object_path(many)
    old_files = [{"name": name, "size": (folder / name).stat().st_size,
                  "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest()}
                 for name in ("a.txt", "deep/b.bin")]
    old_one = sha256_digest(hashlib.sha256(PAYLOAD).hexdigest())
    old_many = manifest_digest(old_files, "sha256")
    with default_context().store.engine.begin() as conn:
        c = s.snapshots.c
        conn.execute(sa.update(s.snapshots).where(c.id == one["id"]).values(digest=old_one, sha256=old_one[7:]))
        conn.execute(sa.update(s.snapshots).where(c.id == many["id"]).values(digest=old_many, files=old_files))
    rows = {name: _stored(json_ok(client, f"/api/tasks/{page['task']['id']}"), name) for name in ("one", "many")}
    assert rows["one"]["digest"] == old_one and rows["one"]["sha256"] == old_one[7:]
    assert rows["many"]["digest"] == old_many and rows["many"]["download"] == many["download"]
    assert client.get(one["download"]).content == PAYLOAD
    with zipfile.ZipFile(io.BytesIO(client.get(many["download"]).content)) as archive:
        assert archive.read("deep/b.bin") == PAYLOAD[:1000] and archive.read("a.txt") == b"alpha"
    _tamper(_object_path(one))
    assert_error(client.get(one["download"]), 500, "sha256", "do not match", "not sent")
    _tamper(folder / "deep" / "b.bin")
    assert_error(client.get(many["download"]), 500, "deep/b.bin", "sha256", "do not match")


def test_a_deleted_stored_object_is_404(stored):
    client, page = stored
    snap = _stored(page, "one")
    os.remove(_object_path(snap))
    assert_error(client.get(snap["download"]), 404, "missing")
    shutil.rmtree(_object_path(_stored(page, "many")))
    assert_error(client.get(_stored(page, "many")["download"]), 404, "missing")


def test_a_path_only_snapshot_sends_the_file_while_it_matches(tmp_path):
    from autolog import OutputModel, Task

    task = Task.init(project_name="dl", task_name="paths", auto_connect_frameworks=False)  # output_uri=None
    weights = tmp_path / "w.bin"
    weights.write_bytes(PAYLOAD)
    OutputModel(task=task, name="local", framework="custom").update_weights(weights)
    task.close()
    with make_client() as client:
        snap = _stored(json_ok(client, f"/api/tasks/{task.id}"), "local")
        assert snap["status"] == "local"
        assert client.get(snap["download"]).content == PAYLOAD
        _tamper(weights)
        assert_error(client.get(snap["download"]), 500, "do not match")
        weights.unlink()
        assert_error(client.get(snap["download"]), 404, "missing")


def test_a_snapshot_that_was_not_stored_is_409(autolog_home):
    from autolog import OutputModel, Task
    from autolog.context import default_context

    task = Task.init(project_name="dl", task_name="failed", auto_connect_frameworks=False)
    model = OutputModel(task=task, name="broken", framework="custom")
    task.close()
    snap = default_context().store.add_snapshot(model.id, status="failed", reason="disk full")
    with make_client() as client:
        row = json_ok(client, f"/api/models/{model.id}")["snapshots"][0]
        assert row["id"] == snap.id and row["download"] is None and row["reason"] == "disk full"
        assert_error(client.get(f"/api/snapshots/{snap.id}/download"), 409, "failed (disk full)")
    by_uri = default_context().store.add_snapshot(model.id, status="stored", uri="s3://bucket/w.bin")  # no digest
    with make_client() as client:
        assert json_ok(client, f"/api/models/{model.id}")["snapshots"][1]["download"] is None
        assert_error(client.get(f"/api/snapshots/{by_uri.id}/download"), 409, "no recorded content hash")


def test_a_remote_object_is_fetched_verified_through_fsspec(memory_uri, autolog_home, tmp_path):
    import fsspec

    from autolog import OutputModel, Task

    task = Task.init(project_name="dl", task_name="remote", output_uri=memory_uri, auto_connect_frameworks=False)
    (tmp_path / "w.bin").write_bytes(PAYLOAD)
    OutputModel(task=task, name="remote", framework="custom").update_weights(tmp_path / "w.bin")
    task.close()
    shutil.rmtree(autolog_home / "cache", ignore_errors=True)  # no cached copy: the UI must download it
    with make_client() as client:
        snap = _stored(json_ok(client, f"/api/tasks/{task.id}"), "remote")
        assert snap["uri"].startswith("memory://")
        got = client.get(snap["download"])
        assert got.status_code == 200 and "blake3:" + blake3(got.content).hexdigest() == snap["digest"]
        shutil.rmtree(autolog_home / "cache")
        fs = fsspec.filesystem("memory")
        path = snap["uri"][len("memory://"):]
        fs.pipe_file(path, PAYLOAD[:-1] + b"\x00")  # altered in the store
        assert_error(client.get(snap["download"]), 500, "does not match")
        assert not any((autolog_home / "cache" / "objects").glob("*/w.bin"))  # nothing altered was cached


def test_a_file_that_changes_while_it_is_sent_never_completes(tmp_path):
    from autolog.errors import IntegrityError
    from autolog.ui.downloads import Outgoing, _chunks

    path = tmp_path / "big.bin"
    content = os.urandom(3 * (1 << 20) + 123)  # several chunks
    path.write_bytes(content)
    for right in ("blake3:" + blake3(content).hexdigest(), "sha256:" + hashlib.sha256(content).hexdigest()):
        sent = b"".join(_chunks(Outgoing(open(path, "rb"), len(content), "big.bin", right, "a file")))
        assert sent == content
        wrong = right.split(":")[0] + ":" + "0" * 64
        received = []
        with pytest.raises(IntegrityError, match="changed while it was being sent"):
            for chunk in _chunks(Outgoing(open(path, "rb"), len(content), "big.bin", wrong, "a file")):
                received.append(chunk)
        assert 0 < len(b"".join(received)) < len(content)  # the last chunk was held back
