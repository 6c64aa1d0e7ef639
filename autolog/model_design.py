"""What a model describes besides its weights: its design (configuration) and its label enumeration.

ClearML keeps both on the model (and a task's label enumeration on the task). Here they live in the
model row's `meta`, under keys of their own that `Model.metadata` does not show:

    meta["_design"]  the design as text (config_text); config_dict is that text parsed as JSON
    meta["_labels"]  the label enumeration {label: integer id}

Rows written before these keys existed kept a config dict in meta["config"] and the labels in
meta["labels"] (shown in `metadata`, where they stay); they are read when the new keys are absent.

ClearML turns a config_dict into HOCON text and parses config_text as HOCON; autolog writes and
parses JSON (which HOCON reads too), so a config_dict comes back equal, and a config_text that is
not JSON has no dict form.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

DESIGN_KEY = "_design"
LABELS_KEY = "_labels"
RESERVED_KEYS = (DESIGN_KEY, LABELS_KEY)
_OLD_DESIGN_KEY, _OLD_LABELS_KEY = "config", "labels"  # rows written before the keys above


def validate_labels(labels: Any, argument: str) -> dict[str, int]:
    """labels as a plain {str: int} dict, or a ValueError naming `argument` (ValueError as in ClearML)."""
    example = "{'background': 0, 'person': 1}"
    if not isinstance(labels, Mapping):
        raise ValueError(f"{argument} must be a dict of label (str) to integer id, like {example}; "
                         f"got {type(labels).__name__}.")
    for label, value in labels.items():
        # bool is an int to Python, but True as a class id is a mistake, and JSON would keep it as true.
        if not isinstance(label, str) or not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{argument} must map each label (str) to an integer id, like {example}; "
                             f"{label!r}: {value!r} is not. Convert it, e.g. {{str(label): int(id)}}.")
    return dict(labels)


def design_text(config_text: Any = None, config_dict: Any = None) -> str | None:
    """The design text of config_text= or config_dict= (JSON text of the dict); None when neither is given."""
    if config_text is not None and config_dict is not None:
        raise ValueError("Pass config_text= or config_dict=, not both: they are two forms of one design.")
    if config_dict is not None:
        if isinstance(config_dict, str):  # ClearML takes text given as config_dict as it is
            return config_dict
        if not isinstance(config_dict, Mapping):
            raise ValueError(f"config_dict must be a dict, got {type(config_dict).__name__}. "
                             "Pass other designs as text with config_text=.")
        _check_json(config_dict, "config_dict", set())
        return json.dumps(config_dict, indent=2)
    if config_text is not None and not isinstance(config_text, str):
        raise ValueError(f"config_text must be a str, got {type(config_text).__name__}. "
                         "Pass a dict with config_dict= instead.")
    return config_text


def _check_json(value: Any, path: str, containing: set[int]) -> None:
    """Refuse what JSON cannot hold, naming where it is (config_dict['layers'][2])."""
    if isinstance(value, (str, int, float)) or value is None:  # bool is an int
        return
    if not isinstance(value, (Mapping, list, tuple)):
        raise ValueError(f"{path} is a {type(value).__name__}, which a JSON design cannot hold: config_dict may "
                         "hold only dicts with str keys, lists, str, numbers, bool and None. Convert it (e.g. "
                         "str(value) or value.tolist()), or pass the design as text with config_text=.")
    if id(value) in containing:
        raise ValueError(f"{path} contains itself: a design must be a tree. Pass a copy without the cycle.")
    containing.add(id(value))
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{path} has the key {key!r} ({type(key).__name__}); JSON keys are text, so it "
                                 f"would come back as {str(key)!r}. Use str keys in config_dict.")
            _check_json(item, f"{path}[{key!r}]", containing)
    else:
        for index, item in enumerate(value):
            _check_json(item, f"{path}[{index}]", containing)
    containing.discard(id(value))


def design_of(meta: Mapping[str, Any]) -> str:
    """The design text of a model row ("" when it has none, as ClearML's config_text)."""
    text = meta.get(DESIGN_KEY)
    if isinstance(text, str):
        return text
    old = meta.get(_OLD_DESIGN_KEY)
    return json.dumps(old, indent=2) if isinstance(old, dict) else ""


def design_dict(text: str, model: str) -> dict[str, Any]:
    """A design text as a dict ({} for no design); ValueError when it is not a JSON object."""
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValueError(f"The design of model {model} is text that is not a JSON object, so it has no dict form "
                         "(autolog parses JSON, where ClearML parses HOCON). Read it as config_text.")
    return parsed


def labels_of(meta: Mapping[str, Any]) -> dict[str, int]:
    """The label enumeration of a model row ({} when it has none, as in ClearML)."""
    labels = meta.get(LABELS_KEY)
    if isinstance(labels, dict):
        return dict(labels)
    old = meta.get(_OLD_LABELS_KEY)
    try:
        return validate_labels(old, "labels") if isinstance(old, dict) else {}
    except ValueError:  # a user's own metadata named "labels", not an enumeration
        return {}


def user_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """meta without the design and labels, which have properties of their own."""
    return {k: v for k, v in meta.items() if k not in RESERVED_KEYS}
