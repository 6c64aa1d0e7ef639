"""How declarations become patches: each function wrapped once, aliases rebound, foreign wrappers wrapped."""
from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import wrapt

from autolog.binding import _patcher, _rebind, is_patched
from autolog.binding.spec import Arg, Save

BINDING = SimpleNamespace(FRAMEWORK="Fake", KEY="fake")
PATCH = Save("fake_fw", "sub.save", path=Arg(1, "path"))


def fake_framework() -> tuple[types.ModuleType, types.ModuleType, object]:
    def save(obj, path):
        return ("saved", obj, path)

    top, sub = types.ModuleType("fake_fw"), types.ModuleType("fake_fw.sub")
    top.sub, sub.save = sub, save
    return top, sub, save


def test_a_function_reached_through_two_hooks_is_wrapped_once():
    top, sub, save = fake_framework()
    _patcher(BINDING, [(PATCH, "sub.save")])(top)  # the hook of `fake_fw`
    _patcher(BINDING, [(PATCH, "save")])(sub)  # the hook of `fake_fw.sub`, a target on the way
    assert is_patched(sub.save)
    assert sub.save.__wrapped__ is save  # not our wrapper around our wrapper
    assert sub.save(1, "p") == ("saved", 1, "p")


def test_another_tools_wrapper_still_gets_ours():
    top, sub, save = fake_framework()
    sub.save = wrapt.FunctionWrapper(save, lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs))
    foreign = sub.save
    assert not is_patched(foreign)
    _patcher(BINDING, [(PATCH, "save")])(sub)
    assert is_patched(sub.save) and sub.save.__wrapped__ is foreign


def test_aliases_in_imported_modules_are_rebound_and_nothing_else(monkeypatch):
    top, sub, save = fake_framework()
    user = types.ModuleType("fake_user_script")
    user.early_save = save  # `from fake_fw.sub import save as early_save` before Task.init
    user.kept = {"save": save}  # not a module global: out of reach, and left alone
    user.other = print
    monkeypatch.setitem(sys.modules, "fake_user_script", user)
    monkeypatch.setitem(sys.modules, "fake_fw.sub", sub)
    _patcher(BINDING, [(PATCH, "save")])(sub)
    assert user.early_save is sub.save and is_patched(user.early_save)
    assert user.kept["save"] is save and user.other is print


def test_rebind_leaves_a_global_that_only_shares_the_id_of_a_dead_object():
    top, sub, save = fake_framework()
    user = types.ModuleType("fake_user_script")
    user.value = save
    sys.modules["fake_user_script"] = user
    try:
        _rebind({id(object()): (object(), "patched")})  # an id nobody holds
        assert user.value is save
    finally:
        del sys.modules["fake_user_script"]
