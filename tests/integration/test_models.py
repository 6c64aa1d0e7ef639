"""Models and snapshots through the public API, stored in real folders and fsspec's memory filesystem."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import fsspec
import pytest

from autolog import InputModel, Model, OutputModel, Task
from autolog.errors import IntegrityError, NotFoundError
from autolog.storage.hashing import bytes_digest


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest(data: bytes) -> str:
    """A snapshot's identity: the BLAKE3 digest of its bytes ("blake3:<hex>")."""
    return bytes_digest(data)


def stored_files(output_uri: str) -> dict[str, bytes]:
    """Every object under an output_uri (local folder, file:// or memory://) -> its bytes."""
    if output_uri.startswith("memory://"):
        fs = fsspec.filesystem("memory")
        root = "/" + output_uri[len("memory://"):].strip("/")
        return {p[len(root) + 1:]: fs.cat_file(p) for p in fs.find(root)} if fs.exists(root) else {}
    root = Path(output_uri.removeprefix("file://"))
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def all_paths(output_uri: str) -> list[str]:
    if output_uri.startswith("memory://"):
        fs = fsspec.filesystem("memory")
        root = "/" + output_uri[len("memory://"):].strip("/")
        return list(fs.find(root, withdirs=True)) if fs.exists(root) else []
    return [str(p) for p in Path(output_uri.removeprefix("file://")).rglob("*")]


@pytest.fixture(params=["path", "file-url", "memory"])
def output_uri(request, tmp_path, memory_uri) -> str:
    return {
        "path": str(tmp_path / "out"),
        "file-url": f"file://{tmp_path / 'out'}",
        "memory": memory_uri,
    }[request.param]


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    return tmp_path / "work" / "model.pt"


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        write(root / rel, data)
    return root


VERSIONS = [b"first version " * 50, b"second", b"third!" * 3]


@pytest.fixture
def three_snapshots(output_uri, weights):
    task = Task.init(project_name="digits", task_name="train", output_uri=output_uri)
    model = OutputModel(task=task, framework="PyTorch")
    uris = []
    for i, data in enumerate(VERSIONS, start=1):
        write(weights, data)
        uris.append(model.update_weights(weights_filename=str(weights), iteration=i * 10))
    return task, model, uris


# -- snapshots -----------------------------------------------------------------------------


def test_every_update_weights_adds_a_snapshot(three_snapshots):
    task, model, uris = three_snapshots
    snaps = model.snapshots
    assert [s.seq for s in snaps] == [1, 2, 3]
    assert [s.iteration for s in snaps] == [10, 20, 30]
    assert [s.status for s in snaps] == ["stored"] * 3
    assert [s.digest for s in snaps] == [digest(v) for v in VERSIONS]
    assert [s.sha256 for s in snaps] == [None] * 3  # computed on demand only (Model.sha256)
    assert [s.size for s in snaps] == [len(v) for v in VERSIONS]
    assert [s.uri for s in snaps] == uris
    assert len(set(uris)) == 3
    assert snaps[0].created <= snaps[1].created <= snaps[2].created
    assert model.url == uris[-1]
    assert model.iteration == 30
    assert model.framework == "PyTorch"
    assert model.task == task.id
    assert model.name == "train"  # defaults to the task's name


@pytest.mark.parametrize("version,expected", [(None, 2), (1, 0), (2, 1), (3, 2), (-1, 2), (-2, 1), (-3, 0)])
def test_get_local_copy_of_any_version(three_snapshots, version, expected):
    _, model, _ = three_snapshots
    assert Path(model.get_local_copy(version=version)).read_bytes() == VERSIONS[expected]


@pytest.mark.parametrize("version", [0, 4, -4])
def test_get_local_copy_of_a_missing_version(three_snapshots, version):
    _, model, _ = three_snapshots
    with pytest.raises(NotFoundError):
        model.get_local_copy(version=version)


def test_stored_bytes_survive_overwriting_and_deleting_the_source(three_snapshots, weights):
    _, model, _ = three_snapshots
    write(weights, b"something else entirely")
    copies = [Path(model.get_local_copy(version=seq)).read_bytes() for seq in (1, 2, 3)]
    weights.unlink()
    assert copies == VERSIONS
    assert Path(Model(model.id).get_local_copy()).read_bytes() == VERSIONS[-1]


def test_storage_keys_are_readable_and_inside_the_task_folder(tmp_path, weights):
    out = tmp_path / "out"
    task = Task.init(project_name="digits", task_name="train", output_uri=str(out))
    model = OutputModel(task=task, name="resnet best", framework="PyTorch")
    uri = model.update_weights(weights_filename=str(write(weights, b"w")), iteration=1)
    task_folder = f"{out}/digits/train.{task.id}"
    assert uri == f"{task_folder}/models/resnet_best.{model.id[:8]}/0001/model.pt"
    assert all(str(p).startswith(task_folder) for p in out.rglob("*") if p.is_file())


def test_hostile_project_and_task_names_stay_inside_output_uri(tmp_path, weights):
    out = tmp_path / "deep" / "out"
    task = Task.init(project_name="../../escape", task_name="a/../../b", output_uri=str(out))
    task.update_output_model(write(weights, b"w"), name="../../../m")
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name == "model.pt" and p != weights]
    assert len(files) == 1
    assert out.resolve() in files[0].resolve().parents


# -- several models ------------------------------------------------------------------------


def test_update_output_model_creates_then_reuses_a_named_model(tmp_path, weights):
    task = Task.init(project_name="digits", task_name="train", output_uri=True)
    write(weights, b"iteration five")
    uri = task.update_output_model(model_path=str(weights), name="best", iteration=5, tags=["best"])
    best = task.models["output"]["best"]
    assert best.url == uri
    assert (best.iteration, best.tags, best.task) == (5, ["best"], task.id)
    assert Path(best.get_local_copy()).read_bytes() == b"iteration five"

    write(weights, b"iteration nine")
    task.update_output_model(model_path=str(weights), name="best", iteration=9, comment="better")
    assert len(task.models["output"]) == 1
    best = task.models["output"]["best"]
    assert [s.iteration for s in best.snapshots] == [5, 9]
    assert best.comment == "better" and best.tags == ["best"]

    task.update_output_model(model_path=str(weights))  # default name: the file's
    assert task.models["output"].keys() == ["best", "model.pt"]


def test_task_models_are_ordered_by_last_snapshot(weights):
    task = Task.init(project_name="p", task_name="t", output_uri=True)
    a = OutputModel(task=task, name="a")
    b = OutputModel(task=task, name="b")
    a.update_weights(str(write(weights, b"a1")))
    b.update_weights(str(write(weights, b"b1")))
    assert [m.name for m in task.models["output"]] == ["a", "b"]
    a.update_weights(str(write(weights, b"a2")))
    output = task.models["output"]
    assert [m.name for m in output] == ["b", "a"]
    assert output[-1] == a and output["b"] == b
    with pytest.raises(KeyError):
        output["nope"]


def test_input_models_are_the_ones_a_task_connects(weights):
    producer = Task.init(project_name="p", task_name="train", output_uri=True)
    first = OutputModel(task=producer, name="first")
    first.update_weights(str(write(weights, b"1")))
    second = OutputModel(task=producer, name="second")
    second.update_weights(str(write(weights, b"2")))
    producer.close()

    consumer = Task.init(project_name="p", task_name="eval")
    consumer.connect(InputModel(model_id=second.id))
    InputModel(name="first", project="p").connect(consumer)
    assert [m.name for m in consumer.models["input"]] == ["second", "first"]
    assert consumer.models["input"][-1] == first
    assert consumer.models["output"] == []
    assert first.loaded_by == [consumer.id]
    assert producer.models["input"] == []


def test_metadata_tags_and_comment_persist(weights):
    task = Task.init(project_name="p", task_name="t", output_uri=True)
    model = OutputModel(task=task, name="net", framework="Keras", tags=["a"], comment="hello",
                        config_dict={"lr": 0.1}, label_enumeration={"cat": 0, "dog": 1})
    model.set_metadata("accuracy", 0.93)
    model.set_metadata("classes", ["cat", "dog"])
    model.set_tags(["a", "prod"])

    again = Model(model.id)
    assert again.get_metadata("accuracy") == 0.93
    assert again.get_metadata("missing") is None
    meta = again.get_all_metadata()
    assert meta["classes"] == ["cat", "dog"] and meta["accuracy"] == 0.93
    assert again.tags == ["a", "prod"]
    assert again.comment == "hello"
    assert again.framework == "Keras"
    assert again.url is None and again.iteration is None  # no snapshot yet


def test_output_model_needs_a_task():
    with pytest.raises(ValueError):
        OutputModel(framework="PyTorch")
    task = Task.init(project_name="p", task_name="t")
    assert OutputModel().task == task.id  # the running task


def test_unknown_model_id():
    with pytest.raises(LookupError):
        Model("0" * 32)


# -- multi-file snapshots ------------------------------------------------------------------

FOLDER = {"saved_model.pb": b"graph", "variables/variables.index": b"idx", "variables/variables.data-0": b"d" * 100}


def test_a_folder_is_one_snapshot(output_uri, tmp_path):
    folder = make_folder(tmp_path / "export", FOLDER)
    task = Task.init(project_name="p", task_name="t", output_uri=output_uri)
    model = OutputModel(task=task, name="savedmodel", framework="TensorFlow")
    model.update_weights(weights_filename=str(folder), iteration=1)
    (folder / "saved_model.pb").write_bytes(b"changed later")

    [snap] = model.snapshots
    assert sorted(f["name"] for f in snap.files) == sorted(FOLDER)
    assert {f["name"]: f["digest"] for f in snap.files} == {k: digest(v) for k, v in FOLDER.items()}
    assert snap.size == sum(len(v) for v in FOLDER.values())
    local = Path(model.get_local_copy())
    assert local.is_dir() and local.name == "export"
    assert {str(p.relative_to(local)): p.read_bytes() for p in local.rglob("*") if p.is_file()} == FOLDER


@pytest.mark.parametrize("how", ["weights_filenames", "weights_path"])
def test_update_weights_package_is_one_snapshot(output_uri, tmp_path, how):
    files = {"weights.bin": b"W" * 64, "config.json": b'{"layers": 3}', "vocab.txt": b"a\nb\n"}
    folder = make_folder(tmp_path / "pkg", files)
    task = Task.init(project_name="p", task_name="t", output_uri=output_uri)
    model = OutputModel(task=task, name="package")
    if how == "weights_filenames":
        model.update_weights_package(weights_filenames=[str(folder / n) for n in files], iteration=2)
    else:
        model.update_weights_package(weights_path=str(folder), iteration=2)

    [snap] = model.snapshots
    assert sorted(f["name"] for f in snap.files) == sorted(files)
    assert snap.iteration == 2
    local = Path(model.get_local_copy())
    assert local.is_dir()
    assert {p.name: p.read_bytes() for p in local.iterdir()} == files


def test_package_without_output_uri_is_verified_in_place(tmp_path):
    files = {"weights.bin": b"W" * 64, "config.json": b'{"layers": 3}'}
    folder = make_folder(tmp_path / "run", {**files, "train.log": b"not part of the model"})
    task = Task.init(project_name="p", task_name="t", output_uri=None)
    model = OutputModel(task=task, name="package")
    model.update_weights_package(weights_filenames=[str(folder / n) for n in files])
    [snap] = model.snapshots
    assert snap.status == "local"
    assert sorted(f["name"] for f in snap.files) == sorted(files)
    local = Path(model.get_local_copy())  # nothing changed since the snapshot
    assert {n: (local / n).read_bytes() for n in files} == files


def test_update_weights_package_needs_exactly_one_source(tmp_path):
    task = Task.init(project_name="p", task_name="t", output_uri=True)
    model = OutputModel(task=task)
    with pytest.raises(ValueError):
        model.update_weights_package()
    with pytest.raises(ValueError):
        model.update_weights_package(weights_filenames=[], weights_path=str(tmp_path))


# -- keys, atomicity, deduplication --------------------------------------------------------


def test_same_file_name_in_different_folders_never_collides(output_uri, tmp_path):
    a = write(tmp_path / "run_a" / "model.pt", b"weights of run a")
    b = write(tmp_path / "run_b" / "model.pt", b"weights of run b, longer")
    task = Task.init(project_name="p", task_name="t", output_uri=output_uri)
    net1, net2 = OutputModel(task=task, name="net"), OutputModel(task=task, name="net")
    uris = [net1.update_weights(str(a)), net2.update_weights(str(b))]
    uris += [task.update_output_model(a), task.update_output_model(b)]  # both named "model.pt"

    assert len(set(uris[:2])) == 2 and len(set(uris[2:])) == 2
    assert Path(net1.get_local_copy()).read_bytes() == b"weights of run a"
    assert Path(net2.get_local_copy()).read_bytes() == b"weights of run b, longer"
    shared = task.models["output"]["model.pt"]
    assert [Path(shared.get_local_copy(v)).read_bytes() for v in (1, 2)] == [a.read_bytes(), b.read_bytes()]
    assert sorted(stored_files(output_uri).values()).count(b"weights of run a") == 1


def test_no_partial_objects_are_left_behind(output_uri, tmp_path, autolog_home):
    task = Task.init(project_name="p", task_name="t", output_uri=output_uri)
    model = OutputModel(task=task, name="m")
    for i in range(3):
        model.update_weights(str(write(tmp_path / "w.bin", bytes([i]) * 1000)), iteration=i)
    model.update_weights(str(write(tmp_path / "w.bin", bytes([0]) * 1000)))  # deduplicated
    model.update_weights(str(make_folder(tmp_path / "folder", FOLDER)))
    model.update_weights_package(weights_path=str(tmp_path / "folder"))
    task.upload_artifact("dict", {"a": 1})
    for v in (None, 1, 2):
        model.get_local_copy(v)
    leftovers = [p for p in all_paths(output_uri) if ".incomplete-" in p]
    leftovers += [str(p) for p in autolog_home.rglob("*") if ".incomplete-" in p.name]
    assert leftovers == []


def test_identical_content_is_stored_once_per_output_uri(output_uri, tmp_path):
    data = b"identical weights" * 100
    first = Task.init(project_name="p", task_name="one", output_uri=output_uri)
    m1, m2 = OutputModel(task=first, name="m1"), OutputModel(task=first, name="m2")
    m1.update_weights(str(write(tmp_path / "a" / "model.pt", data)))
    m2.update_weights(str(write(tmp_path / "b" / "weights.bin", data)))
    m1.update_weights(str(write(tmp_path / "a" / "model.pt", b"different")))
    first.close()
    second = Task.init(project_name="p", task_name="two", output_uri=output_uri)
    m3 = OutputModel(task=second, name="m3")
    m3.update_weights(str(write(tmp_path / "c" / "model.pt", data)))

    assert list(stored_files(output_uri).values()).count(data) == 1
    assert list(stored_files(output_uri).values()).count(b"different") == 1
    for model, version in ((m1, 1), (m2, None), (m3, None)):
        assert model.snapshot(version).digest == digest(data)
        assert Path(model.get_local_copy(version)).read_bytes() == data


def test_unchanged_weights_still_add_a_snapshot(output_uri, weights):
    task = Task.init(project_name="p", task_name="t", output_uri=output_uri)
    model = OutputModel(task=task, name="m")
    write(weights, b"same bytes")
    uris = [model.update_weights(str(weights), iteration=i) for i in (1, 2)]
    assert [s.iteration for s in model.snapshots] == [1, 2]
    assert [s.status for s in model.snapshots] == ["stored", "stored"]
    assert uris[0] == uris[1]  # deduplicated: one stored object
    assert Path(model.get_local_copy(1)).read_bytes() == Path(model.get_local_copy(2)).read_bytes() == b"same bytes"


def test_deduplication_never_crosses_output_uris(tmp_path, memory_uri):
    data = b"shared weights"
    roots = [str(tmp_path / "out_a"), str(tmp_path / "out_a2"), memory_uri]
    for i, root in enumerate(roots):
        task = Task.init(project_name="p", task_name=f"t{i}", output_uri=root)
        OutputModel(task=task, name="m").update_weights(str(write(tmp_path / f"w{i}.bin", data)))
        task.close()
    for root in roots:
        assert list(stored_files(root).values()) == [data], root


def test_a_hand_deleted_copy_is_stored_again(tmp_path):
    out = tmp_path / "out"
    task = Task.init(project_name="p", task_name="t", output_uri=str(out))
    model = OutputModel(task=task, name="m")
    first = model.update_weights(str(write(tmp_path / "w.bin", b"content")))
    os.remove(first)
    second = model.update_weights(str(tmp_path / "w.bin"))
    assert second != first
    assert Path(model.get_local_copy()).read_bytes() == b"content"


def test_memory_uri_with_an_absolute_path(tmp_path, memory_uri, weights):
    uri = memory_uri.replace("memory://", "memory:///")
    task = Task.init(project_name="p", task_name="t", output_uri=uri)
    model = OutputModel(task=task, name="m")
    model.update_weights(str(write(weights, b"abs memory")))
    assert Path(model.get_local_copy()).read_bytes() == b"abs memory"


# -- no output_uri: path and hash only -----------------------------------------------------


@pytest.mark.parametrize("output_uri", [None, False])
def test_without_output_uri_only_path_and_hash_are_recorded(output_uri, weights, autolog_home):
    task = Task.init(project_name="p", task_name="t", output_uri=output_uri)
    model = OutputModel(task=task, name="m")
    write(weights, b"local only")
    uri = model.update_weights(weights_filename=str(weights), iteration=1)
    [snap] = model.snapshots
    assert snap.status == "local"
    assert uri == snap.uri == str(weights)
    assert (snap.digest, snap.size) == (digest(b"local only"), len(b"local only"))
    assert not any(p.is_file() for p in (autolog_home / "storage").rglob("*"))  # no copy anywhere
    assert model.get_local_copy() == str(weights)

    write(weights, b"overwritten with other bytes")
    with pytest.raises(IntegrityError):
        model.get_local_copy()
    weights.unlink()
    with pytest.raises(FileNotFoundError):
        model.get_local_copy()


# -- sha256 on demand ----------------------------------------------------------------------

CHECKPOINT = {"ckpt.index": b"index", "ckpt.data-00000-of-00001": b"variables" * 20}


def manifest_sha(files: dict[str, bytes]) -> str:
    """The sha256 of a multi-file snapshot: over its sorted "name NUL file-sha256 LF" lines."""
    lines = sorted(f"{name}\0{sha(data)}\n" for name, data in files.items())
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def test_sha256_is_computed_on_demand_then_kept_in_the_row(output_uri, tmp_path, weights, monkeypatch):
    task = Task.init(project_name="p", task_name="t", output_uri=output_uri)
    single = OutputModel(task=task, name="single")
    for i, data in enumerate(VERSIONS, start=1):
        single.update_weights(str(write(weights, data)), iteration=i)
    folder = OutputModel(task=task, name="folder")
    folder.update_weights(str(make_folder(tmp_path / "export", FOLDER)))
    prefix = OutputModel(task=task, name="prefix")  # a checkpoint prefix: a snapshot with an entry
    make_folder(tmp_path / "tf", CHECKPOINT)
    prefix.update_weights(str(tmp_path / "tf" / "ckpt"))
    task.close()
    write(weights, b"overwritten since: the stored copy is what is hashed")

    model = Model(single.id)
    assert [s.sha256 for s in model.snapshots] == [None] * 3  # not computed at save time
    assert model.sha256(1) == sha(VERSIONS[0])
    assert model.sha256(-2) == sha(VERSIONS[1])
    assert model.sha256() == sha(VERSIONS[2]) == hashlib.sha256(Path(model.get_local_copy()).read_bytes()).hexdigest()
    again = Model(single.id)  # read back from the store: kept in each row
    assert [s.sha256 for s in again.snapshots] == [sha(v) for v in VERSIONS]
    assert [s.digest for s in again.snapshots] == [digest(v) for v in VERSIONS]  # the identity is unchanged
    with monkeypatch.context() as patched:
        patched.setattr(Model, "get_local_copy", lambda *a, **k: pytest.fail("a kept sha256 is read again"))
        assert again.sha256(1) == sha(VERSIONS[0])

    snap = Model(folder.id).snapshot()
    assert snap.files and snap.entry == "" and snap.sha256 is None
    assert Model(folder.id).sha256() == manifest_sha(FOLDER)
    assert Model(folder.id).snapshot().sha256 == manifest_sha(FOLDER)

    snap = Model(prefix.id).snapshot()
    assert (sorted(f["name"] for f in snap.files), snap.entry) == (sorted(CHECKPOINT), "ckpt")
    assert Model(prefix.id).sha256() == manifest_sha(CHECKPOINT)
    assert Model(prefix.id).snapshot().sha256 == manifest_sha(CHECKPOINT)


def test_sha256_of_a_remote_snapshot_reads_its_bytes_once(memory_uri, tmp_path, weights, monkeypatch):
    """Downloaded: the digest check and the sha256 come from one read of the download (a second read
    of a 4 GB file would double the wait); already cached: one read of the cached copy."""
    task = Task.init(project_name="p", task_name="t", output_uri=memory_uri)
    single = OutputModel(task=task, name="single")
    for i, data in enumerate(VERSIONS[:2], start=1):
        single.update_weights(str(write(weights, data)), iteration=i)
    folder = OutputModel(task=task, name="folder")
    folder.update_weights(str(make_folder(tmp_path / "export", FOLDER)))
    task.close()
    shutil.rmtree(os.path.join(Model(single.id)._ctx.cache_dir, "objects"))  # as on another machine
    opened: list[str] = []
    real_open = open

    def counting_open(path, mode="r", *args, **kwargs):
        if "cache" in os.fspath(path) and "r" in mode:
            opened.append(os.path.basename(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    assert Model(single.id).sha256(1) == sha(VERSIONS[0])  # not cached yet: downloaded, then read once
    assert len(opened) == 1
    Model(single.id).get_local_copy(2)  # cached (and verified) first
    opened.clear()
    assert Model(single.id).sha256(2) == sha(VERSIONS[1])
    assert len(opened) == 1
    opened.clear()
    assert Model(folder.id).sha256() == manifest_sha(FOLDER)
    assert sorted(opened) == sorted(os.path.basename(name) for name in FOLDER)


def test_sha256_of_a_remote_snapshot_altered_in_the_store_is_refused(memory_uri, weights):
    task = Task.init(project_name="p", task_name="t", output_uri=memory_uri)
    model = OutputModel(task=task, name="m")
    model.update_weights(str(write(weights, b"as saved")))
    task.close()
    shutil.rmtree(os.path.join(Model(model.id)._ctx.cache_dir, "objects"))  # as on another machine
    uri = Model(model.id).snapshot().uri
    with fsspec.open(uri, "wb") as f:
        f.write(b"altered in the store")
    with pytest.raises(IntegrityError, match="does not match its recorded blake3"):
        Model(model.id).sha256()
    assert Model(model.id).snapshot().sha256 is None


def test_sha256_of_a_local_snapshot_is_read_in_place_and_only_from_the_recorded_bytes(tmp_path, weights):
    task = Task.init(project_name="p", task_name="t", output_uri=None)
    model = OutputModel(task=task, name="m")
    model.update_weights(str(write(weights, b"local only")), iteration=1)
    model.update_weights(str(write(tmp_path / "other.pt", b"other bytes")), iteration=2)
    task.close()
    assert Model(model.id).sha256(1) == sha(b"local only")
    write(tmp_path / "other.pt", b"changed since the snapshot")
    with pytest.raises(IntegrityError, match="changed since snapshot 2"):  # never the sha256 of other bytes
        Model(model.id).sha256(2)
    assert Model(model.id).snapshot(2).sha256 is None


def test_a_checkpoint_prefix_recorded_without_a_copy_is_found_where_it_was_saved(tmp_path):
    """output_uri=None: get_local_copy gives the prefix a framework restores from (the folder's files
    verified), and sha256() works on it too."""
    make_folder(tmp_path / "tf", CHECKPOINT)
    task = Task.init(project_name="p", task_name="t", output_uri=None)
    prefix = OutputModel(task=task, name="prefix")
    prefix.update_weights(str(tmp_path / "tf" / "ckpt"))
    task.close()
    snap = Model(prefix.id).snapshot()
    assert (snap.status, snap.entry) == ("local", "ckpt")
    assert Model(prefix.id).get_local_copy() == str(tmp_path / "tf" / "ckpt")
    assert Model(prefix.id).sha256() == manifest_sha(CHECKPOINT)


def test_sha256_is_never_recorded_for_an_altered_stored_copy(tmp_path, weights):
    """A copy in a local output_uri is returned in place: sha256() checks it against the digest first."""
    task = Task.init(project_name="p", task_name="t", output_uri=str(tmp_path / "out"))
    model = OutputModel(task=task, name="m")
    model.update_weights(str(write(weights, b"as saved")))
    task.close()
    stored = Path(Model(model.id).get_local_copy())
    stored.write_bytes(b"altered in the store")
    with pytest.raises(IntegrityError, match="does not match its recorded blake3"):
        Model(model.id).sha256()
    assert Model(model.id).snapshot().sha256 is None


def test_sha256_of_a_local_folder_with_a_name_that_is_not_utf8(tmp_path):
    """The row holds the name as display text (w\\xe8.bin); the file on disk has the raw byte."""
    folder = tmp_path / "export"
    folder.mkdir()
    raw = os.path.join(os.fsencode(folder), b"w\xe8.bin")
    with open(raw, "wb") as f:
        f.write(b"weights under a latin-1 name")
    (folder / "config.json").write_bytes(b"{}")
    task = Task.init(project_name="p", task_name="t", output_uri=None)
    model = OutputModel(task=task, name="folder")
    model.update_weights(str(folder))
    task.close()
    lines = sorted([("config.json", sha(b"{}")), ("w\\xe8.bin", sha(b"weights under a latin-1 name"))])
    expected = hashlib.sha256("".join(f"{name}\0{file_sha}\n" for name, file_sha in lines).encode()).hexdigest()
    assert Model(model.id).sha256() == expected


@pytest.fixture
def model_without_content(tmp_path) -> Model:
    """A model whose only snapshot was registered by a URL nothing answers: no digest was ever recorded."""
    task = Task.init(project_name="p", task_name="t", output_uri=str(tmp_path / "out"))
    model = OutputModel(task=task, name="remote")
    model.update_weights(register_uri="https://127.0.0.1:9/model.pt")  # the discard port: nothing listens
    task.close()
    model = Model(model.id)
    assert (model.snapshot().status, model.snapshot().digest) == ("stored", None)
    return model


def test_sha256_of_a_snapshot_without_content_fails_clearly(model_without_content):
    with pytest.raises(IntegrityError, match="Snapshot 1 of model .* has no recorded content to compute a sha256"):
        model_without_content.sha256()
    assert model_without_content.snapshot().sha256 is None


# -- finding models ------------------------------------------------------------------------


def test_query_models_filters_newest_first(weights):
    t1 = Task.init(project_name="digits", task_name="train", output_uri=True)
    a = OutputModel(task=t1, name="cnn", framework="PyTorch", tags=["best"])
    a.update_weights(str(write(weights, b"a")))
    b = OutputModel(task=t1, name="mlp", framework="Keras")
    b.update_weights(str(write(weights, b"b")))
    t1.close()
    t2 = Task.init(project_name="digits", task_name="train", output_uri=True)
    c = OutputModel(task=t2, name="cnn", framework="PyTorch")
    c.update_weights(str(write(weights, b"c")))
    t2.close()
    t3 = Task.init(project_name="other", task_name="x", output_uri=True)
    OutputModel(task=t3, name="cnn").update_weights(str(write(weights, b"d")))

    ids = lambda models: [m.id for m in models]  # noqa: E731
    assert ids(Model.query_models(project_name="digits")) == [c.id, b.id, a.id]
    assert ids(Model.query_models(project_name="digits", model_name="cnn")) == [c.id, a.id]
    assert ids(Model.query_models(project_name="digits", tags=["best"])) == [a.id]
    assert ids(Model.query_models(framework="Keras")) == [b.id]
    assert ids(Model.query_models(task_id=t1.id)) == [b.id, a.id]
    assert ids(Model.query_models(project_name="digits", max_results=1)) == [c.id]
    assert Model.query_models(project_name="nothing") == []


def test_query_models_takes_clearml_tag_queries_metadata_and_flags(weights):
    task = Task.init(project_name="tagged", task_name="train", output_uri=True)
    made = {}
    for name, tags in (("ab", ["a", "b"]), ("a", ["a"]), ("cd", ["c", "d"]), ("c", ["c"]), ("none", [])):
        made[name] = OutputModel(task=task, name=name, tags=tags)
        made[name].update_weights(str(write(weights, name.encode())))
    made["ab"].set_metadata("dataset", "v2")
    made["a"].set_metadata("dataset", 1)

    def names(**query):
        return sorted(m.name for m in Model.query_models(project_name="tagged", **query))

    # The examples of ClearML's model documentation.
    assert names(tags=["a", "b"]) == ["a", "ab"]  # any one, by default
    assert names(tags=["__$and", "a", "b"]) == ["ab"]
    assert names(tags=["a", "-b"]) == ["a"]
    assert names(tags=["__$not", "a", "c", "__$not", "d"]) == ["c"]
    assert names(tags=["a", "__$and", "c", "d"]) == ["a", "ab", "cd"]  # a OR (c AND d)
    assert names(tags=["__$and", "__$or", "a", "c", "__$and", "d"]) == ["cd"]  # (a OR c) AND d
    assert names(tags=["-a"]) == ["c", "cd", "none"]
    assert names(metadata={"dataset": "v2"}) == ["ab"]
    assert names(metadata={"dataset": "1"}) == ["a"]  # compared as text, as ClearML stores metadata
    assert names(tags=["a"], metadata={"dataset": "v2"}, include_archived=True) == ["ab"]
    assert len(Model.query_models(project_name="tagged", tags=["a", "c"], max_results=2)) == 2
    with pytest.raises(ValueError, match="no published state"):
        Model.query_models(only_published=True)
    with pytest.raises(ValueError, match="tags must be a list of str"):
        Model.query_models(tags=["a", 3])
