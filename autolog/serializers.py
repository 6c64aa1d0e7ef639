"""Turn an artifact object into a local file, and read it back.

``serialize`` picks a format from the object's type and ``deserialize`` reverses it given the
recorded ``kind``. Files and folders are special-cased; everything else goes through
``_REGISTRY``, so supporting a new type is one entry there. numpy, pandas and PIL are only
looked up in ``sys.modules`` (an object of their types implies the user imported them);
readers import them on demand.
"""
from __future__ import annotations

import errno
import importlib
import json
import logging
import os
import pickle
import re
import reprlib
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, NamedTuple

__all__ = ["Serialized", "serialize", "deserialize", "extract_zip"]

logger = logging.getLogger("autolog")

PREVIEW_LIMIT = 500
# Only these suffixes are kept together with the one before them ("x.csv.gz" -> ".csv.gz");
# otherwise "model.v1.2.pt" would get the extension ".v1.2.pt".
_COMPRESSION_SUFFIXES = {".gz", ".bz2", ".xz", ".zst", ".lz4"}
# Modes PNG stores losslessly; other modes (CMYK, F, I, ...) fall through to pickle.
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA"}


@dataclass(frozen=True)
class Serialized:
    path: str  # the local file written (or the user's own file, for "file")
    kind: str  # "file", "folder", "numpy", "pandas", "image", "json" or "pickle"
    extension: str  # ".npz", ".csv.gz", ".png", ".json", ".pkl", ".zip", or the file's own
    preview: str  # human-readable, at most PREVIEW_LIMIT characters


def _truncate(text: str, limit: int = PREVIEW_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _is_numpy(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    # Subclasses (masked, matrix) would lose data and object arrays need allow_pickle: pickle them.
    return np is not None and type(obj) is np.ndarray and not obj.dtype.hasobject


def _write_numpy(obj: Any, path: str) -> str:
    np = sys.modules["numpy"]
    np.savez_compressed(path, array=obj)
    text = np.array2string(obj, threshold=50, edgeitems=3, max_line_width=100)
    return f"ndarray shape={obj.shape} dtype={obj.dtype}\n{text}"


def _read_numpy(path: str) -> Any:
    with importlib.import_module("numpy").load(path, allow_pickle=False) as npz:
        return npz["array"]


def _is_pandas(obj: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame)


def _write_pandas(obj: Any, path: str) -> str:
    # mtime=0 keeps the bytes reproducible, so equal frames hash equal.
    obj.to_csv(path, compression={"method": "gzip", "mtime": 0})
    columns = ", ".join(map(str, obj.columns[:20])) + (", ..." if obj.shape[1] > 20 else "")
    head = obj.head().to_string(max_cols=10, max_colwidth=30)
    return f"DataFrame shape={obj.shape} columns=[{columns}]\n{head}"


def _read_pandas(path: str) -> Any:
    return importlib.import_module("pandas").read_csv(path, index_col=0, compression="gzip")


def _is_image(obj: Any) -> bool:
    pil = sys.modules.get("PIL.Image")
    return pil is not None and isinstance(obj, pil.Image) and obj.mode in _PNG_MODES


def _write_image(obj: Any, path: str) -> str:
    obj.save(path)  # the format the extension names: .png unless extension_name asked for another
    return f"image {obj.size[0]}x{obj.size[1]}, mode {obj.mode}"


def _read_image(path: str) -> Any:
    image = importlib.import_module("PIL.Image").open(path)
    image.load()  # reads the pixels and lets PIL close the file
    return image


def _same(a: Any, b: Any) -> bool:
    # Stricter than ==: 1 == 1.0 == True and (1,) vs [1] must not pass as a JSON round trip.
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _is_json(obj: Any) -> bool:
    if type(obj) not in (dict, list):  # OrderedDict, defaultdict... keep their type via pickle
        return False
    try:
        return _same(json.loads(json.dumps(obj, allow_nan=False)), obj)
    except (TypeError, ValueError, RecursionError):
        return False


def _write_json(obj: Any, path: str) -> str:
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False)
    Path(path).write_text(text, encoding="utf-8")
    return text


def _read_json(path: str) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = PREVIEW_LIMIT  # bounds the work on huge containers


def _write_pickle(obj: Any, path: str) -> str:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
    return f"{type(obj).__module__}.{type(obj).__qualname__}: {_repr.repr(obj)}"


def _read_pickle(path: str) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)  # runs code from the file: only load artifacts you trust


class _Handler(NamedTuple):
    kind: str
    predicate: Callable[[Any], bool]
    writer: Callable[[Any, str], str]  # writes obj to path, returns its preview
    reader: Callable[[str], Any]
    extension: str


# First matching predicate wins, so pickle (matches anything) stays last.
_REGISTRY: list[_Handler] = [
    _Handler("numpy", _is_numpy, _write_numpy, _read_numpy, ".npz"),
    _Handler("pandas", _is_pandas, _write_pandas, _read_pandas, ".csv.gz"),
    _Handler("image", _is_image, _write_image, _read_image, ".png"),
    _Handler("json", _is_json, _write_json, _read_json, ".json"),
    _Handler("pickle", lambda obj: True, _write_pickle, _read_pickle, ".pkl"),
]


def _file_extension(path: Path) -> str:
    suffixes = path.suffixes
    if len(suffixes) >= 2 and suffixes[-1].lower() in _COMPRESSION_SUFFIXES:
        return "".join(suffixes[-2:])
    return suffixes[-1] if suffixes else ""


def _zip_folder(folder: Path, zip_path: str) -> tuple[int, int]:
    """Zip folder into zip_path; return (file count, total bytes)."""
    root = folder.resolve()
    own_zip = Path(zip_path).resolve()
    count = total = 0
    # strict_timestamps=False: files dated before 1980 are clamped instead of failing.
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as zf:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames.sort()
            here = Path(dirpath)
            for name in list(dirnames):
                if (here / name).is_symlink():
                    # Following directory links risks cycles and duplicated trees.
                    logger.warning("Skipping directory symlink %s in %s", here / name, folder)
                    dirnames.remove(name)
                else:  # an entry of its own, so empty folders survive the round trip
                    zf.write(here / name, (here / name).relative_to(root).as_posix())
            for name in sorted(filenames):
                size = _add_file(zf, here / name, root, own_zip, folder)
                if size is not None:
                    count += 1
                    total += size
    return count, total


def _add_file(zf: zipfile.ZipFile, path: Path, root: Path, own_zip: Path, folder: Path) -> int | None:
    """Add path to zf under its name relative to root; return its size, or None when it was skipped.

    A symlink that leads out of the folder, nowhere, in a loop or to something unreadable is skipped
    with one warning naming it: one bad link must not cost the user the rest of the folder.
    """
    try:
        source = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # a loop: RuntimeError up to 3.12, OSError(ELOOP) from 3.13
        what = "symlink" if path.is_symlink() else "file"  # a file deleted while we walked, say
        logger.warning("Skipping %s %s in %s: %s", what, path, folder, _unfollowable(exc))
        return None
    if not source.is_relative_to(root):
        logger.warning("Skipping symlink %s: it points outside the folder, to %s", path, source)
        return None
    if not source.is_file() or source == own_zip:
        return None  # a socket or fifo (no bytes to store), or the zip being written
    try:
        # Opened before the member is begun (zipfile's order), so a refused open leaves no partial entry.
        zf.write(source, path.relative_to(root).as_posix())
    except PermissionError as exc:
        if not path.is_symlink():
            raise  # the user's own file: failing loudly beats a folder silently missing it
        logger.warning("Skipping symlink %s in %s: its target %s cannot be read (%s)",
                       path, folder, source, exc.strerror)
        return None
    return source.stat().st_size


def _unfollowable(exc: BaseException) -> str:
    """Why resolving a path failed, in words."""
    if isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP:
        return "it is part of a symlink loop"
    if isinstance(exc, FileNotFoundError):
        return "it is broken (its target does not exist)"
    return f"it cannot be followed ({getattr(exc, 'strerror', None) or exc})"


def serialize(obj: Any, workdir: str, basename: str, extension: str | None = None,
              auto_pickle: bool = True) -> Serialized:
    """Write obj under workdir (an existing empty dir the caller owns) as basename + extension.

    An existing file is returned as-is (kind "file", no copy); an existing folder is zipped.
    A str or Path that does not exist raises ValueError: URL strings are the caller's job.
    extension (ClearML's extension_name): ".pkl" pickles any object; an image may take any extension PIL
    writes (".jpg", ".bmp", ...); for other kinds only their own extension is available (another one is
    warned about and the kind's own used, as ClearML does). auto_pickle=False: an object that only
    pickle can store raises ValueError instead.
    """
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj).expanduser()
        if path.is_file():
            size = _human_size(path.stat().st_size)
            preview = _truncate(f"file {path.name!r}, {size}")
            return Serialized(os.path.abspath(path), "file", _file_extension(path), preview)
        if path.is_dir():
            zip_path = os.path.join(workdir, basename + ".zip")
            count, total = _zip_folder(path, zip_path)
            preview = f"folder {path.name!r}, {count} files, {_human_size(total)}"
            return Serialized(zip_path, "folder", ".zip", _truncate(preview))
        reason = "exists but is not a regular file or folder" if path.exists() else "does not exist"
        raise ValueError(f"Artifact path {os.fspath(obj)!r} {reason}. Pass the path of an "
                         "existing file or folder, or pass the object itself (not a string) "
                         "to store its value.")
    handler = _handler_for(obj, _dotted(extension), auto_pickle)
    suffix = _extension_for(handler, _dotted(extension))
    out = os.path.join(workdir, basename + suffix)
    try:
        preview = handler.writer(obj, out)
    except BaseException:
        Path(out).unlink(missing_ok=True)  # a half-written file must not get uploaded
        raise
    return Serialized(out, handler.kind, suffix, _truncate(preview))


def _dotted(extension: str | None) -> str | None:
    if not extension:
        return None
    return extension if extension.startswith(".") else "." + extension


def _handler_for(obj: Any, extension: str | None, auto_pickle: bool) -> _Handler:
    if extension == ".pkl":
        return _REGISTRY[-1]
    handler = next(h for h in _REGISTRY if h.predicate(obj))
    if handler.kind == "pickle" and not auto_pickle:
        raise ValueError(f"A {type(obj).__name__} can only be stored pickled, and auto_pickle=False. Pass "
                         "auto_pickle=True to pickle it, or serialization_function= to store bytes of your own.")
    return handler


def _extension_for(handler: _Handler, extension: str | None) -> str:
    if extension is None or extension == handler.extension:
        return handler.extension
    if handler.kind == "image" and extension.lower() in importlib.import_module("PIL.Image").registered_extensions():
        return extension
    logger.warning("autolog: extension_name %r is not available for %s artifacts: stored as %s.",
                   extension, handler.kind, handler.extension)
    return handler.extension


def deserialize(kind: str, path: str) -> Any:
    """Read back what serialize wrote; "file" and "folder" just return path.

    The caller passes the extracted folder (see extract_zip) for "folder". Round-trip limits:
    - pandas goes through CSV: int/float/bool/str columns and a default RangeIndex come back
      equal, but datetime, categorical, timedelta, nullable and mixed-object columns come back
      as str/object or float; non-string column labels become strings; a named or non-default
      index loses its dtype; empty strings come back as NaN.
    - json values are exact by construction (non-round-tripping values were pickled instead).
    - pickle runs code from the file: only deserialize artifacts you trust.
    """
    if kind in ("file", "folder"):
        return path
    for handler in _REGISTRY:
        if handler.kind == kind:
            return handler.reader(path)
    known = ", ".join(["file", "folder", *(h.kind for h in _REGISTRY)])
    raise ValueError(f"Unknown artifact kind {kind!r}. Use one of: {known}.")


def extract_zip(zip_path: str, dest_dir: str) -> str:
    """Extract a folder zip into dest_dir atomically; return dest_dir.

    If dest_dir exists it is returned untouched (a previous or concurrent extraction won).
    Members with absolute names or '..' raise ValueError before anything is written.
    """
    if os.path.exists(dest_dir):
        return dest_dir
    parent = os.path.dirname(os.path.abspath(dest_dir))
    os.makedirs(parent, exist_ok=True)
    with zipfile.ZipFile(zip_path) as zf:
        for name in zf.namelist():
            posix = name.replace("\\", "/")
            drive = re.match(r"[A-Za-z]:(/|$)", posix)  # "C:/x"; a file named "a:b" is fine
            if posix.startswith("/") or drive or ".." in PurePosixPath(posix).parts:
                raise ValueError(f"Zip member {name!r} would escape {dest_dir!r}. "
                                 "Only extract zips written by serialize().")
        # Beside dest_dir, so the final rename stays on one filesystem and is atomic.
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(dest_dir)}.", suffix=".tmp", dir=parent)
        try:
            zf.extractall(tmp)
            os.rename(tmp, dest_dir)
        except OSError:
            if not os.path.isdir(dest_dir):  # else a concurrent extractor won: theirs is as good
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # a no-op once renamed
    return dest_dir
