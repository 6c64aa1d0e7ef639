r"""Where things go inside an output_uri. Every id -> key mapping is one of these functions.

    <output_uri>/<project>/<task name>.<task id>/models/<model name>.<model id[:8]>/<seq:04d>/<file or folder>
    <output_uri>/<project>/<task name>.<task id>/artifacts/<artifact name>.<upload id[:8]>/<file>
    <output_uri>/<project>/<task name>.<task id>/reports/<title>/<series>/<iteration>.<upload id[:12]>.<ext>

Each component is made safe (letters, digits, '.', '_', '-'; no leading dot; bounded length), so a
name like '../../x' or one with '/', NUL or emoji stays inside its folder. Uniqueness never relies on
the cleaned name alone: models carry their id, each artifact upload its own id.

File names that are not valid UTF-8 (on Linux, b"mod\xe8le.pt", which Python holds as 'mod\udce8le.pt')
become text through display_path, everywhere they are written down: database rows (the store applies
it to every value it writes and compares), snapshot keys and the names of files inside a snapshot.
Files are always opened by their real path; real_path finds it again from the escaped text.
"""
from __future__ import annotations

import os
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_COMPONENT = 80
_SURROGATE = re.compile("[\ud800-\udfff]")
# What display_path writes: \xNN for an undecodable byte (always >= 0x80), \uDXXX for another lone surrogate.
_ESCAPE = re.compile(r"\\x([89a-f][0-9a-f])|\\u(d[89a-f][0-9a-f]{2})")


def display_path(path: str | bytes | os.PathLike) -> str:
    r"""path as valid UTF-8 text: each byte that is not UTF-8 (a lone surrogate in Python's str) becomes a
    visible backslash escape, as os.fsencode(path).decode("utf-8", "backslashreplace") writes it
    ('mod\udce8le.pt' -> 'mod\xe8le.pt'). Valid text is returned unchanged (so this is idempotent)."""
    if not isinstance(path, str):
        path = os.fsdecode(path)
    if path.isascii() or not _SURROGATE.search(path):
        return path
    return _SURROGATE.sub(_escape_surrogate, path)


def _escape_surrogate(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def has_undecodable(text: str) -> bool:
    """Whether text holds lone surrogates (bytes of a file name that are not UTF-8): display_path changes it."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def real_path(text: str) -> str:
    """The file-system path that display_path turned into text: text itself when it names an existing
    file (or has no escape), else text with its escapes turned back into the undecodable bytes, when
    that names an existing file. For reading files whose path was read back from a database row."""
    if "\\" not in text or os.path.lexists(text):
        return text
    raw = _ESCAPE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)) if m.group(1) else chr(int(m.group(2), 16)), text)
    return raw if raw != text and os.path.lexists(raw) else text


def folders_above(path: str) -> list[str]:
    """Each folder path is inside, innermost first, up to the root ('/a/b/c.pt' -> ['/a/b', '/a', '/'];
    a relative 'b/c.pt' -> ['b']). Names are not resolved: a caller wanting the folders of the file a
    symlink leads to passes os.path.realpath(path)."""
    folders = []
    folder = os.path.dirname(path)
    while folder:
        folders.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return folders


def within(path: str, folder: str) -> bool:
    """Whether path is folder or inside it, by name (a trailing separator on either is no matter)."""
    folder = folder.rstrip(os.sep) or os.sep
    return path.rstrip(os.sep) == folder or path.startswith(os.path.join(folder, ""))


def safe_component(name: str) -> str:
    # display_path first: an undecodable byte shows as "_xe8", not as a bare "_" (keys are always UTF-8).
    cleaned = _UNSAFE.sub("_", display_path(name)).lstrip(".")[:MAX_COMPONENT]
    return cleaned or "_"


def task_prefix(project: str, task_name: str, task_id: str) -> str:
    return f"{safe_component(project)}/{safe_component(task_name)}.{task_id}"


def snapshot_key(task_key: str, model_name: str, model_id: str, seq: int) -> str:
    return f"{task_key}/models/{safe_component(model_name)}.{model_id[:8]}/{seq:04d}"


def artifact_key(task_key: str, name: str, upload_id: str) -> str:
    return f"{task_key}/artifacts/{safe_component(name)}.{upload_id[:8]}"


def report_key(task_key: str, title: str, series: str, iteration: int | None, upload_id: str, extension: str) -> str:
    """An image Logger uploads (report_image, report_matplotlib_figure): one object per report."""
    name = f"{iteration:06d}." if iteration is not None else ""
    return f"{task_key}/reports/{safe_component(title)}/{safe_component(series)}/{name}{upload_id[:12]}{extension}"


def join(root: str, key: str) -> str:
    return f"{root.rstrip('/')}/{key}"
