"""Framework capture: patch each declared save/load callable when its module is imported.

`install()` registers one `wrapt.when_imported` hook per binding module; the hook fires at once for
a module that is already imported, so Task.init may come before or after `import torch`. Patches
are applied once per process and stay: with no active task they only pass calls through.

wrapt is imported only once there is a framework to patch: its import brings asyncio and
importlib.metadata (~50 ms), which every framework imports anyway but a script calling Task.init()
before its imports, or using no framework, would wait for. Until then one finder on `sys.meta_path`
(`_FirstFrameworkImport`) watches for the first framework import; once that package has run, its
loader registers the hooks, which patch it and everything it imported at once.

Import order never matters: a module function bound under other names before it was patched
(`from torch import save`, `torch.serialization.save`, transformers' `safe_save_file` alias of
safetensors' `save_file`) is rebound to the patched one in every imported module (`_rebind`), and a
module imported later finds only the patched one. What still escapes: a reference kept somewhere other
than a module global (a default argument, a dict or list, a closure, a class attribute) taken before
`Task.init()`.
"""
from __future__ import annotations

import importlib
import logging
import sys
import threading
from types import ModuleType
from typing import Any, Callable

from ..safety import shielded
from .core import Recorder, activate, make_wrapper, path_filter
from .spec import Patch

__all__ = ["BINDINGS", "activate", "install", "load_bindings", "path_filter", "Recorder"]

logger = logging.getLogger("autolog")

# One module per framework under autolog/binding/, each declaring FRAMEWORK, KEY and PATCHES.
BINDINGS = [
    "torch", "tensorflow", "keras", "joblib", "xgboost", "lightgbm", "safetensors", "lightning", "transformers",
    "torch_distributed_checkpoint", "onnx", "catboost",
]

_installed = False
_registered = False
_register_lock = threading.Lock()
_lock = threading.RLock()
# While install() applies the hooks of already-imported modules, their rebinding is batched into one
# pass over sys.modules (original id -> (original, patched)); None outside install().
_batched: dict[int, tuple[object, object]] | None = None


def load_bindings() -> list[ModuleType]:
    """Import and check every binding's declarations (imports no framework)."""
    modules = []
    for name in BINDINGS:
        module = importlib.import_module(f"{__name__}.{name}")
        for attr in ("FRAMEWORK", "KEY", "PATCHES"):
            if not hasattr(module, attr):
                raise TypeError(f"Binding autolog.binding.{name} must declare {attr}.")
        if not all(isinstance(p, Patch) for p in module.PATCHES):
            raise TypeError(f"Binding autolog.binding.{name}: PATCHES must hold Save(...)/Load(...) declarations.")
        modules.append(module)
    return modules


def install() -> None:
    """Patch the frameworks imported so far and have each one imported later patched (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        hooks = [(module_name, binding, targets) for binding in load_bindings()
                 for module_name, targets in _hook_points(binding.PATCHES).items()]
        packages = frozenset(module_name.partition(".")[0] for module_name, _, _ in hooks)
        # The watcher goes in before sys.modules is looked at: a framework imported meanwhile by another
        # thread is seen by one or the other (registering twice does nothing).
        watcher = _FirstFrameworkImport(packages, lambda: _register(hooks))
        sys.meta_path.insert(0, watcher)
    if not packages.isdisjoint(sys.modules):
        watcher.retire()
        _register(hooks)


def _register(hooks: list[tuple[str, ModuleType, list[tuple[Patch, str]]]]) -> None:
    """Once per process. The first framework import may call this from inside importlib's finder loop,
    with the global import lock held: no lock is held here while anything imports (wrapt, or a lazy
    framework attribute that patching touches), or two threads could wait on each other."""
    global _registered, _batched
    import wrapt

    with _register_lock:
        if _registered:
            return
        _registered = True
        imported = []
        for module_name, binding, targets in hooks:
            if module_name in sys.modules:
                imported.append((module_name, _patcher(binding, targets)))
            else:  # only noted by wrapt: patched when it is imported
                wrapt.when_imported(module_name)(_patcher(binding, targets))
    with _lock:
        _batched = {}
    try:
        for module_name, patch_module in imported:
            wrapt.when_imported(module_name)(patch_module)  # fires at once
    finally:
        with _lock:
            replaced, _batched = _batched, None
    with shielded("rebinding aliases of patched functions"):
        _rebind(replaced)


class _FirstFrameworkImport:
    """A meta path finder for the first import of one of `packages`: it hands that import the spec the
    finders after it give, with a loader that registers the hooks once the package has run. Nothing is
    imported while importlib's global lock is held (finding): wrapt's own import waiting there for a
    module that another thread is importing (SQLAlchemy's importlib.metadata, on Task.init's thread)
    would wait forever."""

    def __init__(self, packages: frozenset[str], register: Callable[[], None]):
        self.packages = packages
        self.register = register

    def retire(self) -> None:
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass  # already gone (the other thread's first import, or install's check)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname.partition(".")[0] not in self.packages:
            return None
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None  # not installed: the import fails as it would without autolog
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # nothing to chain (a namespace package): the next framework import registers
        # Returning a spec ends importlib's loop over sys.meta_path: leaving it now skips no finder.
        self.retire()
        spec.loader = _RegisteringLoader(spec.loader, self.register)
        return spec


class _RegisteringLoader:
    """The first framework package's own loader, then the registration of every hook (outside
    importlib's global lock; the package and what it imported are complete by then, and wrapt
    patches them at once)."""

    def __init__(self, loader: Any, register: Callable[[], None]):
        self.loader = loader
        self.register = register

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps its real loader: inspect, importlib.resources and reload ask it.
        if getattr(module, "__loader__", None) in (None, self):
            module.__loader__ = self.loader
        if getattr(module.__spec__, "loader", None) is self:
            module.__spec__.loader = self.loader
        try:
            self.loader.exec_module(module)
        finally:
            with shielded("installing the framework patches"):  # must not break the user's import
                self.register()


def _hook_points(patches: list[Patch]) -> dict[str, list[tuple[Patch, str]]]:
    """Each patch is applied when its module is imported, and again whenever a module on the way to
    its target is (re)imported: `from tensorflow.saved_model.experimental import X` (Keras export
    does it) creates a new `tensorflow.saved_model` module object that replaces `tf.saved_model`."""
    points: dict[str, list[tuple[Patch, str]]] = {}
    for patch in patches:
        parts = patch.target.split(".")
        for i in range(len(parts)):
            module = ".".join([patch.module, *parts[:i]])
            points.setdefault(module, []).append((patch, ".".join(parts[i:])))
    return points


def _patcher(binding: ModuleType, targets: list[tuple[Patch, str]]):
    import wrapt  # imported by _register already

    from .picklable import PicklableFunctionWrapper

    def patch_module(module: ModuleType) -> None:
        # An exception here would break the user's `import torch`: everything is shielded.
        replaced: dict[int, tuple[object, object]] = {}
        for patch, target in targets:
            with shielded(f"patching {patch.label}"), _lock:
                owner_path, _, attr = target.rpartition(".")
                try:
                    owner = _resolve(module, owner_path)
                    current = getattr(owner, attr)
                except AttributeError:
                    # Not in this framework version; say so at debug, the rest still works.
                    logger.debug("autolog: %s not found in %s; not captured", patch.label, module.__name__)
                    continue
                if is_patched(vars(owner).get(attr, current)):
                    continue  # this owner's attribute is patched already (reached through another hook)
                wrapt.wrap_object(owner, attr, PicklableFunctionWrapper,
                                  (make_wrapper(patch, binding.FRAMEWORK, binding.KEY),))
                if isinstance(owner, ModuleType):
                    replaced[id(current)] = (current, getattr(owner, attr))
        if not replaced:
            return
        with _lock:
            if _batched is not None:
                _batched.update(replaced)
                return
        with shielded("rebinding aliases of patched functions"):
            _rebind(replaced)

    return patch_module


def is_patched(value: object) -> bool:
    """value is autolog's wrapper (not any wrapt proxy: wrapt 2's FunctionWrapper is no ObjectProxy, and
    another tool's wrapper around a framework function must still get ours)."""
    return getattr(getattr(value, "_self_wrapper", None), "autolog_wrapper", False) is True


def _rebind(replaced: dict[int, tuple[object, object]]) -> None:
    """Point every module global that is one of the patched originals at its patched function."""
    if not replaced:
        return
    ids = replaced.keys()
    for name, module in list(sys.modules.items()):
        namespace = getattr(module, "__dict__", None)
        if type(namespace) is not dict or name.startswith("autolog.") or name.startswith("wrapt"):
            continue
        try:
            if ids.isdisjoint(map(id, namespace.values())):  # C-speed: most modules hold none
                continue
            hits = [(key, value) for key, value in namespace.items() if id(value) in ids]
        except RuntimeError:  # changed size during iteration: a module importing in another thread
            continue
        for key, value in hits:
            original, patched = replaced[id(value)]
            if value is original:
                namespace[key] = patched


def _resolve(module: ModuleType, path: str) -> object:
    owner: object = module
    for part in filter(None, path.split(".")):
        owner = getattr(owner, part)
    return owner
