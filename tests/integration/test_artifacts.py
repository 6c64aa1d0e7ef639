"""Artifacts: every kind round-trips, stored bytes are verified before decoding, names stay inside."""
from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from autolog import Task
from autolog.errors import IntegrityError


def db_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(home.glob("autolog.db*")))


def files_under(output_uri: str) -> list[str]:
    if output_uri.startswith("memory://"):
        fs = fsspec.filesystem("memory")
        root = "/" + output_uri[len("memory://"):].strip("/")
        return sorted("memory:/" + p for p in fs.find(root)) if fs.exists(root) else []
    root = Path(output_uri)
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture(params=["default", "path", "memory"])
def task(request, tmp_path, memory_uri, autolog_home):
    """A running task storing artifacts in the default location, a folder, or memory://."""
    output_uri = {"default": None, "path": str(tmp_path / "out"), "memory": memory_uri}[request.param]
    t = Task.init(project_name="digits", task_name="train", output_uri=output_uri)
    t.storage_root = output_uri or str(autolog_home / "storage")  # where its objects end up
    return t


@pytest.fixture
def local_task(tmp_path):
    t = Task.init(project_name="digits", task_name="train", output_uri=str(tmp_path / "out"))
    t.storage_root = str(tmp_path / "out")
    return t


def make_folder(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)))
    (root / "sub" / "deeper" / "c.csv").write_text("x,y\n1,2\n")
    return root


def folder_contents(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- round trips ---------------------------------------------------------------------------


def test_dict_and_list_round_trip_as_json(task):
    person = {"name": "Erik", "age": 30, "tags": ["a", None, True], "nested": {"x": 1.5}}
    task.upload_artifact(name="person dictionary", artifact_object=person)
    task.upload_artifact(name="list", artifact_object=[1, "two", 3.0])
    arts = task.artifacts
    assert arts["person dictionary"].type == "json"
    assert arts["person dictionary"].get() == person
    assert arts["list"].get() == [1, "two", 3.0]
    assert "Erik" in arts["person dictionary"].preview


@pytest.mark.parametrize("array", [np.arange(10), np.random.default_rng(0).random((3, 4), dtype=np.float32),
                                   np.array([[True, False]]), np.array(["a", "bc"])], ids=["int", "f32", "bool", "str"])
def test_numpy_round_trips_as_npz(task, array):
    task.upload_artifact(name="arr", artifact_object=array)
    art = task.artifacts["arr"]
    assert art.type == "numpy"
    assert art.url.endswith(".npz")
    got = art.get()
    assert got.dtype == array.dtype and got.shape == array.shape
    np.testing.assert_array_equal(got, array)


def test_dataframe_round_trips_as_csv_gz(task):
    df = pd.DataFrame({"i": [1, 2, 3], "f": [0.5, 1.5, -2.0], "s": ["x", "y", "z"], "b": [True, False, True]})
    task.upload_artifact(name="df", artifact_object=df)
    art = task.artifacts["df"]
    assert art.type == "pandas"
    assert art.url.endswith(".csv.gz")
    pd.testing.assert_frame_equal(art.get(), df)


@pytest.mark.parametrize("mode,channels", [("RGB", 3), ("RGBA", 4), ("L", None)])
def test_pil_image_round_trips_as_an_image_file(task, mode, channels):
    shape = (5, 7, channels) if channels else (5, 7)
    pixels = (np.arange(np.prod(shape)) * 37 % 256).astype(np.uint8).reshape(shape)
    img = Image.fromarray(pixels)
    assert img.mode == mode
    task.upload_artifact(name="img", artifact_object=img)
    art = task.artifacts["img"]
    assert art.type == "image"
    got = art.get()
    assert (got.mode, got.size) == (mode, (7, 5))
    np.testing.assert_array_equal(np.asarray(got), pixels)
    with Image.open(art.get_local_copy()) as on_disk:  # a real image file
        assert on_disk.size == (7, 5)


def test_any_other_object_is_pickled(task, helpers):
    obj = helpers.Person("Erik", 30)
    task.upload_artifact(name="obj", artifact_object=obj)
    art = task.artifacts["obj"]
    assert art.type == "pickle"
    assert art.get() == obj
    assert "Person" in art.preview


def test_file_is_stored_as_is(task, tmp_path):
    src = tmp_path / "preprocess_data.csv"
    src.write_text("a,b\n1,2\n")
    task.upload_artifact(name="data", artifact_object=str(src))
    src.write_text("changed after upload")
    art = task.artifacts["data"]
    assert art.type == "file"
    assert art.sha256 == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    local = Path(art.get_local_copy())
    assert local.read_bytes() == b"a,b\n1,2\n"
    assert local.name == "preprocess_data.csv"
    assert local != src
    assert Path(art.get()) == local


@pytest.mark.parametrize("spelling", ["str-slash", "str", "pathlib", "file-url"])
def test_folder_is_zipped_and_extracted_back(task, tmp_path, autolog_home, spelling):
    folder = make_folder(tmp_path / "folder")
    given = {"str-slash": f"{folder}/", "str": str(folder), "pathlib": folder, "file-url": f"file://{folder}"}[spelling]
    task.upload_artifact(name="folder", artifact_object=given)
    art = task.artifacts["folder"]
    assert art.type == "folder"
    assert art.url.endswith("folder.zip")
    local = Path(art.get_local_copy())
    assert local.is_dir()
    assert (autolog_home / "cache") in local.parents
    assert folder_contents(local) == folder_contents(folder)
    assert (local / "empty").is_dir()
    assert Path(art.get_local_copy()) == local  # cached: same place the second time
    assert Path(art.get()) == local


def test_get_local_copy_of_a_decoded_kind_is_the_stored_file(task):
    task.upload_artifact(name="cfg", artifact_object={"lr": 0.1})
    local = Path(task.artifacts["cfg"].get_local_copy())
    assert local.suffix == ".json"
    assert local.read_bytes() == b'{\n  "lr": 0.1\n}'


def test_artifacts_are_listed_in_upload_order(task):
    for name in ["z", "a", "m"]:
        task.upload_artifact(name=name, artifact_object={"n": name})
    assert list(task.artifacts) == ["z", "a", "m"]


def test_reupload_replaces_the_artifact(task):
    task.upload_artifact(name="x", artifact_object={"v": 1})
    task.upload_artifact(name="other", artifact_object=[0])
    task.upload_artifact(name="x", artifact_object=np.arange(3))
    arts = task.artifacts
    assert sorted(arts) == ["other", "x"]
    assert arts["x"].type == "numpy"
    np.testing.assert_array_equal(arts["x"].get(), np.arange(3))


def test_identical_content_under_two_names(task):
    task.upload_artifact(name="first", artifact_object={"same": "content"})
    task.upload_artifact(name="second", artifact_object={"same": "content"})
    arts = task.artifacts
    assert arts["first"].sha256 == arts["second"].sha256
    assert arts["first"].get() == {"same": "content"}
    assert arts["second"].get() == {"same": "content"}
    assert os.path.isfile(arts["second"].get_local_copy())


def test_metadata_and_preview_are_stored(task):
    task.upload_artifact(name="a", artifact_object={"k": 1}, metadata={"split": "train", "rows": 3},
                         preview="three training rows")
    task.upload_artifact(name="b", artifact_object=np.arange(4))
    arts = Task.get_task(task_id=task.id).artifacts
    assert arts["a"].metadata == {"split": "train", "rows": 3}
    assert arts["a"].preview == "three training rows"
    assert arts["b"].metadata == {}
    assert "shape=(4,)" in arts["b"].preview
    assert arts["a"].task_id == task.id
    assert arts["a"].size == len(Path(arts["a"].get_local_copy()).read_bytes())


# -- integrity -----------------------------------------------------------------------------


def tamper(art, data: bytes) -> None:
    """Overwrite the stored bytes. For memory:// also drop the local cached copy, so get() must download."""
    if art.url.startswith("memory://"):
        cached = Path(art.get_local_copy())
        fsspec.filesystem("memory").pipe_file(art.url[len("memory://"):], data)
        cached.unlink()
    else:
        Path(art.url).write_bytes(data)


def test_tampered_pickle_is_refused_and_never_unpickled(task, helpers, tmp_path):
    marker = tmp_path / "MARKER"
    task.upload_artifact(name="obj", artifact_object=helpers.Person("Erik", 30))
    art = task.artifacts["obj"]
    tamper(art, pickle.dumps(helpers.Evil(str(marker))))
    with pytest.raises(IntegrityError, match="obj"):
        art.get()
    assert not marker.exists()
    with pytest.raises(IntegrityError):
        Task.get_task(task_id=task.id).artifacts["obj"].get()
    assert not marker.exists()


def test_untampered_pickle_does_run_its_loader(task, helpers, tmp_path):
    """The control for the test above: the marker mechanism really fires when bytes are unpickled."""
    marker = tmp_path / "MARKER"
    task.upload_artifact(name="obj", artifact_object=helpers.WritesMarkerOnLoad(str(marker)))
    assert not marker.exists()
    task.artifacts["obj"].get()
    assert marker.read_text() == "unpickled"


@pytest.mark.parametrize(
    "obj,forged",
    [({"a": 1}, b'{"a": 2}'), (np.arange(5), b"PK\x03\x04 not an npz"), (pd.DataFrame({"a": [1]}), b"\x1f\x8b junk")],
    ids=["json", "numpy", "pandas"],
)
def test_tampered_decoded_kinds_are_refused(task, obj, forged):
    task.upload_artifact(name="x", artifact_object=obj)
    art = task.artifacts["x"]
    tamper(art, forged)
    with pytest.raises(IntegrityError):
        art.get()


def test_an_altered_cached_copy_is_refused_too(task, helpers, tmp_path):
    marker = tmp_path / "MARKER"
    task.upload_artifact(name="obj", artifact_object=helpers.Person("Erik", 30))
    art = task.artifacts["obj"]
    Path(art.get_local_copy()).write_bytes(pickle.dumps(helpers.Evil(str(marker))))
    with pytest.raises(IntegrityError):
        art.get()
    assert not marker.exists()


# -- what a string may be ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["just some text", "no/such/file.csv", "~/definitely-missing-autolog-file"])
def test_string_that_is_neither_path_nor_url_is_rejected(task, text):
    with pytest.raises(ValueError):
        task.upload_artifact(name="x", artifact_object=text)
    assert task.artifacts == {}


@pytest.mark.parametrize("url", ["https://example.com/data/train.csv", "s3://bucket/datasets/train.parquet",
                                 "gs://b/x.bin"])
def test_url_is_registered_as_a_reference_without_upload(task, url):
    before = files_under(task.storage_root)
    task.upload_artifact(name="ref", artifact_object=url)
    art = task.artifacts["ref"]
    assert art.type == "url"
    assert art.url == url
    assert art.size is None and art.sha256 is None
    assert files_under(task.storage_root) == before


def test_reference_url_credentials_never_reach_the_database(local_task, autolog_home):
    local_task.upload_artifact(name="ref", artifact_object="https://bob:hunter2@example.com/d.csv?sig=SIGVALUE")
    local_task.close()
    art = Task.get_task(task_id=local_task.id).artifacts["ref"]
    assert "hunter2" not in art.url and "SIGVALUE" not in art.url
    data = db_bytes(autolog_home)
    assert b"hunter2" not in data
    assert b"SIGVALUE" not in data


# -- names ---------------------------------------------------------------------------------

AWKWARD_NAMES = ["../../x", "a/b", "/abs/path", "nul\x00x", "n" * 300, "🚀 résumé ✨", ".hidden", "..", "a\\b"]


@pytest.mark.parametrize("name", AWKWARD_NAMES, ids=repr)
def test_awkward_names_work_and_stay_inside_the_artifacts_folder(local_task, tmp_path, name):
    src = tmp_path / "payload.txt"
    src.write_text("payload")
    local_task.upload_artifact(name=name, artifact_object={"name": name})
    local_task.upload_artifact(name=name + "-file", artifact_object=src)

    arts = Task.get_task(task_id=local_task.id).artifacts
    assert arts[name].name == name
    assert arts[name].get() == {"name": name}
    assert Path(arts[name + "-file"].get_local_copy()).read_text() == "payload"

    artifacts_dir = (Path(local_task.storage_root) / "digits" / f"train.{local_task.id}" / "artifacts").resolve()
    stored = [Path(p).resolve() for p in files_under(local_task.storage_root)]
    assert len(stored) == 2
    for path in stored:
        assert artifacts_dir in path.parents, path
    assert not (tmp_path / "x").exists() and not Path("/abs/path").exists()


def test_names_that_clean_alike_do_not_overwrite_each_other(local_task):
    local_task.upload_artifact(name="a/b", artifact_object={"v": "slash"})
    local_task.upload_artifact(name="a_b", artifact_object={"v": "underscore"})
    local_task.upload_artifact(name="a?b", artifact_object={"v": "question"})
    arts = local_task.artifacts
    assert [arts[n].get()["v"] for n in ("a/b", "a_b", "a?b")] == ["slash", "underscore", "question"]
    assert len({arts[n].url for n in arts}) == 3


def test_empty_name_is_rejected(local_task):
    with pytest.raises(ValueError):
        local_task.upload_artifact(name="", artifact_object={"a": 1})
