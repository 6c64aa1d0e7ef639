"""Wildcard artifacts: upload_artifact("data_samples/*.jpg") stores one zip of the matching files.

As in ClearML: the zip is named after the folder the pattern starts in ("data_samples.zip"), holds the
files under their paths relative to that folder, and a pattern whose wildcards are all in its last part
matches at any depth below the folder ("data_samples/*.jpg" also takes "data_samples/cats/1.jpg",
ClearML's Path.rglob). A pattern with wildcards in an earlier part ("runs/*/metrics.csv",
"data/**/*.png") is a glob (with `**` for any number of folders) from the last folder without
wildcards. A pattern that matches no file raises ValueError naming it.
"""
from __future__ import annotations

import glob
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .serializers import PREVIEW_LIMIT, Serialized, _add_file, _human_size, _truncate

__all__ = ["Wildcard", "is_wildcard", "zip_wildcard"]

_WILDCARD_CHARS = frozenset("*?[")


def is_wildcard(text: str) -> bool:
    """Whether text is a glob pattern (ClearML looks for '*' and '?'; '[' is a glob character too)."""
    return any(c in _WILDCARD_CHARS for c in text)


@dataclass(frozen=True)
class Wildcard:
    """A pattern given as an artifact: the folder it starts in, and the files it matches (sorted)."""

    pattern: str
    folder: Path
    files: tuple[Path, ...]

    @classmethod
    def expand(cls, pattern: str) -> "Wildcard":
        """The files pattern matches now; ValueError naming the pattern when there is none."""
        full = os.path.abspath(os.path.expanduser(pattern))
        parts = Path(full).parts
        first = next(i for i, part in enumerate(parts) if is_wildcard(part))
        folder = Path(*parts[:first])
        if not folder.is_dir():
            raise ValueError(f"upload_artifact got the wildcard {pattern!r}, but its folder {str(folder)!r} does "
                             "not exist. Pass a pattern inside an existing folder, e.g. 'data_samples/*.jpg'.")
        if first == len(parts) - 1:  # wildcards only in the last part: at any depth, as ClearML does
            found = (p for p in folder.rglob(parts[-1]))
        else:
            found = (Path(p) for p in glob.glob(glob.escape(str(folder)) + os.sep + os.path.join(*parts[first:]),
                                                recursive=True))
        files = tuple(sorted(p for p in found if p.is_file()))
        if not files:
            raise ValueError(f"upload_artifact got the wildcard {pattern!r}, which matches no file in "
                             f"{str(folder)!r}. Check the pattern, or pass a file or folder path.")
        return cls(pattern=pattern, folder=folder, files=files)


def zip_wildcard(wildcard: Wildcard, workdir: str) -> Serialized:
    """Zip the matched files into workdir as <folder name>.zip (kind "folder": extracted when fetched)."""
    zip_path = os.path.join(workdir, (wildcard.folder.name or "root") + ".zip")
    root = wildcard.folder.resolve()
    lines = [f"Archive content {wildcard.pattern}:"]
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as zf:
        for path in wildcard.files:
            # _add_file skips (with a warning) a symlink leading out of the folder or nowhere.
            size = _add_file(zf, root / path.relative_to(wildcard.folder), root, Path(zip_path).resolve(),
                             wildcard.folder)
            if size is not None and sum(map(len, lines)) < PREVIEW_LIMIT:
                lines.append(f"{path.relative_to(wildcard.folder).as_posix()} - {_human_size(size)}")
    return Serialized(zip_path, "folder", ".zip", _truncate("\n".join(lines)))
