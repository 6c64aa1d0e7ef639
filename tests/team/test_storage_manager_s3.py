"""StorageManager on S3 (the moto server of tests/services.py), reached with the usual AWS variables; the
bucket is read and written directly with a fresh s3fs client to check what StorageManager did."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

import services
from team_helpers import keys_under, object_bytes, s3

from autolog import StorageManager

pytestmark = [pytest.mark.s3]


def test_upload_fetch_replace_list_and_download_on_s3(s3_uri, tmp_path, autolog_home, caplog):
    bucket = s3_uri[len("s3://"):].split("/", 1)[0]
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights v1")
    url = StorageManager.upload_file(str(src), f"{s3_uri}/models/model.bin")
    assert object_bytes(url) == b"weights v1"
    assert StorageManager.exists_file(url) and StorageManager.get_file_size_bytes(url) == 10
    assert not StorageManager.exists_file(f"{s3_uri}/models")  # a prefix is not a file

    with caplog.at_level(logging.DEBUG, logger="autolog"):
        local = Path(StorageManager.get_local_copy(url))
        assert local.read_bytes() == b"weights v1"
        assert (autolog_home / "cache" / "urls" / "global") in local.parents
        s3().pipe_file(url[len("s3://"):], b"weights v2!")  # replaced behind our back: a new ETag
        assert Path(StorageManager.get_local_copy(url)).read_bytes() == b"weights v2!"
        assert StorageManager.get_local_copy(f"{s3_uri}/missing.bin") is None

    folder = tmp_path / "project"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.json").write_text("{}")
    (folder / "sub" / "b.json").write_text("[]")
    StorageManager.upload_folder(str(folder), f"{s3_uri}/project")
    assert keys_under(f"{s3_uri}/project") == [f"{s3_uri}/project/a.json", f"{s3_uri}/project/sub/b.json"]
    runs = s3_uri[len(f"s3://{bucket}/"):]
    assert sorted(StorageManager.list(f"{s3_uri}/project")) == [f"{runs}/project/a.json", f"{runs}/project/sub/b.json"]
    assert sorted(StorageManager.list(f"{s3_uri}/proj", return_full_path=True)) == \
        [f"{s3_uri}/project/a.json", f"{s3_uri}/project/sub/b.json"]  # a key prefix

    dest = tmp_path / "downloaded"
    assert StorageManager.download_folder(f"{s3_uri}/project", str(dest), match_wildcard="*/sub/*") == str(dest)
    assert (dest / runs / "project" / "sub" / "b.json").read_text() == "[]"
    assert not (dest / runs / "project" / "a.json").exists()
    assert services.S3_ENV["AWS_SECRET_ACCESS_KEY"] not in caplog.text
