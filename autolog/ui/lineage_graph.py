"""The lineage graph around a task or a model: what it came from (upstream) and what came of it
(downstream), as nodes and edges for the page to draw.

Edges: a task -produced-> each of its models; a model -loaded-> each task that loaded one of its
snapshots (by path or by content: a copy of a file loaded from elsewhere is a row of model_loads like
any other). Upstream follows edges backwards from the root, downstream forwards; siblings (other tasks
that loaded the same model as an upstream task) are not part of a node's lineage and are not walked.

The walk is breadth first, one query per direction and two levels for the whole frontier (indexed
lookups: loads by task, models by task or id), so a graph of N levels costs about N queries whatever its
width; node details are read once at the end.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..db import schema as s
from .http import UIError
from .queries import require

DEFAULT_DEPTH, MAX_DEPTH = 6, 1000
DEFAULT_NODES, MAX_NODES = 500, 5000


@dataclass
class _Graph:
    max_nodes: int
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)  # node id -> (kind, row id)
    produced: set[tuple[str, str]] = field(default_factory=set)  # (task id, model id)
    loaded: dict[tuple[str, str], set[int]] = field(default_factory=dict)  # (model id, task id) -> seqs
    truncated: bool = False

    def add(self, kind: str, ident: str) -> bool:
        """Add a node; False when it was there already or the graph is full (then it is truncated)."""
        key = f"{kind}:{ident}"
        if key in self.nodes:
            return False
        if len(self.nodes) >= self.max_nodes:
            self.truncated = True
            return False
        self.nodes[key] = (kind, ident)
        return True

    def has(self, kind: str, ident: str) -> bool:
        return f"{kind}:{ident}" in self.nodes


def parse_request(query: dict[str, str]) -> tuple[str, str, int, int]:
    """(root kind, root id, depth, max_nodes) from ?task= or ?model=, &depth=, &max_nodes=."""
    given = [(kind, query[kind]) for kind in ("task", "model") if query.get(kind)]
    if len(given) != 1:
        raise UIError(400, "Give exactly one of task=ID or model=ID.")
    depth = _bounded(query, "depth", DEFAULT_DEPTH, MAX_DEPTH)
    nodes = _bounded(query, "max_nodes", DEFAULT_NODES, MAX_NODES)
    return given[0][0], given[0][1], depth, nodes


def _bounded(query: dict[str, str], name: str, default: int, most: int) -> int:
    text = query.get(name) or str(default)
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise UIError(400, f"{name}={text!r} must be a whole number from 1 to {most}.")
    return value


def lineage(conn: Connection, kind: str, ident: str, depth: int, max_nodes: int) -> dict[str, Any]:
    """{"root", "nodes", "edges", "truncated"} around the task or model (see the module's docstring)."""
    require(conn, kind, ident)
    graph = _Graph(max_nodes)
    graph.add(kind, ident)
    for upstream in (True, False):
        _walk(conn, graph, kind, ident, upstream, depth)
    return {"root": f"{kind}:{ident}", "nodes": _nodes(conn, graph), "edges": _edges(conn, graph),
            "truncated": graph.truncated}


Hop = tuple[str, str, str, str, str, "int | None"]  # (kind, id reached, edge, task id, model id, seq)


def _walk(conn: Connection, graph: _Graph, kind: str, ident: str, upstream: bool, depth: int) -> None:
    """One direction, breadth first. From tasks each query takes two steps at once (task -> model -> task,
    a join through model_loads and models), so a chain of N nodes costs about N / 2 queries."""
    tasks, level = {ident}, 0
    if kind == "model":  # one step to the tasks first: the model's producer, or the tasks that loaded it
        tasks, level = _keep(graph, _from_models(conn, [ident], upstream), depth >= 1), 1
    while tasks:
        first, second = _from_tasks(conn, sorted(tasks), upstream)
        if level >= depth:  # nothing more may be added: only tell whether there was more
            graph.truncated = graph.truncated or any(not graph.has(k, i) for k, i, *_ in first)
            return
        _keep(graph, first, True)
        tasks, level = _keep(graph, second, level + 2 <= depth), level + 2


def _keep(graph: _Graph, hops: list[Hop], allowed: bool) -> set[str]:
    """Add the nodes hops reach (when allowed by the depth, else mark the graph truncated if there
    were new ones); the ids of the tasks newly added."""
    if not allowed:
        graph.truncated = graph.truncated or any(not graph.has(k, i) for k, i, *_ in hops)
        return set()
    return {ident for kind, ident in _record(graph, hops) if kind == "task"}


def _from_models(conn: Connection, models: list[str], upstream: bool) -> list[Hop]:
    """Upstream: the tasks that produced these models; downstream: the tasks that loaded them."""
    m, loads, snaps = s.models.c, s.model_loads.c, s.snapshots.c
    if upstream:
        query = sa.select(m.task_id, m.id).where(m.id.in_(models), m.task_id.is_not(None), m.origin != "imported")
        return [("task", task, "produced", task, model, None) for task, model in conn.execute(query)]
    query = (sa.select(loads.task_id, loads.model_id, snaps.seq)
             .join_from(s.model_loads, s.snapshots, snaps.id == loads.snapshot_id).where(loads.model_id.in_(models)))
    return [("task", task, "loaded", task, model, seq) for task, model, seq in conn.execute(query)]


def _from_tasks(conn: Connection, tasks: list[str], upstream: bool) -> tuple[list[Hop], list[Hop]]:
    """Two steps from these tasks: (the models, the tasks beyond them). Upstream: the models they
    loaded and the tasks that produced those; downstream: the models they produced and the tasks that
    loaded those."""
    m, loads, snaps = s.models.c, s.model_loads.c, s.snapshots.c
    first: list[Hop] = []
    second: list[Hop] = []
    if upstream:
        query = (sa.select(loads.task_id, loads.model_id, snaps.seq, m.task_id.label("producer"), m.origin)
                 .join_from(s.model_loads, s.snapshots, snaps.id == loads.snapshot_id)
                 .join(s.models, m.id == loads.model_id).where(loads.task_id.in_(tasks)))
        for task, model, seq, producer, origin in conn.execute(query):
            first.append(("model", model, "loaded", task, model, seq))
            if producer is not None and origin != "imported":
                second.append(("task", producer, "produced", producer, model, None))
        return first, second
    query = (sa.select(m.task_id, m.id, loads.task_id.label("loader"), snaps.seq)
             .outerjoin(s.model_loads, loads.model_id == m.id).outerjoin(s.snapshots, snaps.id == loads.snapshot_id)
             .where(m.task_id.in_(tasks), m.origin != "imported"))
    for task, model, loader, seq in conn.execute(query):
        first.append(("model", model, "produced", task, model, None))
        if loader is not None:
            second.append(("task", loader, "loaded", loader, model, seq))
    return first, second


def _record(graph: _Graph, found: list[Hop]) -> set[tuple[str, str]]:
    """Add the nodes and edges of these hops (no edge to a node the full graph left out); the nodes new."""
    nxt: set[tuple[str, str]] = set()
    for kind, ident, edge, task, model, seq in sorted(found, key=lambda f: (f[0], f[1], f[3], f[4], f[5] or 0)):
        if graph.add(kind, ident):
            nxt.add((kind, ident))
        if not (graph.has("task", task) and graph.has("model", model)):
            continue  # the graph was full: no edge to a node left out
        if edge == "produced":
            graph.produced.add((task, model))
        else:
            graph.loaded.setdefault((model, task), set()).add(seq)
    return nxt


def _nodes(conn: Connection, graph: _Graph) -> list[dict[str, Any]]:
    task_ids = sorted(i for k, i in graph.nodes.values() if k == "task")
    model_ids = sorted(i for k, i in graph.nodes.values() if k == "model")
    t, m = s.tasks.c, s.models.c
    nodes: dict[str, dict[str, Any]] = {}
    if task_ids:
        for row in conn.execute(sa.select(t.id, t.name, t.project, t.status).where(t.id.in_(task_ids))):
            nodes[f"task:{row.id}"] = {"id": f"task:{row.id}", "kind": "task", "label": row.name, "sub": row.project,
                                       "status": row.status, "url": f"/tasks/{row.id}"}
    if model_ids:
        newest = _newest_snapshots(conn, model_ids)
        query = sa.select(m.id, m.name, m.project, m.framework, m.origin).where(m.id.in_(model_ids))
        for row in conn.execute(query):
            nodes[f"model:{row.id}"] = {"id": f"model:{row.id}", "kind": "model", "label": row.name,
                                        "sub": row.framework or row.origin, "status": newest.get(row.id),
                                        "url": f"/models/{row.id}"}
    return [nodes[key] for key in graph.nodes if key in nodes]


def _newest_snapshots(conn: Connection, model_ids: list[str]) -> dict[str, str]:
    """{model id: status of its newest snapshot} (its highest seq, found through the (model_id, seq) index)."""
    c = s.snapshots.c
    top = (sa.select(c.model_id, sa.func.max(c.seq).label("top")).where(c.model_id.in_(model_ids))
           .group_by(c.model_id).subquery())
    query = sa.select(c.model_id, c.status).join(top, sa.and_(c.model_id == top.c.model_id, c.seq == top.c.top))
    return {model: status for model, status in conn.execute(query)}


def _edges(conn: Connection, graph: _Graph) -> list[dict[str, Any]]:
    counts: dict[str, int] = {}
    produced_models = sorted({model for _, model in graph.produced})
    if produced_models:
        c = s.snapshots.c
        query = sa.select(c.model_id, sa.func.count()).where(c.model_id.in_(produced_models)).group_by(c.model_id)
        counts = {model: n for model, n in conn.execute(query)}
    edges = []
    for task, model in sorted(graph.produced):
        n = counts.get(model, 0)
        edges.append({"source": f"task:{task}", "target": f"model:{model}", "kind": "produced",
                      "label": f"{n} snapshot{'' if n == 1 else 's'}"})
    for (model, task), seqs in sorted(graph.loaded.items()):
        label = "seq " + ", ".join(str(q) for q in sorted(q for q in seqs if q is not None))
        edges.append({"source": f"model:{model}", "target": f"task:{task}", "kind": "loaded", "label": label})
    return edges
