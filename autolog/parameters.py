"""A task's parameters as ClearML shapes them: "Section/name" keys, values read back as text or cast.

The `tasks.parameters` column holds {section: {name: value}} with JSON values as given (numbers stay
numbers, lists stay lists), and beside the sections, when any parameter has one, {"/descriptions":
{"Section/name": text}} and {"/types": {"Section/name": type}} (ClearML's parameter type: "tuple" for
a tuple, which JSON would turn into a list; a user property's or set_parameter's value_type). A section
name never contains "/" (a "Section/name" key is split at its first "/"), so these keys cannot be taken
by a section. A name may contain "/": a nested dict connected with `task.connect()` is flattened to
"outer/inner" names, as ClearML does.

ClearML's server keeps every parameter as a string; `get_parameters()` returns those strings and
`get_parameters(cast=True)` the original types. Here `as_text` gives ClearML's string (str(value):
"(1, 2)", "['a', 'b']"; JSON when a list or dict holds None) and `cast_stored` the value as set, so
both read back as ClearML returns them (a value that is not JSON, a `pathlib.Path` say, is stored as
str(value); ClearML would drop it with a warning).
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Mapping

DEFAULT_SECTION = "General"  # ClearML's section for a name without one, and for connect(dict)
ARGS_SECTION = "Args"  # argparse arguments
DESCRIPTIONS = "/descriptions"  # {"Section/name": description}, beside the sections
TYPES = "/types"  # {"Section/name": ClearML's type name}, beside the sections
TUPLE = "tuple"  # the type of a tuple value, stored as a JSON list


def split_name(name: str) -> tuple[str, str]:
    """("Section", "name") of "Section/name"; a name without "/" is in the General section."""
    name = str(name)
    if "/" not in name:
        return DEFAULT_SECTION, name
    section, key = name.split("/", 1)
    return section, key


def full_name(name: str, prefix: str | None = None) -> str:
    """name under section `prefix` (ClearML's __parameters_prefix), else "Section/name" as given."""
    if prefix:
        return f"{str(prefix).strip('/')}/{name}"
    section, key = split_name(name)
    return f"{section}/{key}"


def parameter_value(value: Any) -> Any:
    """value as the JSON the column stores: tuples become lists, numpy numbers and arrays plain numbers
    and lists, an Enum member its name (as ClearML), anything else that is not JSON str(value)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [parameter_value(v) for v in value]
    if isinstance(value, Mapping):
        return {json_key(k): parameter_value(v) for k, v in value.items()}
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return parameter_value(value.tolist())
    return str(value)


def json_key(key: Any) -> str:
    """A dict key as JSON writes it (1 -> "1", True -> "true", None -> "null")."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)
    return str(key)


def as_text(value: Any, value_type: str | None = None) -> str:
    """ClearML's string for a parameter value: None is "", the rest str(value) ("(1, 2)" for a value of
    type "tuple"), except a list or dict holding None, which is JSON (ClearML's rule, so that it reads
    back as null rather than the text "None")."""
    if value is None:
        return ""
    if value_type == TUPLE and isinstance(value, list):
        value = tuple(value)
    text = str(value)
    if isinstance(value, (list, tuple, dict)) and "None" in re.split(r"[ ,\[\]{}()]", text):
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            pass
    return text


def cast_stored(value: Any, value_type: str | None) -> Any:
    """A stored value as get_parameters(cast=True) returns it: a tuple's list as a tuple, a value with
    another recorded type cast to it (a user property's "5" of type "int" is 5), else as stored."""
    if value_type == TUPLE:
        return tuple(value) if isinstance(value, list) else value
    return cast_to(value, value_type) if value_type else value


def type_name(value_type: Any) -> str | None:
    """The name ClearML records for a type given as a type or a string (int -> "int")."""
    if value_type is None or value_type == "":
        return None
    return value_type if isinstance(value_type, str) else getattr(value_type, "__name__", str(value_type))


def cast_to(value: Any, value_type: Any) -> Any:
    """value as `value_type` (a type or its name: int, float, str, bool, list, tuple, dict), as
    ClearML's get_parameters(cast=True) returns it; value unchanged when it does not convert."""
    if value_type is None:
        return value
    name = value_type if isinstance(value_type, str) else getattr(value_type, "__name__", str(value_type))
    name = name.lower().strip().split("/")[0]
    text = as_text(value)
    try:
        if name == "bool":
            return _bool(text)
        if name in ("int", "float", "str"):
            return {"int": int, "float": float, "str": str}[name](text)
        if name in ("list", "tuple", "dict"):
            parsed = _literal(text)
            wanted = dict if name == "dict" else (list, tuple)
            return parsed if isinstance(parsed, wanted) else value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return value
    return value


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return ast.literal_eval(text.strip())


# -- the stored column ------------------------------------------------------------------------
def flat(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """{"Section/name": value} of the column (a rows' value that is not a section stays at the root,
    as ClearML's legacy parameters do)."""
    out: dict[str, Any] = {}
    for section, entries in (stored or {}).items():
        if section.startswith("/"):  # descriptions, types: about the parameters, not parameters
            continue
        if isinstance(entries, Mapping):
            out.update((f"{section}/{key}", value) for key, value in entries.items())
        else:
            out[section] = entries
    return out


def descriptions_of(stored: Mapping[str, Any] | None) -> dict[str, str]:
    return dict((stored or {}).get(DESCRIPTIONS) or {})


def types_of(stored: Mapping[str, Any] | None) -> dict[str, str]:
    return dict((stored or {}).get(TYPES) or {})


def to_stored(values: Mapping[str, Any], descriptions: Mapping[str, str],
              types: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The column for {"Section/name": value}, their descriptions and types (only those of names kept)."""
    stored: dict[str, Any] = {}
    for name, value in values.items():
        section, key = split_name(name)
        stored.setdefault(section, {})[key] = value
    for key, about in ((DESCRIPTIONS, descriptions), (TYPES, types or {})):
        kept = {name: text for name, text in about.items() if text and name in values}
        if kept:
            stored[key] = kept
    return stored


@dataclass
class ParameterTable:
    """The column as {"Section/name": ...} maps, to change in place and store back with `stored()`."""

    values: dict[str, Any] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, stored: Mapping[str, Any] | None) -> "ParameterTable":
        return cls(flat(stored), descriptions_of(stored), types_of(stored))

    def stored(self) -> dict[str, Any]:
        return to_stored(self.values, self.descriptions, self.types)

    def put(self, name: str, value: Any, value_type: str | None = None) -> None:
        """Set one value (as the column stores it) with its type: a tuple's is "tuple", and a value set
        without a type drops the one an earlier value had."""
        self.values[name] = parameter_value(value)
        value_type = TUPLE if isinstance(value, tuple) else value_type
        if value_type:
            self.types[name] = value_type
        else:
            self.types.pop(name, None)

    def text(self, name: str) -> str:
        return as_text(self.values[name], self.types.get(name))

    def cast(self, name: str) -> Any:
        return cast_stored(self.values[name], self.types.get(name))


def flatten(dictionary: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """ClearML's flatten_dictionary: nested dicts become "outer/inner" names; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in dictionary.items():
        name = prefix + str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "/"))
        else:
            out[name] = value
    return out


def nest(flat_values: Mapping[str, Any]) -> dict[str, Any]:
    """{"a/b/c": v} -> {"a": {"b": {"c": v}}} (ClearML's get_parameters_as_dict). A name that is both a
    value and a prefix of others ("a" and "a/b") keeps the longer names, as ClearML does."""
    nested: dict[str, Any] = {}
    for name in sorted(flat_values, key=lambda n: n.count("/")):
        *parents, leaf = name.split("/")
        node = nested
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if not isinstance(node.get(leaf), dict):
            node[leaf] = flat_values[name]
    return nested


def merged_arguments(parses: Iterable[tuple[Mapping[str, Any], Mapping[str, str]]],
                     selection: bool | Mapping[str, bool]) -> tuple[dict[str, Any], dict[str, str]]:
    """The "Args/..." values and descriptions of argparse parses (later parses win), keeping the
    arguments that auto_connect_arg_parser selects: a dict {name: False} leaves those out, and its
    "*" key sets the default for the names it does not list (ClearML's rule)."""
    values: dict[str, Any] = {}
    descriptions: dict[str, str] = {}
    for parsed, helps in parses:
        values.update(parsed)
        descriptions.update(helps)
    if isinstance(selection, Mapping):
        default = bool(selection.get("*", True))
        values = {k: v for k, v in values.items() if bool(selection.get(k, default))}
    return ({f"{ARGS_SECTION}/{k}": v for k, v in values.items()},
            {f"{ARGS_SECTION}/{k}": d for k, d in descriptions.items() if k in values})


def summary_lines(stored: Mapping[str, Any] | None, width: int = 100) -> list[str]:
    """`autolog task show`: one "Section/name = value" line per parameter, sorted."""
    table = ParameterTable.of(stored)
    lines = ["", f"parameters ({len(table.values)})"]
    for name in sorted(table.values):
        line = f"  {name} = {_one_line(table.text(name))}"
        if table.descriptions.get(name):
            line += f"   # {_one_line(table.descriptions[name])}"
        lines.append(line if len(line) <= width else line[: width - 3] + "...")
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())
