"""Argparse arguments, noted as the script parses them (ClearML's auto_connect_arg_parser).

Importing autolog.task calls `install()`: one wrapper around `ArgumentParser.parse_known_args` (which
`parse_args` calls) and `parse_known_intermixed_args`; a plain function, not wrapt's, so that `import
autolog` does not import wrapt (and asyncio) before there is a framework to patch. After the user's
call returns, the wrapper notes each parser's parsed values and help texts, and hands them to the
running task when one follows arguments (`follow`). A script that parses before `Task.init()` has them
stored when its task starts (`recorded`). The call itself is untouched: same arguments, same return
value, same exception (`--help`'s SystemExit included), and nothing is noted for a call that raised.

A sub-parser's parse runs inside its parent's: only the outermost call is noted, and its namespace
holds the sub-command's values too. Limits: a parse that ran before autolog.task was imported is not
seen; neither is a sub-command chosen through `add_subparsers()` without `dest=` (it is no value of
the namespace; the task's run_info argv has it).
"""
from __future__ import annotations

import argparse
import functools
import threading
from dataclasses import dataclass
from typing import Any, Callable

from .parameters import parameter_value
from .safety import shielded

MAX_PARSERS = 32  # the last parse of this many parsers is kept (a script builds a few)
_WRAPPED = ("parse_known_args", "parse_known_intermixed_args")


@dataclass(frozen=True)
class ParsedArguments:
    """One parse: {dest: value} as JSON (str() of what is not), {dest: help text}."""

    values: dict[str, Any]
    descriptions: dict[str, str]


_lock = threading.Lock()
_installed = False
_parsed: dict[int, ParsedArguments] = {}  # id(parser) -> its last parse, oldest first
_depth = threading.local()  # nesting of wrapped calls in this thread: sub-parsers parse inside
_listener: Callable[[ParsedArguments], None] | None = None


def install() -> None:
    """Wrap the parse methods (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    for name in _WRAPPED:
        original = argparse.ArgumentParser.__dict__.get(name)
        if original is not None:
            setattr(argparse.ArgumentParser, name, _noting(original))


def _noting(parse: Callable) -> Callable:
    @functools.wraps(parse)
    def noting_parse(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _noting_parse(functools.partial(parse, self), self, args, kwargs)

    return noting_parse


def follow(listener: Callable[[ParsedArguments], None] | None) -> None:
    """Hand each later parse to listener (the running task); None stops it."""
    global _listener
    _listener = listener


def recorded() -> list[ParsedArguments]:
    """The last parse of each parser, oldest first."""
    with _lock:
        return list(_parsed.values())


def forget() -> None:
    """Drop every noted parse (tests)."""
    with _lock:
        _parsed.clear()


def _noting_parse(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    depth = getattr(_depth, "value", 0)
    _depth.value = depth + 1
    try:
        result = wrapped(*args, **kwargs)
    finally:
        _depth.value = depth
    if depth == 0 and isinstance(instance, argparse.ArgumentParser):
        with shielded("the parsed command-line arguments"):
            _note(instance, result)
    return result


def _note(parser: argparse.ArgumentParser, result: Any) -> None:
    namespace = result[0] if isinstance(result, tuple) else result
    parsed = ParsedArguments(values_of(namespace), help_texts(parser))
    with _lock:
        _parsed.pop(id(parser), None)
        _parsed[id(parser)] = parsed
        while len(_parsed) > MAX_PARSERS:
            _parsed.pop(next(iter(_parsed)))
    listener = _listener
    if listener is not None:
        listener(parsed)


def values_of(namespace: Any) -> dict[str, Any]:
    """A namespace's values as parameters. A callable (set_defaults(func=handler)) is code, not a value."""
    return {str(k): parameter_value(v) for k, v in vars(namespace).items() if not callable(v)}


def arguments_of(parser: argparse.ArgumentParser) -> ParsedArguments:
    """What `task.connect(parser)` stores: the parser's last parse, else its defaults (ClearML would
    parse sys.argv here; a parse the script did not ask for could exit the process)."""
    with _lock:
        parsed = _parsed.get(id(parser))
    if parsed is not None:
        return parsed
    defaults: dict[str, Any] = {}
    for sub in _parsers_in(parser):
        for action in sub._actions:
            if action.dest != argparse.SUPPRESS and action.default != argparse.SUPPRESS:
                defaults.setdefault(action.dest, action.default)
        for dest, value in sub._defaults.items():
            defaults.setdefault(dest, value)
    values = {str(k): parameter_value(v) for k, v in defaults.items() if not callable(v)}
    return ParsedArguments(values, help_texts(parser))


def help_texts(parser: argparse.ArgumentParser) -> dict[str, str]:
    """{dest: help} of the parser's arguments and its sub-parsers' (the first one wins)."""
    texts: dict[str, str] = {}
    for sub in _parsers_in(parser):
        for action in sub._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue  # -h and --version: no value in the namespace
            if action.help and action.help != argparse.SUPPRESS and action.dest != argparse.SUPPRESS:
                texts.setdefault(action.dest, _expanded(action, sub.prog))
    return texts


def _expanded(action: argparse.Action, prog: str) -> str:
    """The help text with argparse's %(default)s-style fields filled, as --help shows it."""
    text = str(action.help)
    try:
        return text % dict(vars(action), prog=prog) if "%" in text else text
    except (KeyError, TypeError, ValueError):
        return text


def _parsers_in(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """parser and every sub-parser under it, parents first."""
    found: list[argparse.ArgumentParser] = []
    pending = [parser]
    while pending:
        current = pending.pop(0)
        if any(current is p for p in found):
            continue
        found.append(current)
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())
    return found
