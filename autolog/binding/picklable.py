"""Patched functions pickle as the functions they wrap do: by reference.

multiprocessing sends the function of `Pool().map(torch.load, paths)` to its workers by pickling it,
and a Dataset holding `loader=torch.load` goes to spawned DataLoader workers the same way. A plain
function pickles as its module and qualified name; wrapt's proxies refuse to be pickled (they define
no `__reduce__`), so such a call, which works without autolog, raised NotImplementedError under it.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

import wrapt


def _by_reference(function: Callable[..., Any], instance: object = None) -> Any:
    """What pickle makes of `function` unpatched: a module's function by its name (the patched module
    attribute is this wrapper, so the name finds it again), a method through its class or instance."""
    name = getattr(function, "__name__", None)
    if instance is not None:
        return getattr, (instance, name)  # as a bound method pickles
    owner_path, _, _ = function.__qualname__.rpartition(".")
    if not owner_path:
        return function.__qualname__
    owner: Any = sys.modules[function.__module__]
    for part in owner_path.split("."):  # a class's function reached through the class
        owner = getattr(owner, part)
    return getattr, (owner, name)


class _PicklableBoundWrapper(wrapt.BoundFunctionWrapper):
    def __reduce_ex__(self, protocol: int) -> Any:
        return _by_reference(self.__wrapped__, self._self_instance)


class PicklableFunctionWrapper(wrapt.FunctionWrapper):
    """wrapt's FunctionWrapper, pickled by reference (and so are its bound forms)."""

    __bound_function_wrapper__ = _PicklableBoundWrapper

    def __reduce_ex__(self, protocol: int) -> Any:
        return _by_reference(self.__wrapped__)
