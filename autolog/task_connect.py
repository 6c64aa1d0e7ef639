"""Task's parameters, user properties and configuration objects (ClearML's hyperparameters, user
properties and configuration tabs).

Parameters are "Section/name" values (parameters.py has the stored shape and how values read back);
user properties are the parameters of section "properties" (user_properties.py); configuration objects
are named dicts or texts (configuration.py). All read on any task, fetched ones included; writes go to a
task this process is running (others raise TaskNotRunningError), except user properties, which a
finished task takes too, as in ClearML. A dict connected with connect() or connect_configuration() keeps
being recorded while the task runs (connected.py).

Importing this module (autolog.task does) wraps argparse's parse methods (argparse_capture.py), so
that the arguments a script parsed, before or after `Task.init()`, are stored under "Args".
"""
from __future__ import annotations

import argparse
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from . import argparse_capture, connected, runtime, user_properties
from . import configuration as config
from .parameters import (
    DEFAULT_SECTION, ParameterTable, cast_to, flatten, full_name, merged_arguments, nest, to_stored, type_name,
)
from .task_parameters import TaskParameters

if TYPE_CHECKING:
    from .context import Context
    from .db import MetadataStore

argparse_capture.install()

# A read-modify-write of a task's JSON column is one at a time in this process (the training thread and
# an argparse parse in another thread may both write).
_edit_lock = threading.RLock()
_MISSING = object()
ParameterChange = Callable[[ParameterTable], None]


class TaskConnect:
    """Mixed into Task: parameters by section, argparse arguments, user properties, and named
    configuration objects."""

    if TYPE_CHECKING:  # what Task provides
        id: str
        _runtime: runtime.TaskRuntime | None
        _ctx: Context

        def _writer(self, what: str) -> runtime.TaskRuntime: ...

    # -- connecting ----------------------------------------------------------------------
    def connect(self, mutable: Any, name: str | None = None, ignore_remote_overrides: bool = False) -> Any:
        """Connect an object to the task, as ClearML does; returns it.

        - a dict: its values become parameters of section `name` (default "General"); nested dicts are
          flattened to "outer/inner" names, and later connects to the section add to it. The same dict
          is returned, and values it gets later are recorded too (connected.py);
        - a TaskParameters instance (autolog.task_parameters): its values, with their descriptions,
          replace the parameters of section `name`;
        - an `argparse.ArgumentParser`: its last parsed values (else its defaults) go to section "Args";
        - an InputModel (or another model with a `connect(task)` method): recorded as this task's model;
        - a class, or any object with attributes (an `argparse.Namespace` too): its public attributes
          with plain values (str, numbers, bool, None, lists and dicts of them) go to section `name`,
          read now (as in ClearML, a later change to them is not recorded).
        ignore_remote_overrides: ClearML's, for remote execution; nothing overrides a local run.
        """
        from .model import InputModel, Model

        if isinstance(mutable, Model):
            if not hasattr(mutable, "connect"):
                raise TypeError(f"A {type(mutable).__name__} cannot be connected to a task.")
            self._writer(f"connect {'an input' if isinstance(mutable, InputModel) else 'a'} model")
            if name is not None and not isinstance(mutable, InputModel):
                mutable.connect(self, name)  # OutputModel: name renames it, as ClearML's connect(model, name)
            else:
                mutable.connect(self)
            return mutable
        if isinstance(mutable, argparse.ArgumentParser):
            self._store_arguments([argparse_capture.arguments_of(mutable)], True)
            return mutable
        section = name or DEFAULT_SECTION
        if isinstance(mutable, TaskParameters):  # ClearML: set_parameters(to_dict(), __parameters_prefix=name)
            helps = {p.name: p.desc for p in type(mutable).__params__ if p.desc}
            self._set_parameters((mutable.to_dict(),), {"__parameters_prefix": section,
                                                        "__parameters_descriptions": helps}, update=False)
            return mutable
        values = dict(mutable) if isinstance(mutable, Mapping) else _attributes(mutable)
        self._set_parameters((flatten(values),), {"__parameters_prefix": section}, update=True)
        if isinstance(mutable, dict):
            run, task_id = self._writer("connect a dict"), self.id
            store = run.ctx.store  # not the run: the run's registry of connected objects holds this weakly
            connected.connected_of(run).parameters(mutable, section, lambda changed: _edit_parameters(
                store, task_id, _parameter_change((changed,), {}, True)))  # changed: "Section/name"s
        return mutable

    def connect_configuration(self, configuration: Any, name: str | None = None, description: str | None = None,
                              ignore_remote_overrides: bool = False) -> Any:
        """Store a configuration object under `name` (default "General"); returns `configuration`.

        A dict or list is stored as is (it must be JSON: a function, a tensor, ... is refused, naming
        where it is); the same object is returned, and its later changes are recorded too (connected.py).
        A path (str or pathlib.Path) of a configuration file stores the file's text, with the file's
        suffix as its type.
        """
        name = name or DEFAULT_SECTION
        if isinstance(configuration, (Mapping, list, tuple)):
            value = config.checked(configuration, "configuration")
            self._put_configuration(name, config.entry(value, config.DICTIONARY, description))
            if isinstance(configuration, (dict, list)):
                run, task_id = self._writer("connect a configuration"), self.id
                store = run.ctx.store
                connected.connected_of(run).configuration(configuration, name, lambda changed: _edit_configuration(
                    store, task_id, name, config.entry(changed, config.DICTIONARY, description)))
            return configuration
        if not isinstance(configuration, (str, os.PathLike)):
            raise ValueError("connect_configuration takes a dict, a list, or the path (str or pathlib.Path) of a "
                             f"configuration file; got {type(configuration).__name__}.")
        path = Path(configuration)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ValueError(f"connect_configuration: configuration={os.fspath(configuration)!r} cannot be read as a "
                             f"text file ({reason}). Pass the path of an existing text file, or a dict.") from None
        suffix = path.suffixes[-1].lstrip(".") if path.suffixes else ""
        self._put_configuration(name, config.entry(text, suffix or "file", description))
        return configuration

    # -- parameters ----------------------------------------------------------------------
    def set_parameter(self, name: str, value: Any, description: str | None = None, value_type: Any = None) -> None:
        """Set one parameter, "Section/name" (no section: "General"). value_type (int, float, str,
        bool, list, dict or its name) converts the value, as ClearML's cast=True reads it."""
        self._set_parameters(({name: value},), {"__parameters_descriptions": {name: description},
                                                "__parameters_types": {name: value_type}}, update=True)

    def set_parameters(self, *args: Mapping[str, Any] | Iterable[tuple[str, Any]], **kwargs: Any) -> None:
        """Replace ALL the task's parameters (every section) with these "Section/name" values, as ClearML
        does; `update_parameters` adds to them instead. args: dicts or (name, value) pairs."""
        update = bool(kwargs.pop("__update", False))
        self._set_parameters(args, kwargs, update=update)

    def update_parameters(self, *args: Mapping[str, Any] | Iterable[tuple[str, Any]], **kwargs: Any) -> None:
        """Add or change these "Section/name" parameters; the others stay."""
        self._set_parameters(args, kwargs, update=True)

    def set_parameters_as_dict(self, dictionary: Mapping[str, Any]) -> None:
        """Add or change parameters from a nested dict {section: {name: value}}."""
        self._set_parameters((flatten(dictionary),), {}, update=True)

    def get_parameters(self, backwards_compatibility: bool = True, cast: bool = False) -> dict[str, Any]:
        """Every parameter, flat: {"Section/name": value}. As in ClearML the values are strings (None
        is "", a tuple "(1, 2)"), unless cast=True: then the values as they were set."""
        table = self._table()
        return {name: table.cast(name) if cast else table.text(name) for name in table.values}

    def get_parameter(self, name: str, default: Any = None, cast: bool = False) -> Any:
        """One parameter by "Section/name" (a name without section is looked up in "General")."""
        values = self.get_parameters(cast=cast)
        if name in values:
            return values[name]
        return values.get(full_name(name), default) if "/" not in str(name) else default

    def get_parameters_as_dict(self, cast: bool = False) -> dict[str, Any]:
        """The parameters nested: {section: {name: value}}, "outer/inner" names nested too."""
        return nest(self.get_parameters(cast=cast))

    def delete_parameter(self, name: str, force: bool = False) -> bool:
        """Delete one parameter by "Section/name"; False if there was none."""
        target, found = full_name(name), []

        def change(table: ParameterTable) -> None:
            found.append(table.values.pop(target, _MISSING) is not _MISSING)

        self._change_parameters("delete a parameter", change)
        return found[0]

    # -- user properties -------------------------------------------------------------------
    def set_user_properties(self, *iterables: Any, **properties: Any) -> bool:
        """Set user properties (section "properties"): name=value or name={"value": ..., "description": ...,
        "type": ...}, dicts {"name": ..., "value": ...[, "description", "type"]}, (name, value) pairs.
        Values are kept as text, as in ClearML. A finished task takes them too (to annotate it)."""
        found = user_properties.properties_of(iterables, properties)
        _edit_parameters(self._annotation_store("set user properties"), self.id,
                         lambda table: user_properties.store(table, found))
        return True

    def get_user_properties(self, value_only: bool = False) -> dict[str, Any]:
        """{name: {"section", "name", "value"[, "description"][, "type"]}}, or {name: value} with value_only."""
        return user_properties.details(self._table(), value_only)

    def delete_user_properties(self, *iterables: Any) -> bool:
        """Delete parameters by key, as ClearML: each argument a list of {"section": ..., "name": ...}
        dicts or (section, name) pairs (a property name alone is in section "properties")."""
        keys = user_properties.keys_of(iterables)

        def change(table: ParameterTable) -> None:
            for key in keys:
                table.values.pop(key, None)

        _edit_parameters(self._annotation_store("delete user properties"), self.id, change)
        return True

    # -- configuration objects -----------------------------------------------------------
    def set_configuration_object(self, name: str, config_text: str | None = None, description: str | None = None,
                                 config_type: str | None = None, config_dict: Any = None) -> None:
        """Store configuration `name` from config_text (any text) or config_dict (a dict or list), not both."""
        if (config_text is None) == (config_dict is None):
            raise ValueError("set_configuration_object takes config_text= (a string) or config_dict= (a dict or "
                             "list): exactly one of them.")
        if config_dict is not None:
            if not isinstance(config_dict, (Mapping, list, tuple)):
                raise ValueError(f"config_dict must be a dict or a list, got {type(config_dict).__name__}; pass text "
                                 "as config_text=.")
            value = config.checked(config_dict, "config_dict")
        elif not isinstance(config_text, str):
            raise ValueError(f"config_text must be a string, got {type(config_text).__name__}; pass a dict as "
                             "config_dict=.")
        else:
            value = config_text
        self._put_configuration(name, config.entry(value, config_type, description))

    def get_configuration_object(self, name: str) -> str | None:
        """Configuration `name` as text (a dict as JSON); None if the task has none of that name."""
        item = self._configuration().get(name)
        return config.as_text(item) if item is not None else None

    def get_configuration_object_as_dict(self, name: str) -> Any:
        """Configuration `name` as a dict or list (a text parsed as JSON or YAML); None if there is none."""
        item = self._configuration().get(name)
        return config.as_dict(item, name) if item is not None else None

    def get_configuration_objects(self) -> dict[str, str]:
        """Every configuration object: {name: text}."""
        return {name: config.as_text(item) for name, item in self._configuration().items()}

    # -- the columns -----------------------------------------------------------------------
    def _sync_connected(self) -> None:
        """Store what changed in the dicts connected to this run before its columns are read or written:
        a read then shows the change (as ClearML's), and a later write wins over it."""
        run = self._runtime
        watched = connected.connected_of(run, create=False) if run is not None and not run.closed else None
        if watched is not None:
            watched.sync()

    def _table(self) -> ParameterTable:
        self._sync_connected()
        return ParameterTable.of(self._ctx.store.get_task(self.id).parameters)

    def _configuration(self) -> dict[str, Any]:
        self._sync_connected()
        return dict(self._ctx.store.get_task(self.id).configuration or {})

    def _put_configuration(self, name: str, item: dict[str, Any]) -> None:
        store = self._writer("store a configuration object").ctx.store
        self._sync_connected()
        _edit_configuration(store, self.id, name, item)

    def _change_parameters(self, what: str, change: ParameterChange) -> None:
        """Read, change(table) in place, write back."""
        store = self._writer(what).ctx.store
        self._sync_connected()
        _edit_parameters(store, self.id, change)

    def _annotation_store(self, what: str) -> MetadataStore:
        """The store to write user properties with: a task running here, or one that is not running
        (ClearML lets a finished task be annotated); a task another process runs is that process's."""
        run = self._runtime
        if run is None or run.closed:
            store = self._ctx.store
            if store.get_task(self.id).status != "running":
                return store
        store = self._writer(what).ctx.store
        self._sync_connected()
        return store

    def _set_parameters(self, args: Iterable[Any], kwargs: dict[str, Any], update: bool) -> None:
        self._change_parameters("set parameters", _parameter_change(args, kwargs, update))

    # -- argparse --------------------------------------------------------------------------
    def _store_arguments(self, parses: list[argparse_capture.ParsedArguments], selection: bool | Mapping) -> None:
        values, helps = merged_arguments(((p.values, p.descriptions) for p in parses), selection)

        def change(table: ParameterTable) -> None:
            for key, value in values.items():
                table.put(key, value)
            table.descriptions.update(helps)

        self._change_parameters("store the command-line arguments", change)

    @staticmethod
    def _initial_parameters(auto_connect_arg_parser: bool | Mapping[str, bool]) -> dict[str, Any]:
        """The parameters a new task starts with: the arguments the script parsed before Task.init
        (written with the task's row, so Task.init does not wait for the database)."""
        selection = _checked_selection(auto_connect_arg_parser)
        if not selection:
            return {}
        parses = [(p.values, p.descriptions) for p in argparse_capture.recorded()]
        return to_stored(*merged_arguments(parses, selection))

    def _follow_arguments(self, auto_connect_arg_parser: bool | Mapping[str, bool]) -> None:
        """Store what the script parses from now on, while this task runs in this process."""
        run = self._runtime
        if not auto_connect_arg_parser or run is None or run.attached:
            argparse_capture.follow(None)  # a child logging into its parent's task leaves Args to the parent
            return

        def store(parsed: argparse_capture.ParsedArguments) -> None:
            if runtime.live() is run and not run.closed:
                self._store_arguments([parsed], auto_connect_arg_parser)

        argparse_capture.follow(store)


def _edit_parameters(store: MetadataStore, task_id: str, change: ParameterChange) -> None:
    """Read the parameters column, change(table) in place, write it back: one at a time in this process."""
    with _edit_lock:
        table = ParameterTable.of(store.get_task(task_id).parameters)
        change(table)
        store.update_task(task_id, parameters=table.stored())


def _edit_configuration(store: MetadataStore, task_id: str, name: str, item: dict[str, Any]) -> None:
    with _edit_lock:
        current = dict(store.get_task(task_id).configuration or {})
        current[str(name)] = item
        store.update_task(task_id, configuration=current)


def _parameter_change(args: Iterable[Any], kwargs: dict[str, Any], update: bool) -> ParameterChange:
    """ClearML's _set_parameters as a change: merge args (dicts or pairs) and kwargs; with
    __parameters_prefix the names go under that section, which (when not update) is replaced alone;
    else all are replaced. __parameters_descriptions and __parameters_types: {name: ...} of the given names."""
    kwargs = dict(kwargs)
    prefix = kwargs.pop("__parameters_prefix", None)
    helps = kwargs.pop("__parameters_descriptions", None) or {}
    types = kwargs.pop("__parameters_types", None) or {}
    new: dict[Any, Any] = {}
    for arg in args:
        if isinstance(arg, Mapping):
            new.update(arg)
        elif isinstance(arg, Iterable) and not isinstance(arg, (str, bytes)):
            new.update(dict(arg))
        else:
            raise ValueError(f"Parameters are given as dicts or (name, value) pairs, not {type(arg).__name__}.")
    new.update(kwargs)
    values = {full_name(str(k), prefix): (cast_to(v, types.get(k)), type_name(types.get(k))) for k, v in new.items()}
    descriptions = {full_name(str(k), prefix): str(d) for k, d in helps.items() if d}
    section = f"{str(prefix).strip('/')}/" if prefix else None

    def change(table: ParameterTable) -> None:
        if not update:
            for old in [n for n in table.values if section is None or n.startswith(section)]:
                del table.values[old]
        for name, (value, value_type) in values.items():
            table.put(name, value, value_type)
        table.descriptions.update(descriptions)

    return change


def _checked_selection(selection: Any) -> bool | Mapping[str, bool]:
    if isinstance(selection, bool):
        return selection
    if isinstance(selection, Mapping) and all(isinstance(k, str) for k in selection):
        return dict(selection)  # an empty dict turns capture off, as in ClearML
    raise ValueError(f"auto_connect_arg_parser must be True, False or a dict {{argument name: bool}} (\"*\" for the "
                     f"others); got {selection!r}.")


def _attributes(obj: Any) -> dict[str, Any]:
    """ClearML's connect(object): a class's attributes (through its bases) or an instance's own, public
    ones with plain JSON values only: methods, properties and objects are not parameters."""
    try:
        sources = [vars(c) for c in reversed(obj.__mro__)] if isinstance(obj, type) else [vars(obj)]
    except TypeError:
        raise TypeError(f"Task.connect takes a dict, an argparse parser, a model, a class or an object with "
                        f"attributes; a {type(obj).__name__} has none. Connect a dict instead.") from None
    plain = (str, int, float, list, tuple, dict, type(None))
    values: dict[str, Any] = {}
    for source in sources:
        for key, value in source.items():
            if str(key).startswith("_") or not isinstance(value, plain):
                continue
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                continue
            values[str(key)] = value
    return values
