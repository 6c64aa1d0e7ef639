"""Records as the API's JSON rows (TaskRow, ModelRow, SnapshotRow, ArtifactRow), secrets taken out.

The SDK already writes URIs through redact_url; the UI passes every URI and free text through it again
(a row written by an older autolog, or pushed from another store, is shown no differently), and hides
values whose name says they are a secret (a "--password" in argv, an "Args/api_key" parameter).
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping


from ..config import redact_url, redact_urls_in
from ..db import schema as s
from ..model_design import design_of, labels_of
from .. import configuration as config
from .. import parameters as params

HIDDEN = "***"

# The columns of a TaskRow, as one select list (the task list and every page that shows tasks).
TASK_COLUMNS = (
    s.tasks.c.id, s.tasks.c.project, s.tasks.c.name, s.tasks.c.status, s.tasks.c.created, s.tasks.c.ended,
    s.tasks.c.tags, s.tasks.c.run_info["user"].as_string().label("user"),
    s.tasks.c.run_info["host"].as_string().label("host"),
)


def task_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """TaskRow from a row selected with TASK_COLUMNS (or any row holding those names)."""
    ended = row["ended"]
    return {
        "id": row["id"], "project": row["project"], "name": row["name"], "status": row["status"],
        "created": row["created"], "ended": ended, "duration": None if ended is None else ended - row["created"],
        "tags": list(row["tags"] or []), "user": row["user"], "host": row["host"],
    }


def task_detail_row(record: Any) -> dict[str, Any]:
    """TaskRow plus status_message, output_uri, task_type, comment, from a TaskRecord."""
    info = record.run_info or {}
    row = task_row({**{k: getattr(record, k) for k in ("id", "project", "name", "status", "created", "ended", "tags")},
                    "user": _text(info.get("user")), "host": _text(info.get("host"))})
    row.update(status_message=_redacted_text(record.status_message), output_uri=_uri(record.output_uri),
               task_type=record.task_type, comment=record.comment)
    return row


_RUN_INFO_KEYS = ("argv", "script", "cwd", "git_commit", "git_branch", "python", "host", "user", "pid", "packages")


def run_info_view(info: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run_info fields the page shows (None where not recorded), argv with secrets hidden."""
    info = info or {}
    view = {key: info.get(key) for key in _RUN_INFO_KEYS}
    view["argv"] = redacted_argv(info.get("argv") or [])
    view["packages"] = dict(info.get("packages") or {})
    for key in ("script", "cwd"):
        view[key] = _redacted_text(view[key])
    return view


def parameters_view(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """{"Section/name": value}; a value whose name says it is a secret is hidden."""
    flat = params.flat(stored)
    return {name: HIDDEN if secret_name(name.split("/", 1)[-1]) else _redacted_value(value)
            for name, value in flat.items()}


def configuration_view(stored: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """{name: {"type", "text"}}: each configuration object as the text ClearML shows."""
    return {name: {"type": str(item.get("type") or ""), "text": redact_urls_in(config.as_text(item))}
            for name, item in (stored or {}).items() if isinstance(item, Mapping)}


def model_row(row: Any) -> dict[str, Any]:
    """ModelRow from a ModelRecord (or a row of the models table)."""
    get = row.__getitem__ if isinstance(row, Mapping) else lambda k: getattr(row, k)
    meta = get("meta") or {}
    return {
        "id": get("id"), "name": get("name"), "project": get("project"), "framework": get("framework"),
        "task_id": get("task_id"), "origin": get("origin"), "tags": list(get("tags") or []),
        "created": get("created"), "updated": get("updated"), "labels": labels_of(meta),
        "config_text": redact_urls_in(design_of(meta)),
    }


DOWNLOADABLE = ("stored", "local")


def downloadable(status: str, digest: str | None) -> bool:
    """Bytes the UI can send: stored (or recorded in place) with a digest to verify them against."""
    return status in DOWNLOADABLE and bool(digest)


def snapshot_row(row: Any) -> dict[str, Any]:
    """SnapshotRow from a SnapshotRecord (or a row of the snapshots table). "digest" is the content's identity
    ("<algorithm>:<hex>"); "sha256" the plain sha256, null until computed (`autolog model sha256`)."""
    get = row.__getitem__ if isinstance(row, Mapping) else lambda k: getattr(row, k)
    can = downloadable(get("status"), get("digest"))
    return {
        "id": get("id"), "model_id": get("model_id"), "seq": get("seq"), "iteration": get("iteration"),
        "size": get("size"), "digest": get("digest"), "sha256": get("sha256"), "status": get("status"),
        "reason": _redacted_text(get("reason")), "uri": _uri(get("uri")), "created": get("created"),
        "stored_at": get("stored_at"), "download": f"/api/snapshots/{get('id')}/download" if can else None,
    }


def artifact_row(record: Any) -> dict[str, Any]:
    """ArtifactRow from an ArtifactRecord; "download" and "preview" are the API's links."""
    return {
        "id": record.id, "name": record.name, "kind": record.kind, "size": record.size, "sha256": record.sha256,
        "uri": _uri(record.uri), "preview_text": redact_urls_in(record.preview or ""), "created": record.created,
        "download": f"/api/artifacts/{record.id}/download", "preview": f"/api/artifacts/{record.id}/preview",
    }


# -- secrets ---------------------------------------------------------------------------------------
_WORDS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_SECRET_WORDS = {"password", "passwd", "pwd", "passphrase", "secret", "secrets", "token", "apikey", "credential",
                 "credentials", "auth", "authorization", "cookie"}
_SECRET_PAIRS = {"apikey", "accesskey", "privatekey", "secretkey", "sessionkey", "signingkey", "clientsecret"}


def secret_name(name: str) -> bool:
    """Whether a parameter or option name says its value is a secret: "password", "hf_token",
    "AWS_SECRET_ACCESS_KEY", "apiKey"; not "max_tokens" or "tokenizer" (whole words only)."""
    words = [w.lower() for w in _WORDS.findall(str(name))]
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(a + b in _SECRET_PAIRS for a, b in zip(words, words[1:]))


def redacted_argv(argv: Iterable[Any]) -> list[str]:
    """argv with URLs redacted and the value of a secret-named option hidden (--token=x, --token x)."""
    out: list[str] = []
    hide_next = False
    for item in argv:
        text = str(item)
        if hide_next and not text.startswith("-"):
            out.append(HIDDEN)
            hide_next = False
            continue
        hide_next = False
        name, eq, _value = text.partition("=")
        if text.startswith("-") and secret_name(name.lstrip("-")):
            if eq:
                out.append(f"{name}={HIDDEN}")
                continue
            hide_next = True
        out.append(redact_urls_in(text))
    return out


def _redacted_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_urls_in(value)
    if isinstance(value, list):
        return [_redacted_value(v) for v in value]
    if isinstance(value, dict):
        return {k: HIDDEN if secret_name(k) else _redacted_value(v) for k, v in value.items()}
    return value


def _redacted_text(text: Any) -> Any:
    return redact_urls_in(text) if isinstance(text, str) else text


def _uri(uri: str | None) -> str | None:
    return redact_url(uri) if uri else uri


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)
