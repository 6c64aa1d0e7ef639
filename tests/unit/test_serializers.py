"""Tests for autolog.serializers: every kind round-trips through real files in tmp_path."""
from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from autolog import serializers as ser  # a package that does not import fails every test here

REPO = Path(__file__).resolve().parents[2]
MODULE_FILE = REPO / "autolog" / "serializers.py"  # loaded alone by the import probes below


@dataclasses.dataclass
class Point:
    x: int
    y: list


@pytest.fixture
def workdir(tmp_path: Path) -> str:
    d = tmp_path / "work"
    d.mkdir()
    return str(d)


def roundtrip(obj, workdir: str, basename: str = "artifact"):
    s = ser.serialize(obj, workdir, basename)
    assert s.path == os.path.join(workdir, basename + s.extension)
    assert os.path.isfile(s.path)
    assert len(s.preview) <= 500
    return s, ser.deserialize(s.kind, s.path)


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.array([1, -2, 3], dtype=np.int64),
        np.array([[True, False], [False, True]]),
        np.array([1 + 2j, 3 - 4j], dtype=np.complex128),
        np.random.default_rng(0).integers(0, 255, size=(4, 5, 3), dtype=np.uint8),
        np.array(["a", "bcd"]),
        np.array(["2024-01-01", "2024-06-30"], dtype="datetime64[D]"),
        np.array(3.5),
    ],
    ids=["float32-2d", "int64", "bool-2d", "complex", "uint8-3d", "unicode", "datetime64", "0d"],
)
def test_numpy_roundtrip(array, workdir):
    s, back = roundtrip(array, workdir)
    assert (s.kind, s.extension) == ("numpy", ".npz")
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert str(array.shape) in s.preview and str(array.dtype) in s.preview
    with np.load(s.path) as npz:
        assert list(npz.keys()) == ["array"]


def test_object_array_and_subclass_fall_back_to_pickle(workdir):
    s, back = roundtrip(np.array([{"a": 1}, None], dtype=object), workdir, "obj")
    assert s.kind == "pickle" and back[0] == {"a": 1} and back[1] is None
    masked = np.ma.masked_array([1, 2, 3], mask=[0, 1, 0])
    s, back = roundtrip(masked, workdir, "masked")
    assert s.kind == "pickle" and back.mask.tolist() == [False, True, False]


def test_pandas_roundtrip(workdir):
    df = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [0.5, np.nan, -1.25],
            "s": ["a", "b c", "d,e"],
            "b": [True, False, True],
        }
    )
    s, back = roundtrip(df, workdir)
    assert (s.kind, s.extension) == ("pandas", ".csv.gz")
    assert s.path.endswith(".csv.gz")
    pd.testing.assert_frame_equal(back, df, check_index_type=True)
    assert "(3, 4)" in s.preview and "i, f, s, b" in s.preview


def test_pandas_bytes_are_reproducible(tmp_path):
    df = pd.DataFrame({"a": range(100)})
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    first = ser.serialize(df, str(a), "df")
    second = ser.serialize(df, str(b), "df")
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()


def test_image_roundtrip_pixel_equal(workdir):
    pixels = np.random.default_rng(1).integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGB")
    s, back = roundtrip(image, workdir)
    assert (s.kind, s.extension) == ("image", ".png")
    assert back.mode == "RGB" and back.size == (9, 7)
    np.testing.assert_array_equal(np.asarray(back), pixels)
    assert "9x7" in s.preview and "RGB" in s.preview
    os.remove(s.path)  # pixels were loaded, so the image outlives its file
    assert back.getpixel((0, 0)) == tuple(pixels[0, 0])


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA"])
def test_image_png_modes_roundtrip(mode, workdir):
    image = Image.fromarray(np.arange(24, dtype=np.uint8).reshape(4, 6)).convert(mode)
    s, back = roundtrip(image, workdir)
    assert s.kind == "image" and back.mode == mode and back.tobytes() == image.tobytes()


@pytest.mark.parametrize("mode", ["CMYK", "PA", "F", "I"])
def test_image_mode_png_cannot_store_is_pickled(mode, workdir):
    image = Image.fromarray(np.arange(24, dtype=np.uint8).reshape(4, 6)).convert(mode)
    s, back = roundtrip(image, workdir)
    assert s.kind == "pickle"
    assert back.mode == mode and back.tobytes() == image.tobytes()


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1.5, "x", None, True], "nested": {"k": {"z": []}}},
        [1, 2.0, "three", {"four": 4}, [5], False, None],
        {},
        [],
    ],
)
def test_json_roundtrip(value, workdir):
    s, back = roundtrip(value, workdir)
    assert (s.kind, s.extension) == ("json", ".json")
    assert back == value and type(back) is type(value)
    text = Path(s.path).read_text(encoding="utf-8")
    assert json.loads(text) == value
    if isinstance(value, dict):
        assert list(back) == list(value)  # sort_keys=False keeps insertion order
    if value:
        assert "\n  " in text  # indent=2


@pytest.mark.parametrize(
    "value",
    [
        {1: "int key"},
        {"t": (1, 2)},
        [1, (2, 3)],
        {"nan": float("nan")},
        {"s": {1, 2}},
        {"f": np.float64(1.5)},
        collections.OrderedDict(a=1),
        collections.defaultdict(list, a=[1]),
    ],
    ids=["int-key", "tuple", "tuple-in-list", "nan", "set", "np-float", "ordered", "default"],
)
def test_non_json_roundtrip_falls_back_to_pickle(value, workdir):
    s, back = roundtrip(value, workdir)
    assert (s.kind, s.extension) == ("pickle", ".pkl")
    assert type(back) is type(value)
    if "nan" not in value:
        assert back == value
    assert repr(back) == repr(value)


def test_custom_object_pickle_roundtrip(workdir):
    point = Point(3, [1, 2])
    s, back = roundtrip(point, workdir)
    assert (s.kind, s.extension) == ("pickle", ".pkl")
    assert back == point and isinstance(back, Point)
    assert "Point" in s.preview


def test_unpicklable_object_leaves_no_partial_file(workdir):
    with pytest.raises(Exception):
        ser.serialize(lambda: None, workdir, "fn")
    assert os.listdir(workdir) == []


@pytest.mark.parametrize("as_path", [False, True])
@pytest.mark.parametrize("name, extension", [("data.csv", ".csv"), ("logs.tar.gz", ".tar.gz"),
                                             ("model.v1.2.pt", ".pt"), ("README", "")])
def test_file_kind_returns_users_path(tmp_path, workdir, as_path, name, extension):
    user_file = tmp_path / name
    user_file.write_bytes(b"x" * 1234)
    s = ser.serialize(user_file if as_path else str(user_file), workdir, "artifact")
    assert s.kind == "file" and s.path == str(user_file) and s.extension == extension
    assert name in s.preview and "1.2 kB" in s.preview
    assert ser.deserialize("file", s.path) == s.path
    assert os.listdir(workdir) == []  # no copy


def _make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "top.txt": b"top",
        "a/one.bin": bytes(range(256)),
        "a/b/c/deep.json": b'{"deep": true}',
        "z/last.txt": b"",
        "a:b.txt": b"colon is a legal POSIX file name",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "empty" / "nested").mkdir(parents=True)
    return files


def _read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_folder_zip_roundtrip(tmp_path, workdir):
    src = tmp_path / "src"
    files = _make_tree(src)
    s = ser.serialize(src, workdir, "folder_art")
    assert (s.kind, s.extension) == ("folder", ".zip")
    assert s.path == os.path.join(workdir, "folder_art.zip")
    assert "5 files" in s.preview and len(s.preview) <= 500
    with zipfile.ZipFile(s.path) as zf:
        names = zf.namelist()
        assert all(not n.startswith("/") and ".." not in n for n in names)
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist() if not i.is_dir())
    dest = tmp_path / "out" / "extracted"
    assert ser.extract_zip(s.path, str(dest)) == str(dest)
    assert _read_tree(dest) == files
    assert (dest / "empty" / "nested").is_dir()
    assert ser.deserialize("folder", str(dest)) == str(dest)
    assert [p.name for p in dest.parent.iterdir()] == ["extracted"]  # temp dir renamed away

    again = ser.serialize(str(src), str(tmp_path / "out"), "second")
    with zipfile.ZipFile(again.path) as zf:
        assert zf.namelist() == names  # deterministic order


def test_folder_symlinks_inside_kept_outside_skipped(tmp_path, workdir, caplog):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "real.txt").write_text("inside")
    outside = tmp_path / "secret.txt"
    outside.write_text("outside")
    (tmp_path / "outside_dir").mkdir()
    (tmp_path / "outside_dir" / "x.txt").write_text("x")
    os.symlink(src / "sub" / "real.txt", src / "link_in.txt")
    os.symlink(outside, src / "link_out.txt")
    os.symlink("../../secret.txt", src / "sub" / "relative_out.txt")
    os.symlink(tmp_path / "outside_dir", src / "dir_out")
    os.symlink(src / "missing", src / "broken")

    with caplog.at_level(logging.WARNING, logger="autolog"):
        s = ser.serialize(src, workdir, "links")
    with zipfile.ZipFile(s.path) as zf:
        names = set(zf.namelist())
        assert zf.read("link_in.txt") == b"inside"
    assert {"link_in.txt", "sub/real.txt"} <= names
    assert not {"link_out.txt", "sub/relative_out.txt", "broken"} & names
    assert not any(n.startswith("dir_out") for n in names)
    warned = caplog.text
    assert "link_out.txt" in warned and "relative_out.txt" in warned and "dir_out" in warned
    assert all(r.name == "autolog" for r in caplog.records)


def test_folder_symlink_loops_and_broken_links_are_skipped_with_one_warning_each(tmp_path, workdir, caplog):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "real.txt").write_text("kept")
    (src / "sub" / "deep.txt").write_text("kept too")
    os.symlink("b", src / "a")  # a two-link cycle: a -> b -> a
    os.symlink("a", src / "b")
    os.symlink("self", src / "self")  # a one-link loop
    os.symlink("x2", src / "sub" / "x1")  # a cycle through the parent folder: sub/x1 -> sub/x2 -> sub/x1
    os.symlink("../sub/x1", src / "sub" / "x2")
    os.symlink("missing.txt", src / "dangling")

    with caplog.at_level(logging.WARNING, logger="autolog"):
        s = ser.serialize(src, workdir, "loops")
    with zipfile.ZipFile(s.path) as zf:
        files = sorted(n for n in zf.namelist() if not n.endswith("/"))
        assert zf.read("real.txt") == b"kept" and zf.read("sub/deep.txt") == b"kept too"
    assert files == ["real.txt", "sub/deep.txt"]
    assert "2 files" in s.preview
    skipped = {"a": "loop", "b": "loop", "self": "loop", "sub/x1": "loop", "sub/x2": "loop", "dangling": "broken"}
    for link, why in skipped.items():
        about = [r.getMessage() for r in caplog.records if r.getMessage().split(" in ")[0].endswith(str(src / link))]
        assert len(about) == 1, (link, caplog.text)  # one warning per link, naming it
        assert why in about[0]
    assert len(caplog.records) == len(skipped)


def _evil_zip(path: Path, member: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("fine.txt", "ok")
        zf.writestr(zipfile.ZipInfo(member), "pwned")
    return path


@pytest.mark.parametrize("member", ["../evil", "a/../../evil", "/etc/evil", "..\\evil", "C:/evil"])
def test_extract_zip_rejects_escaping_members(tmp_path, member):
    zip_path = _evil_zip(tmp_path / "evil.zip", member)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="escape"):
        ser.extract_zip(str(zip_path), str(out / "dest"))
    assert list(out.iterdir()) == []  # nothing extracted, no temp dir left behind
    assert not (tmp_path / "evil").exists()


def test_extract_zip_leaves_existing_dest_untouched(tmp_path, workdir):
    src = tmp_path / "src"
    _make_tree(src)
    s = ser.serialize(src, workdir, "f")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "marker").write_text("mine")
    assert ser.extract_zip(s.path, str(dest)) == str(dest)
    assert [p.name for p in dest.iterdir()] == ["marker"]


def test_previews_are_bounded(workdir):
    cases = {
        "numpy": np.arange(2_000_000, dtype=np.float64).reshape(1000, 2000),
        "pandas": pd.DataFrame(np.ones((2000, 300)), columns=[f"column_{i}" for i in range(300)]),
        "json": {f"key_{i}": "v" * 50 for i in range(5000)},
        "pickle": {i: "v" * 50 for i in range(5000)},
    }
    for kind, obj in cases.items():
        s = ser.serialize(obj, workdir, kind)
        assert s.kind == kind
        assert 0 < len(s.preview) <= 500, kind


@pytest.mark.parametrize("as_path", [False, True])
def test_missing_path_raises_value_error(tmp_path, workdir, as_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(ValueError, match="does not exist") as info:
        ser.serialize(missing if as_path else str(missing), workdir, "x")
    assert "nope.csv" in str(info.value) and "Pass" in str(info.value)
    assert os.listdir(workdir) == []


def test_deserialize_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="Unknown artifact kind"):
        ser.deserialize("parquet", str(tmp_path / "x"))


def test_import_and_serialize_do_not_import_optional_libraries(tmp_path):
    code = f"""
import importlib.util, sys
spec = importlib.util.spec_from_file_location("serializers_probe", {str(MODULE_FILE)!r})
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
loaded = sorted(m for m in ("numpy", "pandas", "PIL") if m in sys.modules)
assert not loaded, f"import loaded {{loaded}}"
class Thing:
    pass
for i, obj in enumerate([{{"a": 1}}, [1, 2], {{1: 2}}, Thing()]):
    module.serialize(obj, {str(tmp_path)!r}, f"o{{i}}")
loaded = sorted(m for m in ("numpy", "pandas", "PIL") if m in sys.modules)
assert not loaded, f"serialize loaded {{loaded}}"
print("clean")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=str(REPO), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def test_numpy_user_without_pandas_gets_no_pandas(tmp_path):
    code = f"""
import importlib.util, sys
import numpy as np
spec = importlib.util.spec_from_file_location("serializers_probe", {str(MODULE_FILE)!r})
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
s = module.serialize(np.arange(3), {str(tmp_path)!r}, "a")
assert s.kind == "numpy"
assert (module.deserialize(s.kind, s.path) == np.arange(3)).all()
assert "pandas" not in sys.modules and "PIL" not in sys.modules
print("clean")
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=str(REPO), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"
