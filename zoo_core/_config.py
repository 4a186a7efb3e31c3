"""Dataclass configs filled from defaults and typed ``key=value`` strings (``--set``)."""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, get_args, get_origin

from zoo_core.errors import ZooError, printable

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of every field of a dataclass (string annotations included)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def field_defaults(cls: type) -> dict[str, Any]:
    """Every field's default value (default_factory called)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return "|".join(str(a) for a in get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def parse_value(text: Any, tp: Any, key: str) -> Any:
    """Convert a command-line string to the field's type; a clear error when it does not fit."""
    origin, args = get_origin(tp), get_args(tp)
    if not isinstance(text, str):
        return check_value(text, tp, key)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null") and type(None) in args:
            return None
        return _first_fit(text, args, key)
    if origin is Literal:
        for choice in args:
            if str(choice) == text:
                return choice
        raise ZooError(f"{key} must be one of {', '.join(map(str, args))}, not {text!r}")
    if origin in (tuple, list):
        item = args[0] if args else str
        values = tuple(parse_value(v.strip(), item, key) for v in text.split(",") if v.strip())
        return values if origin is tuple else list(values)
    try:
        if tp is bool:
            low = text.lower()
            if low in _TRUE | _FALSE:
                return low in _TRUE
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}[tp]
        raise ZooError(f"{key} must be {kind}, not {text!r}") from None
    return text


def _first_fit(
    value: Any, types_: tuple, key: str, fit: Callable[[Any, Any, str], Any] | None = None
) -> Any:
    """``value`` as the first of a union's types (None aside) it fits; else the first's error.
    ``fit`` converts it to one type (default: :func:`parse_value`)."""
    fit = fit or parse_value
    errors = []
    for tp in types_:
        if tp is type(None):
            continue
        try:
            return fit(value, tp, key)
        except ZooError as exc:
            errors.append(str(exc))
    raise ZooError(errors[0] if errors else f"bad value for {key}: {value!r}")


def check_value(value: Any, tp: Any, key: str) -> Any:
    """A Python value given for a field (``create_model("lstm", hidden_size=1.5)``), checked
    against the field's type as a string from the command line would be: an int field takes
    whole numbers (not True, not 1.5), a float field numbers, a bool field True or False, a tuple
    field a list or tuple of its items. Fields of other types (str among them, which may be given
    a path or a torch.device) take any value."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _first_fit(value, args, key, check_value)  # "16" is no int here
    if origin is Literal:
        if any(value == choice and type(value) is type(choice) for choice in args):
            return value
        raise ZooError(f"{key} must be one of {', '.join(map(str, args))}, not {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            raise ZooError(f"{key} must be a list, not {value!r}")
        values = [parse_value(v, args[0] if args else Any, key) for v in value]
        return tuple(values) if origin is tuple else values
    kind = {bool: "true or false", int: "an integer", float: "a number"}.get(tp)
    if kind is None:
        return value
    if tp is bool:
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, numbers.Integral if tp is int else numbers.Real)
        ok = ok and not isinstance(value, bool)
    if not ok:
        raise ZooError(f"{key} must be {kind}, not {value!r}")
    return tp(value)


def build(cls: type, values: dict[str, Any], what: str) -> Any:
    """``cls(**values)`` with typed parsing of string values and a clear error for unknown keys."""
    types_ = field_types(cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise ZooError(
            f"{what} has no field {', '.join(map(repr, unknown))}; its fields are: "
            f"{', '.join(types_)}"
        )
    parsed = {k: parse_value(v, types_[k], k) for k, v in values.items()}
    try:
        return cls(**parsed)
    except (TypeError, ValueError) as exc:
        raise ZooError(f"bad {what}: {exc}") from None


def to_json(config: Any) -> dict[str, Any]:
    """A dataclass as JSON-ready data (tuples become lists)."""
    return dataclasses.asdict(config)


def from_json(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a dataclass saved by :func:`to_json`: every value checked against its field's type
    as a ``--set`` value is (lists back to tuples where typed so, None only where allowed)."""
    types_ = field_types(cls)
    values = {}
    for key, value in data.items():
        if key not in types_:
            raise ZooError(
                f"saved config has field '{printable(key)}', which {cls.__name__} does not know"
            )
        try:
            values[key] = check_value(value, types_[key], key)
        except ZooError as exc:  # a file written by hand, or by a stranger: not a run of ours
            raise ZooError(f"saved config of {cls.__name__}: {printable(exc, 300)}") from None
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:  # a field without a default, a check it now makes
        raise ZooError(f"saved config does not fit {cls.__name__}: {exc}") from None
