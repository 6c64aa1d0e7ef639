"""How declarations become patches: each function wrapped once, aliases rebound, foreign wrappers wrapped."""
from __future__ import annotations

import importlib
import sys
import types
from types import SimpleNamespace

import pytest
import wrapt

from autolog.binding import _FirstFrameworkImport, _patcher, _rebind, is_patched
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


def test_the_first_framework_import_registers_once_and_still_imports(tmp_path, monkeypatch):
    """Registration runs once the package has run (not while importlib finds it: nothing may be
    imported under its global lock), and the package keeps its own loader."""
    (tmp_path / "fake_watched_fw").mkdir()
    (tmp_path / "fake_watched_fw" / "__init__.py").write_text("VALUE = 42\n")
    (tmp_path / "fake_watched_fw" / "sub.py").write_text("VALUE = 43\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    calls = []
    watcher = _FirstFrameworkImport(frozenset({"fake_watched_fw", "fake_missing_fw"}), lambda: calls.append(1))
    sys.meta_path.insert(0, watcher)
    try:
        import json  # noqa: F401 - not watched: nothing happens
        assert calls == [] and watcher in sys.meta_path
        module = importlib.import_module("fake_watched_fw")
        assert module.VALUE == 42 and calls == [1]
        assert type(module.__loader__).__name__ == "SourceFileLoader" and module.__spec__.loader is module.__loader__
        assert watcher not in sys.meta_path  # retired: later imports never reach it
        assert importlib.import_module("fake_watched_fw.sub").VALUE == 43 and calls == [1]
        # A watched package that is not installed fails the way it would without autolog, and the
        # watcher stays for the next framework import.
        sys.meta_path.insert(0, watcher)
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module("fake_missing_fw")
        assert calls == [1] and watcher in sys.meta_path
    finally:
        watcher.retire()
        for name in ("fake_watched_fw", "fake_watched_fw.sub"):
            sys.modules.pop(name, None)


def test_a_failing_registration_does_not_break_the_import(tmp_path, monkeypatch):
    (tmp_path / "fake_watched_fw2.py").write_text("VALUE = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("AUTOLOG_STRICT", raising=False)

    def broken():
        raise RuntimeError("no patches today")

    watcher = _FirstFrameworkImport(frozenset({"fake_watched_fw2"}), broken)
    sys.meta_path.insert(0, watcher)
    try:
        assert importlib.import_module("fake_watched_fw2").VALUE == 7
    finally:
        watcher.retire()
        sys.modules.pop("fake_watched_fw2", None)


DEADLOCK_SCRIPT = """
import importlib, sys, threading, time
sys.path.insert(0, sys.argv[1])
import builtins
from autolog.binding import _FirstFrameworkImport

builtins.started, builtins.go = threading.Event(), threading.Event()
# Another thread is importing slow_mod (its module lock held) and goes on to import more (which needs
# importlib's global lock) a little after the framework import below began.
importer = threading.Thread(target=importlib.import_module, args=("slow_mod",), daemon=True)
importer.start()
builtins.started.wait(10)
watcher = _FirstFrameworkImport(frozenset({"fake_fw_x"}), lambda: importlib.import_module("slow_mod"))
sys.meta_path.insert(0, watcher)
builtins.go.set()
import fake_fw_x
importer.join(10)
print("imported", fake_fw_x.VALUE, sys.modules["slow_mod"].DONE)
"""


def test_registering_at_the_first_framework_import_cannot_deadlock_with_another_threads_import(tmp_path, child_env):
    """The registration imports (wrapt, and what it imports) while another thread may be importing the
    same modules (Task.init's thread imports SQLAlchemy, which imports importlib.metadata): done while
    importlib's global lock is held, that waited forever (seen: Task.init, then `import keras`)."""
    import subprocess

    (tmp_path / "slow_mod.py").write_text(
        "import builtins, time\nbuiltins.started.set()\nbuiltins.go.wait(10)\ntime.sleep(0.3)\n"
        "import slow_mod_part\nDONE = True\n")
    (tmp_path / "slow_mod_part.py").write_text("X = 1\n")
    (tmp_path / "fake_fw_x.py").write_text("VALUE = 5\n")
    try:
        out = subprocess.run([sys.executable, "-c", DEADLOCK_SCRIPT, str(tmp_path)], env=child_env(),
                             capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the framework import and the other thread's import waited on each other")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "imported 5 True"


class Model:
    """A framework's class with a save method, found by pickle as this module's `Model`."""

    def __init__(self, weights):
        self.weights = weights

    def save(self, path):
        return ("saved", self.weights, path)


def test_patched_functions_and_methods_pickle_as_the_originals_do(monkeypatch):
    """By reference, as pickle takes a function: a Pool sends its function to the workers that way."""
    import pickle

    top, sub, _ = fake_framework()
    monkeypatch.setitem(sys.modules, "fake_fw", top)
    monkeypatch.setitem(sys.modules, "fake_fw.sub", sub)
    sub.save.__module__, sub.save.__qualname__ = "fake_fw.sub", "save"
    _patcher(BINDING, [(PATCH, "sub.save")])(top)
    monkeypatch.setattr(Model, "save", Model.save)  # undone after the test
    _patcher(BINDING, [(Save("fake_fw", "Model.save", path=Arg(1, "path")), "Model.save")])(sys.modules[__name__])

    assert pickle.loads(pickle.dumps(sub.save)) is sub.save
    assert is_patched(pickle.loads(pickle.dumps(Model.save)))
    bound = pickle.loads(pickle.dumps(Model(3).save))
    assert bound("p") == ("saved", 3, "p") and is_patched(bound)
