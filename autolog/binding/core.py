"""The one generic wrapper behind every framework patch.

Contract for every patched callable (see ARCHITECTURE.md, promise 1):
- the original is called with the caller's arguments untouched, and its result is returned as is;
- an exception it raises reaches the caller as the same object, and nothing is logged;
- recording happens after it returned, under `shielded`: a recording failure is one warning, never
  an exception (unless AUTOLOG_STRICT=1);
- only the outermost patched call of a thread records (Keras `save` calling TF internals, XGBoost
  through joblib are one snapshot);
- nothing is recorded with no active task, on a distributed rank other than 0, or in a DataLoader
  worker: then the wrapper costs one attribute read and one call.
"""
from __future__ import annotations

import fnmatch
import io
import logging
import os
import sys
import threading
import types
from typing import Any, Callable, Protocol

from ..forking import on_fork
from ..safety import report_failure, strict
from ..storage.blobstore import is_local
from ..storage.set_aside import unsettled_here
from .spec import Arg, Attr, Call, Computed, Patch, PathSource, Returned

logger = logging.getLogger("autolog")


class Aside(Protocol):
    """The previous file of a path, set aside while a save writes the path anew (storage/set_aside.py)."""

    def settle(self, raised: bool) -> None: ...


class Recorder(Protocol):
    """What the active task provides to the wrapper (see autolog.capture.CaptureRecorder)."""

    def allows(self, key: str, path: str) -> bool: ...
    def folders_around(self, path: str) -> tuple[str, ...]: ...
    def before_save(self, path: str, part: str | None = None, write: bool = False,
                    held: tuple[str, ...] = ()) -> "Aside | None": ...
    def save_ended(self, path: str, part: str | None, raised: bool) -> None: ...
    def saved(self, path: str, framework: str, model_path: str | None = None, wait_copied: bool = False,
              iteration: int | None = None, exclude: tuple[str, ...] = (), part: str | None = None,
              companions: tuple[str, ...] = ()) -> None: ...
    def loaded(self, path: str, framework: str, exclude: tuple[str, ...] = (),
               companions: tuple[str, ...] = ()) -> None: ...


_active: Recorder | None = None
_nesting = threading.local()
# The code of the wrapper make_wrapper returns (one code object, however many closures): a thread with
# a frame of it on its stack is inside a captured save or load. Task.init's background start looks for
# it on the script's stack, not the wrapper for a flag: that costs the save path nothing.
WRAPPER_CODES: set[types.CodeType] = set()

# Top-level module of a saved object -> framework name, for generic savers like joblib.
OBJECT_FRAMEWORKS = {
    "sklearn": "scikit-learn",
    "xgboost": "XGBoost",
    "lightgbm": "LightGBM",
    "catboost": "CatBoost",
    "torch": "PyTorch",
    "keras": "Keras",
    "tensorflow": "TensorFlow",
    "numpy": "NumPy",
    "pandas": "pandas",
}


def activate(recorder: Recorder | None) -> None:
    """Route captured calls to recorder (None: record nothing; the patches stay, as plain pass-throughs)."""
    global _active
    _active = recorder


def make_wrapper(patch: Patch, framework: str, key: str) -> Callable[..., Any]:
    what = f"{patch.label}() of {framework}"
    # The path a save writes is known before the call when it is an argument (or computed from one):
    # the save then waits for the previous snapshot of that path to be read, and holds its path lock.
    fences = patch.action in ("save", "write") and isinstance(patch.path, (Arg, Computed))

    # Plain try/except rather than `shielded` (a generator context manager): this runs on every call.
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple, kwargs: dict) -> Any:
        recorder = _active
        if recorder is None or getattr(_nesting, "inside", False) or not _records_here(what):
            return wrapped(*args, **kwargs)
        _nesting.inside = True
        try:
            path = None
            if fences:
                try:
                    path = _target_path(patch, instance, args, kwargs)
                except Exception as exc:  # noqa: BLE001
                    _not_logged(what, exc)
            if not path:
                return captured(recorder, path, wrapped, instance, args, kwargs)
            # `with`, not acquire() and a later release(): a Ctrl-C is raised only where a call returns,
            # and acquire()'s return would leave the lock taken for good; BEFORE_WITH is no such point.
            # A save into folders waiting to settle (autolog.settling) holds their locks too, so no
            # folder is snapshotted while the file is half written; outermost folder first, file last.
            folders = recorder.folders_around(path)
            if not folders:
                with path_lock(path):
                    return captured(recorder, path, wrapped, instance, args, kwargs)
            return _holding(folders + (path,),
                            lambda: captured(recorder, path, wrapped, instance, args, kwargs, folders))
        finally:
            _nesting.inside = False

    def captured(recorder: Recorder, path: str | bool | None, wrapped: Callable[..., Any], instance: Any,
                 args: tuple, kwargs: dict, folders: tuple[str, ...] = ()) -> Any:
        aside = None
        try:
            if path:
                left = unsettled_here()
                if left is not None:  # an earlier save of this thread was interrupted (Ctrl-C) before its settle
                    _settle(left, what, raised=True)
                try:
                    aside = _fence(recorder, path, patch, folders)
                except Exception as exc:  # noqa: BLE001
                    _not_logged(what, exc)
            result = wrapped(*args, **kwargs)
        except BaseException:
            # Interrupted in the fence, the set-aside it made may not have reached `aside`
            _settle(aside or unsettled_here(), what, raised=True)
            if path:
                _ended(recorder, path, patch, what, raised=True)
            raise
        try:  # still "inside": a patched call a declaration makes while recording is not recorded
            _settle(aside, what, raised=False)
            if path:
                _ended(recorder, path, patch, what, raised=False)
            if path is not False and patch.action != "write":
                _record(recorder, patch, framework, key, instance, args, kwargs, result, path)
        except Exception as exc:  # noqa: BLE001
            _not_logged(what, exc)
        return result

    wrapper.autolog_wrapper = True  # type: ignore[attr-defined]  # binding.is_patched
    WRAPPER_CODES.add(wrapper.__code__)
    return wrapper


# Saves of one path from several threads take turns (fence, save, opening the saved file): each
# snapshot then holds exactly the bytes of its own save, never a mix or the other thread's.
_path_locks: dict[str, threading.Lock] = {}
_path_locks_guard = threading.Lock()


def _target_path(patch: Patch, instance: Any, args: tuple, kwargs: dict) -> str | bool | None:
    """The absolute path a save writes, when its target is a path (computed once per call). False when
    the target argument is no file at all (a BytesIO, no `name`): nothing to fence, lock or look for
    after the call (a save to memory then costs +3.3 µs in all, not +6). None: found after the call
    (a file object, or a computed target that may depend on the call's result)."""
    source = patch.path
    value = source.fn(Call(instance, args, kwargs)) if isinstance(source, Computed) else _argument(source, args, kwargs)
    value = _local(value)
    if _is_url(value):
        return value  # a URL is its own key: its saves take turns and fence like a path's
    if isinstance(value, (str, bytes, os.PathLike)):
        return os.path.abspath(os.fsdecode(value))
    if isinstance(source, Arg) and not isinstance(getattr(value, "name", None), str):
        return False  # what path_argument would find after the call: no file
    return None


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and not is_local(value)


def _local(value: Any) -> Any:
    return value[len("file://"):] if isinstance(value, str) and value.startswith("file://") else value


def path_lock(path: str) -> threading.Lock:
    """The lock a captured save of path holds from its fence until its files are opened."""
    with _path_locks_guard:
        return _path_locks.setdefault(path, threading.Lock())


def _new_locks_after_fork() -> None:
    global _path_locks_guard
    _path_locks.clear()  # a lock held by a thread that did not come along would never be released
    _path_locks_guard = threading.Lock()


on_fork("binding.locks", after_in_child=_new_locks_after_fork)


def _not_logged(what: str, exc: Exception) -> None:
    if strict():
        raise exc
    report_failure(what, exc)


def _holding(paths: tuple[str, ...], call: Callable[[], Any]) -> Any:
    """call(), holding the path locks of paths, taken in their order (`with` each: see the wrapper)."""
    if not paths:
        return call()
    with path_lock(paths[0]):
        return _holding(paths[1:], call)


def _fence(recorder: Recorder, path: str, patch: Patch, folders: tuple[str, ...]) -> Aside | None:
    """Before a save overwrites a path, the previous snapshot of it must have been read or set aside:
    also when this save is not recorded (auto_connect_frameworks turns one framework off, not the
    protection of the snapshot another framework took of the same file). folders: the waiting folders
    around path whose locks this call holds."""
    return recorder.before_save(path, patch.label if patch.settle else None, write=patch.action == "write",
                                held=folders)


def _settle(aside: Aside | None, what: str, raised: bool) -> None:
    """End a set-aside once the save is over. Never raises past a save that raised: the user's exception
    is the one they get (strict mode included)."""
    if aside is None:
        return
    try:
        aside.settle(raised)
    except Exception as exc:  # noqa: BLE001
        if raised:
            report_failure(what, exc)
        else:
            _not_logged(what, exc)


def _ended(recorder: Recorder, path: str, patch: Patch, what: str, raised: bool) -> None:
    """Tell the recorder a fenced save ended, recorded or not (what a save that raised wrote is no
    folder's); never in place of the user's exception."""
    try:
        recorder.save_ended(path, patch.label if patch.settle else None, raised)
    except Exception as exc:  # noqa: BLE001
        if raised:
            report_failure(what, exc)
        else:
            _not_logged(what, exc)


def _record(
    recorder: Recorder, patch: Patch, framework: str, key: str, instance: Any, args: tuple, kwargs: dict, result: Any,
    path: str | None = None,
) -> None:
    path = path or path_argument(patch.path, patch.label, instance, args, kwargs, result)
    if path is None:
        return
    if not recorder.allows(key, path):
        logger.debug("autolog: %s(%s) filtered out by auto_connect_frameworks / capture.ignore", patch.label, path)
        return
    if patch.obj is not None:
        framework = object_framework(_argument(patch.obj, args, kwargs), framework)
    companions = tuple(os.path.abspath(os.fspath(p)) for p in (
        patch.companions and _value(patch.companions, instance, args, kwargs, result) or ()))
    if patch.action == "save":
        model_path = patch.model_path and path_argument(patch.model_path, patch.label, instance, args, kwargs, result)
        iteration = patch.iteration and _value(patch.iteration, instance, args, kwargs, result)
        # A file object the user opened is truncated by their next open(), before any fence could
        # run: such a snapshot is copied before the save returns.
        target = _argument(patch.path, args, kwargs) if isinstance(patch.path, Arg) else None
        recorder.saved(path, framework, model_path, wait_copied=isinstance(target, io.IOBase),
                       iteration=None if iteration is None else int(iteration), exclude=patch.exclude,
                       part=patch.label if patch.settle else None, companions=companions)
    else:
        recorder.loaded(path, framework, exclude=patch.exclude, companions=companions, beside=patch.beside)


def path_argument(
    source: PathSource, label: str, instance: Any, args: tuple, kwargs: dict, result: Any
) -> str | None:
    """The filesystem path the call wrote or read, or None for in-memory targets (logged at debug)."""
    value = _local(_value(source, instance, args, kwargs, result))
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if _is_url(value):
        return value  # fsspec URL: recorded where it is (capture.CaptureRecorder)
    if isinstance(value, (str, os.PathLike)):
        return os.path.abspath(os.fspath(value))
    name = getattr(value, "name", None)
    if isinstance(value, io.IOBase) and isinstance(name, str) and os.path.isfile(name):
        path = _file_object_path(value, name)
        if path is None:
            logger.warning("autolog: %s wrote into an open file named %r that is not %s (opened in another "
                           "folder, then the working folder changed?); this snapshot is not recorded",
                           label, name, os.path.abspath(name))
            return None
        if value.writable() and not value.closed:
            value.flush()  # the bytes may still sit in Python's buffer; the snapshot must see them
        return path
    logger.debug("autolog: %s target %r is not a file path; not recorded", label, type(value).__name__)
    return None


def _file_object_path(value: io.IOBase, name: str) -> str | None:
    """Where the open file `value` named `name` is: its name is relative to the working folder of its
    open(), which may have changed since; the path must lead to the file the handle writes (or, where
    the handle has no descriptor, is taken at its word)."""
    path = os.path.abspath(name)
    try:
        handle = os.fstat(value.fileno())
    except (OSError, ValueError):  # closed, or no descriptor (io.UnsupportedOperation is an OSError)
        return path
    here = os.stat(path)
    if (here.st_dev, here.st_ino) == (handle.st_dev, handle.st_ino):
        return path
    try:  # Linux: the kernel knows where the descriptor's file is
        real = os.readlink(f"/proc/self/fd/{value.fileno()}")
        there = os.stat(real)
    except (OSError, ValueError):
        return None
    return real if (there.st_dev, there.st_ino) == (handle.st_dev, handle.st_ino) else None


def _value(source: PathSource, instance: Any, args: tuple, kwargs: dict, result: Any) -> Any:
    if isinstance(source, Returned):
        return result
    if isinstance(source, Attr):
        return getattr(instance, source.name, None)
    if isinstance(source, Computed):
        return source.fn(Call(instance, args, kwargs, result))
    return _argument(source, args, kwargs)


def _argument(arg: Arg, args: tuple, kwargs: dict) -> Any:
    if arg.name in kwargs:
        return kwargs[arg.name]
    return args[arg.index] if len(args) > arg.index else None


def object_framework(obj: Any, default: str) -> str:
    root = type(obj).__module__.split(".", 1)[0]
    return OBJECT_FRAMEWORKS.get(root, default)


def _records_here(what: str) -> bool:
    try:
        return _should_record()
    except Exception as exc:  # noqa: BLE001 - e.g. a torch.distributed that cannot say its rank
        _not_logged(what, exc)
        return False


def _should_record() -> bool:
    """Only the global rank 0 records, and never a DataLoader worker (their loads are data, not models)."""
    rank = rank_variable()
    if rank not in (None, "", "0"):
        return False
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return False
    data = sys.modules.get("torch.utils.data")
    return data is None or data.get_worker_info() is None


def rank_variable() -> str | None:
    """$RANK, read on every call (a launcher or a forked worker may set it after Task.init).
    os.environ.get encodes the key and decodes the value in Python, half a microsecond: a tenth of
    the wrapper's cost. Where os.environ keeps its raw mapping (CPython), that is read instead."""
    env = os.environ
    data = getattr(env, "_data", None)
    if env is not _ENVIRON or not isinstance(data, dict):  # replaced (a test's dict) or another Python
        return env.get("RANK")
    raw = data.get(_RANK_KEY)
    return None if raw is None else env.decodevalue(raw)


_ENVIRON = os.environ
_RANK_KEY = getattr(os.environ, "encodekey", str)("RANK")


def path_filter(setting: Any, ignore_globs: list[str]) -> Callable[[str, str], bool]:
    """allows(key, path) for an auto_connect_frameworks value: True/False or {key: bool | glob | [globs]}."""
    def matches(path: str, globs: list[str]) -> bool:
        base = os.path.basename(path)
        return any(fnmatch.fnmatchcase(path, g) or fnmatch.fnmatchcase(base, g) for g in globs)

    def allows(key: str, path: str) -> bool:
        if ignore_globs and matches(path, ignore_globs):
            return False
        if isinstance(setting, bool):
            return setting
        rule = setting.get(key, True)
        if isinstance(rule, bool):
            return rule
        return matches(path, [rule] if isinstance(rule, str) else list(rule))

    return allows
