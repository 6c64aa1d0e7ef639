"""A task's configuration objects (ClearML's CONFIGURATION tab): named dicts or texts.

The `tasks.configuration` column holds {name: {"type": ..., "value": ..., "description": ...}}: a
dict or list configuration keeps its JSON value (type "dictionary"), a configuration file its text
(type: the file's suffix, "yaml" say, or "file"; ClearML's config_type), and
`set_configuration_object(config_text=...)` its text with the type given. ClearML renders a dict as
HOCON text; here it is rendered as indented JSON, which every HOCON parser (ClearML's included) reads.

A configuration must be JSON: a value that is not (a function, a tensor, an optimizer) is refused
with the key path to it, since it could not be read back as it was.
"""
from __future__ import annotations

import json
import types
from typing import Any, Mapping

DICTIONARY = "dictionary"  # ClearML's config_type of a dict or list configuration


def checked(value: Any, argument: str) -> Any:
    """value as JSON (tuples become lists, numpy numbers plain numbers); TypeError naming the path of
    the first part that is not JSON, e.g. "configuration['optimizer']['fn'] is a function"."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [checked(v, f"{argument}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, int, float, bool))):
                raise TypeError(f"{argument} has the key {key!r} ({_kind(key)}): JSON keys are strings or numbers. "
                                "Use str keys.")
            out[key if isinstance(key, str) else json.dumps(key)] = checked(item, f"{argument}[{key!r}]")
        return out
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return checked(value.tolist(), argument)
    raise TypeError(
        f"{argument} is {_kind(value)}: not JSON-serializable. A configuration holds dicts, lists, strings, "
        "numbers, booleans and None: store str() of the value, or leave it out.")


def _kind(value: Any) -> str:
    if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
        return "a function"
    if isinstance(value, type):
        return f"a class ({value.__qualname__})"
    kind = type(value)
    module = "" if kind.__module__ == "builtins" else kind.__module__ + "."
    return f"a {module}{kind.__qualname__}"


def entry(value: Any, config_type: str | None, description: str | None) -> dict[str, Any]:
    """One configuration as the column stores it."""
    return {"type": config_type, "value": value, "description": str(description) if description else None}


def as_text(item: Mapping[str, Any]) -> str:
    """The configuration's text: a file's text as read, a dict rendered as JSON."""
    value = item.get("value")
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def as_dict(item: Mapping[str, Any], name: str) -> Any:
    """A dict configuration's value; a text parsed as JSON, else as YAML (when PyYAML is installed).
    None for an empty text; ValueError for a text that is neither."""
    value = item.get("value")
    if not isinstance(value, str):
        return json.loads(json.dumps(value))  # a copy the caller may change
    if not value.strip():
        return None
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        import yaml
    except ImportError:
        yaml = None
    if yaml is not None:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = None
        if isinstance(parsed, (dict, list)):
            return parsed
    hint = "" if yaml is not None else " (install PyYAML to read YAML)"
    raise ValueError(f"Configuration {name!r} is text that parses neither as JSON nor as YAML{hint}. "
                     f"Read it with get_configuration_object({name!r}) and parse it yourself.")


def summary_lines(stored: Mapping[str, Any] | None, first: int = 5) -> list[str]:
    """`autolog task show`: each configuration's name, type and first lines."""
    stored = stored or {}
    lines = ["", f"configuration ({len(stored)})"]
    for name, item in stored.items():
        kind = item.get("type") or ("text" if isinstance(item.get("value"), str) else DICTIONARY)
        described = f" - {item['description']}" if item.get("description") else ""
        lines.append(f"  {name} ({kind}){described}")
        text = as_text(item).splitlines()
        lines += [f"      {line}" for line in text[:first]]
        if len(text) > first:
            lines.append(f"      ... ({len(text) - first} more lines)")
    return lines
