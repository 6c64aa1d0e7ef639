"""What a forked child resets, in one written order (DataLoader workers and multiprocessing fork).

A child gets copies of the parent's locks (perhaps held by threads that did not come along), its
database connections and its pipelines with no threads. Each module registers its own reset here,
under a name from ORDER, and one `os.register_at_fork` hook runs them in that order: locks first,
then the connections that use them, then what sits on top, and the live run's child attach last.
"""
from __future__ import annotations

import os
from typing import Callable

ORDER = (
    "context.rows",      # before fork: let the thread creating the task's row finish (import locks),
                         # unless it sleeps between two tries of a database that is down
    "db.transactions",   # before fork: wait for transactions under way, hold new ones back till after
    "db.lock",           # after, in the child: the store registry's lock
    "snapshots.events",  # the lock of the snapshots' lazily made events
    "db.engines",        # the parent's connections are the parent's: open new ones
    "context.locks",     # the lazily opened store's lock, and rows being created by threads now gone
    "binding.locks",     # saves of one path take turns through a lock per path
    "set_aside.unsettled",  # set-asides of the parent's saves are the parent's to settle
    "snapshots.pipelines",  # pipelines copied without their threads: nobody may wait on them
    "reporting.writers",  # Logger's buffers: the parent writes what they hold; the child gets its own
    "snapshots.registered",  # the parent's hashes of registered objects are the parent's to finish
    "artifacts.registered",  # the parent's registered DataFrames are the parent's to upload
    "parameters.connected",  # the parent's connected dicts are the parent's to store
    "runtime.child",     # the child logs into its parent's task (process.py)
)

_before: dict[str, Callable[[], None]] = {}
_after_in_parent: dict[str, Callable[[], None]] = {}
_after_in_child: dict[str, Callable[[], None]] = {}


def on_fork(name: str, *, before: Callable[[], None] | None = None,
            after_in_parent: Callable[[], None] | None = None,
            after_in_child: Callable[[], None] | None = None) -> None:
    if name not in ORDER:
        raise ValueError(f"fork hook {name!r} is not in autolog.forking.ORDER; add it there, in its place.")
    for hooks, hook in ((_before, before), (_after_in_parent, after_in_parent), (_after_in_child, after_in_child)):
        if hook is not None:
            hooks[name] = hook


def _run(hooks: dict[str, Callable[[], None]]) -> None:
    for name in ORDER:
        hook = hooks.get(name)
        if hook is not None:
            hook()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=lambda: _run(_before), after_in_parent=lambda: _run(_after_in_parent),
                        after_in_child=lambda: _run(_after_in_child))
