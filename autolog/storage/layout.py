"""Where things go inside an output_uri. Every id -> key mapping is one of these functions.

    <output_uri>/<project>/<task name>.<task id>/models/<model name>.<model id[:8]>/<seq:04d>/<file or folder>
    <output_uri>/<project>/<task name>.<task id>/artifacts/<artifact name>.<upload id[:8]>/<file>

Each component is made safe (letters, digits, '.', '_', '-'; no leading dot; bounded length), so a
name like '../../x' or one with '/', NUL or emoji stays inside its folder. Uniqueness never relies on
the cleaned name alone: models carry their id, each artifact upload its own id.
"""
from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_COMPONENT = 80


def safe_component(name: str) -> str:
    cleaned = _UNSAFE.sub("_", name).lstrip(".")[:MAX_COMPONENT]
    return cleaned or "_"


def task_prefix(project: str, task_name: str, task_id: str) -> str:
    return f"{safe_component(project)}/{safe_component(task_name)}.{task_id}"


def snapshot_key(task_key: str, model_name: str, model_id: str, seq: int) -> str:
    return f"{task_key}/models/{safe_component(model_name)}.{model_id[:8]}/{seq:04d}"


def artifact_key(task_key: str, name: str, upload_id: str) -> str:
    return f"{task_key}/artifacts/{safe_component(name)}.{upload_id[:8]}"


def join(root: str, key: str) -> str:
    return f"{root.rstrip('/')}/{key}"
