"""StorageManager with ClearML's signatures (clearml/storage/manager.py), on real filesystems: local paths,
file:// and memory:// (S3: tests/team/test_storage_manager_s3.py)."""
from __future__ import annotations

import logging
import os
import tarfile
import zipfile
from pathlib import Path

import fsspec
import pytest

from autolog import StorageManager
from autolog.errors import StorageError


@pytest.fixture(params=["path", "file-url", "memory"])
def location(request, tmp_path, memory_uri) -> str:
    """A folder to upload into, as a plain path, a file:// URL, or memory://<bucket>/store."""
    return {"path": str(tmp_path / "remote"), "file-url": f"file://{tmp_path / 'remote'}",
            "memory": f"{memory_uri}/store"}[request.param]


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_upload_file_then_get_local_copy(location, tmp_path, autolog_home):
    src = write(tmp_path / "src" / "model.bin", b"weights v1")
    url = StorageManager.upload_file(str(src), f"{location}/models/model.bin")
    assert url == f"{location}/models/model.bin"
    assert StorageManager.exists_file(url) and StorageManager.get_file_size_bytes(url) == 10
    local = StorageManager.get_local_copy(url)
    assert Path(local).read_bytes() == b"weights v1"
    if location.startswith("memory://"):
        assert (autolog_home / "cache" / "urls" / "global") in Path(local).parents
    else:  # a local file is its own local copy, as in ClearML
        assert local == os.path.join(str(tmp_path / "remote"), "models", "model.bin")
    # a trailing slash takes the file's own name
    assert StorageManager.upload_file(str(src), f"{location}/other/") == f"{location}/other/model.bin"


def test_upload_is_atomic_and_leaves_no_temp_files(tmp_path):
    src = write(tmp_path / "big.bin", os.urandom(1 << 20))
    dest = tmp_path / "dest"
    StorageManager.upload_file(str(src), str(dest / "big.bin"))
    StorageManager.upload_file(str(src), str(dest / "big.bin"))  # replacing works the same way
    assert [p.name for p in dest.iterdir()] == ["big.bin"]
    assert (dest / "big.bin").read_bytes() == src.read_bytes()


def test_upload_errors_name_the_argument(tmp_path):
    with pytest.raises(FileNotFoundError, match="local_file '.*nope.bin' is not a file"):
        StorageManager.upload_file(str(tmp_path / "nope.bin"), str(tmp_path / "x.bin"))
    with pytest.raises(FileNotFoundError, match="local_folder '.*nope' is not a folder"):
        StorageManager.upload_folder(str(tmp_path / "nope"), str(tmp_path / "x"))
    src = write(tmp_path / "a.bin", b"a")
    write(tmp_path / "blocked", b"a file where a folder must go")
    with pytest.raises(StorageError, match="failed after 2 attempt"):
        StorageManager.upload_file(str(src), str(tmp_path / "blocked" / "a.bin"), retries=1)


def test_a_replaced_object_is_fetched_again_and_force_download_refreshes(memory_uri, tmp_path):
    url = f"{memory_uri}/data.csv"
    fs = fsspec.filesystem("memory")
    fs.pipe_file(url[len("memory://"):], b"version 1")
    local = Path(StorageManager.get_local_copy(url))
    assert local.read_bytes() == b"version 1"
    local.write_bytes(b"edited by hand")  # the source did not change: the cache answers
    assert Path(StorageManager.get_local_copy(url)).read_bytes() == b"edited by hand"
    assert Path(StorageManager.get_local_copy(url, force_download=True)).read_bytes() == b"version 1"
    fs.pipe_file(url[len("memory://"):], b"version 2, longer")  # replaced at the same URL
    assert Path(StorageManager.get_local_copy(url)).read_bytes() == b"version 2, longer"
    other = StorageManager.get_local_copy(url, cache_context="eval")
    assert other != str(local) and "/urls/eval/" in other


def test_archives_come_back_extracted_or_whole(location, tmp_path):
    write(tmp_path / "pkg" / "a.txt", "a")
    write(tmp_path / "pkg" / "sub" / "b.txt", "b")
    with zipfile.ZipFile(tmp_path / "pkg.zip", "w") as zf:
        zf.write(tmp_path / "pkg" / "a.txt", "a.txt")
        zf.write(tmp_path / "pkg" / "sub" / "b.txt", "sub/b.txt")
    with tarfile.open(tmp_path / "pkg.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "pkg", arcname=".")
    for archive in ("pkg.zip", "pkg.tar.gz"):
        url = StorageManager.upload_file(str(tmp_path / archive), f"{location}/{archive}")
        folder = Path(StorageManager.get_local_copy(url))
        assert folder.is_dir() and (folder / "a.txt").read_text() == "a" and (folder / "sub" / "b.txt").read_text() == "b"
        assert Path(StorageManager.get_local_copy(url, extract_archive=False)).is_file()
        assert Path(StorageManager.get_local_copy(url, name="named")).name == "named"


def test_upload_folder_list_and_download_folder_keep_the_tree(location, tmp_path):
    src = tmp_path / "project"
    write(src / "a.json", "{}")
    write(src / "sub" / "b.json", "[]")
    write(src / "sub" / "c.txt", "text")
    assert StorageManager.upload_folder(str(src), f"{location}/up", match_wildcard="*.json") == f"{location}/up"
    full = StorageManager.list(f"{location}/up", return_full_path=True)
    assert sorted(full) == [f"{location}/up/a.json", f"{location}/up/sub/b.json"]
    sized = StorageManager.list(f"{location}/up", with_metadata=True)
    assert sorted(d["size"] for d in sized) == [2, 2]
    StorageManager.upload_folder(str(src), f"{location}/all")
    dest = tmp_path / "downloaded"
    assert StorageManager.download_folder(f"{location}/all", str(dest), match_wildcard="*.txt") == str(dest)
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert len(got) == 1 and got[0].endswith("all/sub/c.txt")  # under the URL's own path, as ClearML does


def test_list_names_are_bucket_relative_on_object_stores_and_folder_relative_on_paths(memory_uri, tmp_path):
    bucket = memory_uri[len("memory://"):]
    fs = fsspec.filesystem("memory")
    for key in ("runs_1/a.txt", "runs_2/b.txt", "other/c.txt"):
        fs.pipe_file(f"/{bucket}/{key}", b"x")
    assert sorted(StorageManager.list(f"{memory_uri}/runs_")) == ["runs_1/a.txt", "runs_2/b.txt"]  # a prefix
    assert StorageManager.list(f"{memory_uri}/other") == ["other/c.txt"]
    write(tmp_path / "folder" / "sub" / "d.txt", "d")
    assert StorageManager.list(str(tmp_path / "folder")) == ["sub/d.txt"]
    assert StorageManager.list(str(tmp_path / "nothing-here")) == []


def test_download_file_keeps_the_path_skips_existing_and_refuses_empty(memory_uri, tmp_path, caplog):
    bucket = memory_uri[len("memory://"):]
    fs = fsspec.filesystem("memory")
    fs.pipe_file(f"/{bucket}/sub/f.txt", b"remote")
    fs.pipe_file(f"/{bucket}/empty.txt", b"")
    dest = tmp_path / "dl"
    local = StorageManager.download_file(f"{memory_uri}/sub/f.txt", str(dest))
    assert local == str(dest / "sub" / "f.txt") and Path(local).read_bytes() == b"remote"
    Path(local).write_bytes(b"kept")
    assert Path(StorageManager.download_file(f"{memory_uri}/sub/f.txt", str(dest))).read_bytes() == b"kept"
    assert Path(StorageManager.download_file(f"{memory_uri}/sub/f.txt", str(dest), overwrite=True)).read_bytes() \
        == b"remote"
    with caplog.at_level(logging.WARNING, logger="autolog"):
        assert StorageManager.download_file(f"{memory_uri}/empty.txt", str(dest)) is None
    assert "is empty (0 bytes)" in caplog.text and not (dest / "empty.txt").exists()
    assert Path(StorageManager.download_file(f"{memory_uri}/empty.txt", str(dest), skip_zero_size_check=True)) \
        .read_bytes() == b""


def test_failures_return_none_and_warn_unless_silenced(memory_uri, tmp_path, caplog):
    missing = f"{memory_uri}/missing.bin"
    with caplog.at_level(logging.WARNING, logger="autolog"):
        assert StorageManager.get_local_copy(missing) is None
        assert StorageManager.get_local_copy(str(tmp_path / "missing.bin")) is None
        assert StorageManager.get_file_size_bytes(missing) is None
    assert caplog.text.count("missing.bin") >= 3
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="autolog"):
        assert StorageManager.download_file(missing, str(tmp_path), silence_errors=True) is None
        assert StorageManager.get_file_size_bytes(missing, silence_errors=True) is None
    assert caplog.text == ""
    assert StorageManager.exists_file(missing) is False
    assert StorageManager.exists_file(memory_uri + "/") is False
    assert StorageManager.exists_file(str(tmp_path)) is False  # a folder is not a file


def test_credentials_in_a_url_never_reach_the_log(tmp_path, caplog):
    url = "memory://alice:s3cr3t-pw@bucket/missing.bin"
    with caplog.at_level(logging.DEBUG, logger="autolog"):
        assert StorageManager.get_local_copy(url) is None
        assert StorageManager.list("nosuchscheme://alice:s3cr3t-pw@host/x") is None
    assert "alice:***@bucket" in caplog.text and "s3cr3t-pw" not in caplog.text


def test_a_background_upload_finishes_before_the_interpreter_exits(run_py, tmp_path):
    src = write(tmp_path / "big.bin", os.urandom(8 << 20))
    dest = tmp_path / "dest" / "big.bin"
    proc = run_py(f"""
        from autolog import StorageManager
        url = StorageManager.upload_file({str(src)!r}, {str(dest)!r}, wait_for_upload=False)
        print(url)  # returned at once; the script ends right away
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(dest)
    assert dest.read_bytes() == src.read_bytes()
