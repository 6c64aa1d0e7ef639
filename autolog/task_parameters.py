"""ClearML's `clearml.task_parameters`: a class of typed, described, range-checked parameters.

    from autolog.task_parameters import TaskParameters, param, percent_param

    class MyParams(TaskParameters):
        iterations = param(type=int, desc="Number of iterations to run", range=(0, 100000))
        target_accuracy = percent_param(desc="The target accuracy of the model")
        optimizer = param(type=str, default="adam")

    params = MyParams(iterations=1000, target_accuracy=0.95)
    task.connect(params)        # or params.connect(task): stored in section "General" (or name=...)

ClearML builds these classes with `attrs` (attr.s); plain Python gives the same behaviour here, without
that dependency. As there:
- the parameters are the class's `param()` attributes, in order (a base class's first); each is an
  argument of the generated __init__, by position or name, required unless it has a default (or
  factory), and a required one may not follow one with a default (ValueError when the class is made);
- the class gets __repr__ and __eq__ over the parameters (and, as with attrs, is unhashable);
- values are validated when an instance is made, not when assigned afterwards (attr.s classes are
  not): `type=` must match (None passes), `range=(min, max)` is inclusive, `validator=` takes attrs-style
  validators (callables of (instance, attribute, value)) or a list of them;
- percent_param is a float in [0, 1];
- `task.connect(params)` stores to_dict() with ClearML's set_parameters: the section's parameters are
  replaced by these. The descriptions (`desc=`) are stored with them (ClearML keeps them "for future
  use"). The values are read when connected; a later assignment is not recorded, as in ClearML.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterable

__all__ = ["range_validator", "param", "percent_param", "TaskParameters"]

Validator = Callable[[Any, "Param", Any], None]
_NOTHING: Any = object()  # no default
_ATTRIB_KEYWORDS = ("default", "factory", "converter")  # attr.ib's arguments taken here


def range_validator(min_value: Any, max_value: Any) -> Validator:
    """A validator: the value must lie in [min_value, max_value] (None: no limit on that side)."""
    def check(instance: Any, attribute: "Param", value: Any) -> None:
        if value is None:  # a parameter left unset (optional type): nothing to compare
            return
        if (min_value is not None and value < min_value) or (max_value is not None and value > max_value):
            raise ValueError(f"{attribute.name} must be in range [{min_value}, {max_value}]")
    return check


def _type_validator(expected: type) -> Validator:
    """attrs' optional(instance_of(expected)), with attrs' message."""
    def check(instance: Any, attribute: "Param", value: Any) -> None:
        if value is not None and not isinstance(value, expected):
            raise TypeError(f"'{attribute.name}' must be {expected!r} (got {value!r} that is a {value.__class__!r}).")
    return check


class Param:
    """One declared parameter (what param() returns); `name` is set by the class that declares it."""

    def __init__(self, default: Any, factory: Callable[[], Any] | None, converter: Callable[[Any], Any] | None,
                 validators: list[Validator], type: type | None, desc: str | None, metadata: dict):
        self.name = ""
        self.default, self.factory, self.converter = default, factory, converter
        self.validators, self.type, self.desc, self.metadata = validators, type, desc, metadata

    @property
    def has_default(self) -> bool:
        return self.default is not _NOTHING or self.factory is not None

    def initial(self) -> Any:
        return self.factory() if self.factory is not None else self.default

    def __repr__(self) -> str:
        return f"Param(name={self.name!r}, type={self.type!r}, desc={self.desc!r})"


def param(validator: Validator | Iterable[Validator] | None = None, range: tuple[Any, Any] | None = None,
          type: type | None = None, desc: str | None = None, metadata: dict | None = None, *args: Any,
          **kwargs: Any) -> Any:
    """A parameter of a TaskParameters class.

    validator: a validator or a list of them, each called as validator(instance, attribute, value);
    range: (min, max), inclusive, None for no limit on a side; type: the values' type (None passes);
    desc: its description, stored with it. Of attr.ib's arguments, default= (also the first extra
    positional argument), factory= and converter= are taken.
    """
    if len(args) > 1:
        raise TypeError(f"param() takes one extra positional argument (the default), got {len(args)}.")
    unknown = sorted(set(kwargs) - set(_ATTRIB_KEYWORDS))
    if unknown:
        raise TypeError(f"param() does not take {unknown}; it takes validator, range, type, desc, metadata, "
                        f"{', '.join(_ATTRIB_KEYWORDS)}.")
    default = args[0] if args else kwargs.get("default", _NOTHING)
    if default is not _NOTHING and kwargs.get("factory") is not None:
        raise ValueError("param() takes a default or a factory, not both.")
    validators = [] if not validator else list(validator) if isinstance(validator, (list, tuple)) else [validator]
    if type is not None:
        validators.append(_type_validator(type))
    if range:
        validators.append(range_validator(*range))
    return Param(default, kwargs.get("factory"), kwargs.get("converter"), validators, type, desc,
                 dict(metadata or {}, desc=desc))


def percent_param(*args: Any, **kwargs: Any) -> Any:
    """A float parameter in the range [0, 1]."""
    return param(*args, range=(0, 1), type=float, **kwargs)


class TaskParameters:
    """Base class of a parameter set to connect to a task: declare its parameters with param()."""

    __params__: ClassVar[tuple[Param, ...]] = ()
    __hash__ = None  # type: ignore[assignment]  # mutable and compared by value, as attrs makes it

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = {name: value for name, value in vars(cls).items() if isinstance(value, Param)}
        for name, declared in own.items():
            declared.name = name
            delattr(cls, name)  # the value lives on each instance, as attrs leaves it
        params = [p for p in cls.__params__ if p.name not in own] + list(own.values())
        for before, after in zip(params, params[1:]):
            if before.has_default and not after.has_default:
                raise ValueError(f"No mandatory attributes allowed after an attribute with a default value or "
                                 f"factory. Attribute in question: {after.name!r} of {cls.__name__} (give it a "
                                 f"default, or declare it before {before.name!r}).")
        cls.__params__ = tuple(params)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        params = type(self).__params__
        if len(args) > len(params):
            raise TypeError(f"{type(self).__name__}() takes {len(params)} arguments but {len(args)} were given.")
        given = dict(zip((p.name for p in params), args))
        for name in kwargs:
            if name in given or name not in {p.name for p in params}:
                problem = "multiple values for argument" if name in given else "an unexpected argument"
                raise TypeError(f"{type(self).__name__}() got {problem} {name!r}.")
        given.update(kwargs)
        missing = [p.name for p in params if p.name not in given and not p.has_default]
        if missing:
            raise TypeError(f"{type(self).__name__}() missing {len(missing)} required argument"
                            f"{'s' if len(missing) > 1 else ''}: {', '.join(map(repr, missing))}.")
        for p in params:
            value = given[p.name] if p.name in given else p.initial()
            setattr(self, p.name, p.converter(value) if p.converter is not None else value)
        for p in params:  # attrs validates once every value is set
            for validate in p.validators:
                validate(self, p, getattr(self, p.name))

    def __repr__(self) -> str:
        values = ", ".join(f"{p.name}={getattr(self, p.name)!r}" for p in type(self).__params__)
        return f"{type(self).__name__}({values})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, p.name) == getattr(other, p.name) for p in type(self).__params__)

    def to_dict(self) -> dict[str, Any]:
        """{name: value} of the parameters (a nested TaskParameters as a dict, tuples and sets as lists,
        as attr.asdict gives them)."""
        return {p.name: _plain(getattr(self, p.name)) for p in type(self).__params__}

    def update_from_dict(self, source_dict: dict[str, Any]) -> None:
        """Set the parameters named in source_dict (not validated, as in ClearML); ValueError for a name
        that is not one of them."""
        names = {p.name for p in type(self).__params__}
        for key, value in source_dict.items():
            if key not in names:
                raise ValueError(f"Unknown key {key} in {type(self).__name__} object")
            setattr(self, key, value)

    def connect(self, task: Any) -> Any:
        """Connect to a task: task.connect(self)."""
        return task.connect(self)


def _plain(value: Any) -> Any:
    if isinstance(value, TaskParameters):
        return value.to_dict()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    return value
