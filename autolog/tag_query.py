"""ClearML's tag queries (Model.query_models' `tags`): tag names combined with "__$and", "__$or", "__$not".

An operator applies to the tags after it until the next operator; a query that starts with an
operator combines its groups with that operator, otherwise with "or" (so ["a", "b"] is a OR b, and
["__$and", "a", "b"] is a AND b). "-tag" and "__$not tag" exclude a tag whatever the groups say.
Examples from ClearML's documentation, as evaluated here:

    ["a", "b", "__$and", "c", "d"]                  a OR b OR (c AND d)
    ["__$and", "__$or", "a", "b", "__$and", "c", "d"]  (a OR b) AND c AND d
    ["__$not", "a", "b", "__$not", "c"]              b AND NOT a AND NOT c
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

_OPERATORS = {"__$and": "and", "__$all": "and", "__$or": "or", "__$any": "or"}


@dataclass
class _Group:
    operator: str
    tags: list[str] = field(default_factory=list)

    def matches(self, have: set[str]) -> bool:
        return all(t in have for t in self.tags) if self.operator == "and" else any(t in have for t in self.tags)


@dataclass(frozen=True)
class TagQuery:
    groups: tuple[_Group, ...]
    combine: str
    exclude: frozenset[str]

    def matches(self, tags: Iterable[str]) -> bool:
        have = set(tags)
        if have & self.exclude:
            return False
        groups = [g for g in self.groups if g.tags]
        if not groups:
            return True
        results = (g.matches(have) for g in groups)
        return all(results) if self.combine == "and" else any(results)


def parse_tag_query(query: Sequence[str]) -> TagQuery:
    """The query `tags` means; a tag that is not a str raises ValueError naming it."""
    if isinstance(query, str):
        query = [query]
    combine = _OPERATORS.get(query[0], "or") if query else "or"
    groups = [_Group("or")]
    exclude: set[str] = set()
    negate = False
    for item in query:
        if not isinstance(item, str):
            raise ValueError(f"tags must be a list of str (tag names and '__$and'/'__$or'/'__$not'), got {item!r}.")
        if item in _OPERATORS:
            groups.append(_Group(_OPERATORS[item]))
        elif item == "__$not":
            negate = True
        elif negate or (item.startswith("-") and len(item) > 1):
            exclude.add(item if negate else item[1:])
            negate = False
        else:
            groups[-1].tags.append(item)
    return TagQuery(tuple(groups), combine, frozenset(exclude))
