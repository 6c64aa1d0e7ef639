"""ClearML's user properties: named values with a description and a type, kept as the parameters of
section "properties" (as ClearML keeps them), so they are read, shown and compared with the others.

The shapes ClearML's set_user_properties takes, each turned into one `UserProperty`:
- keyword arguments: `backbone="great"`, or `size={"value": 5, "description": "px", "type": int}`;
- a dict with a "name": `{"name": "backbone", "value": "great", "description": "network type"}`;
- a dict without one, as ClearML's docstring writes it: `{"backbone": "great", "size": {"value": 5}}`;
- a (name, value) pair, or a list of any of these.
Values are kept as ClearML's server keeps them: as text (str(value); None in a details dict stays
None). A type given as a class is kept by its name ("int"): `get_parameters(cast=True)` casts to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from .parameters import ParameterTable, split_name, type_name

SECTION = "properties"  # ClearML's section of user properties

_SHAPES = ('set_user_properties takes dicts ({"name": ..., "value": ...} or {name: value}), (name, value) pairs, '
           'lists of them, or name=value')


@dataclass(frozen=True)
class UserProperty:
    name: str
    value: str | None
    description: str | None = None
    type: str | None = None

    @property
    def key(self) -> str:
        return f"{SECTION}/{self.name}"


def properties_of(iterables: tuple[Any, ...], keywords: Mapping[str, Any]) -> list[UserProperty]:
    """The properties set_user_properties(*iterables, **keywords) sets, in order (a later one of the
    same name wins when they are stored)."""
    found = [_named(name, value) for name, value in keywords.items()]
    for item in iterables:
        found += _from_item(item)
    return found


def _from_item(item: Any) -> list[UserProperty]:
    if isinstance(item, Mapping):
        if "name" in item and not isinstance(item["name"], Mapping):
            return [_details(item)]
        return [_named(name, value) for name, value in item.items()]
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return [_named(*item)]
    if isinstance(item, (list, tuple)):
        return [found for part in item for found in _from_item(part)]
    raise ValueError(f"{_SHAPES}; got {item!r}.")


def _named(name: Any, value: Any) -> UserProperty:
    if isinstance(value, Mapping) and "value" in value:
        return _details({**value, "name": name})
    return UserProperty(_checked_name(name), str(value))


def _details(details: Mapping[str, Any]) -> UserProperty:
    unknown = sorted(set(details) - {"name", "value", "description", "type", "section"})
    if unknown:
        raise ValueError(f"A user property has a name, value, description and type; {details!r} also has "
                         f"{unknown}. Leave those out.")
    value, description = details.get("value"), details.get("description")
    return UserProperty(_checked_name(details.get("name")), None if value is None else str(value),
                        None if description is None else str(description), type_name(details.get("type")))


def _checked_name(name: Any) -> str:
    if name is None or not str(name).strip():
        raise ValueError(f'A user property needs a "name"; {_SHAPES}.')
    if "/" in str(name):
        raise ValueError(f"A user property's name cannot contain '/': {name!r}.")
    return str(name)


def store(table: ParameterTable, properties: Iterable[UserProperty]) -> None:
    """Set each property in the table: a property set again replaces its value, description and type."""
    for prop in properties:
        table.put(prop.key, prop.value, prop.type)
        if prop.description:
            table.descriptions[prop.key] = prop.description
        else:
            table.descriptions.pop(prop.key, None)


def details(table: ParameterTable, value_only: bool) -> dict[str, Any]:
    """get_user_properties(): {name: {"section", "name", "value"[, "description"][, "type"]}}, or
    {name: value} with value_only."""
    out: dict[str, Any] = {}
    for key in table.values:
        section, name = split_name(key)
        if section != SECTION:
            continue
        value = table.values[key] if isinstance(table.values[key], str) else table.text(key)
        if value_only:
            out[name] = value
            continue
        out[name] = {"section": SECTION, "name": name, "value": value}
        for field, about in (("description", table.descriptions), ("type", table.types)):
            if about.get(key):
                out[name][field] = about[key]
    return out


def keys_of(iterables: tuple[Any, ...]) -> list[str]:
    """The "Section/name" of each parameter delete_user_properties(*iterables) names. As in ClearML
    each argument is a list of keys: a dict with "section" and "name", or a (section, name) pair; a
    key given alone, and a property name alone (section "properties"), are taken too."""
    keys: list[str] = []
    for item in iterables:
        key = _key(item)
        if key is not None:
            keys.append(key)
            continue
        if not isinstance(item, Iterable) or isinstance(item, (str, bytes)):
            raise ValueError(f"delete_user_properties takes lists of keys; got {item!r}.")
        for part in item:
            key = _key(part)
            if key is None:
                raise ValueError(f'A key to delete is a {{"section": ..., "name": ...}} dict, a (section, name) '
                                 f"pair or a property name; got {part!r}.")
            keys.append(key)
    return keys


def _key(item: Any) -> str | None:
    if isinstance(item, Mapping) and item.get("name"):
        return f"{item.get('section') or SECTION}/{item['name']}"
    if isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(p, str) and p for p in item):
        return f"{item[0]}/{item[1]}"
    if isinstance(item, str) and item:
        return f"{SECTION}/{item}"
    return None
