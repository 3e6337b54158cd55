"""One loader for every frozen config dataclass: YAML or dict in, strict about unknown keys.

``load_config(TrainConfig, "train.yaml")`` reads the file, checks every key against the
dataclass's fields (recursively for nested config dataclasses, e.g. ``TrainConfig.model``),
turns YAML lists into tuples where the field is a tuple, and builds the frozen object.
Errors name the file and the offending keys. ``config_to_dict`` and ``config_to_yaml`` go
the other way (what a run records next to its outputs).

Defaults live only in the dataclasses. There is one override route: the dataclass defaults,
then the YAML file (or dict), then ``overrides`` (what a command's options set), each
replacing the one before; a YAML file holds only what differs from the defaults.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from glacierbed.core.errors import CorruptFileError, DataNotFoundError

C = TypeVar("C")


def _unwrap_optional(tp: Any) -> Any:
    """``X | None`` -> ``X``; other types unchanged."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _convert(value: Any, tp: Any, where: str) -> Any:
    tp = _unwrap_optional(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return _build(tp, value, where)
    origin = typing.get_origin(tp)
    if (origin is tuple or tp is tuple) and isinstance(value, str):
        return (value,)  # a YAML scalar where a list is allowed: a list of one
    if (origin is tuple or tp is tuple) and isinstance(value, (list, tuple)):
        args = typing.get_args(tp)
        if args and args[-1] is not Ellipsis and len(args) == len(value):
            return tuple(_convert(v, a, where) for v, a in zip(value, args))
        inner = args[0] if args else Any
        return tuple(_convert(v, inner, where) for v in value)
    return _scalar(value, tp, where)


def _scalar(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against a scalar field type (bool, int, float, str, a Literal): YAML's ``maybe`` for a
    bool or ``four`` for an int would otherwise pass silently or fail later without naming the key. An int is
    taken where a float is expected; other types pass unchecked."""
    if typing.get_origin(tp) is typing.Literal:
        if value not in typing.get_args(tp):
            raise CorruptFileError(f"{where}: expected one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    expected = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}.get(tp)
    if expected is None:
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise CorruptFileError(f"{where}: expected {expected}, got {value!r}")
    return value


def _build(cls: type[C], raw: dict[str, Any], where: str) -> C:
    if not isinstance(raw, dict):
        raise CorruptFileError(f"{where}: expected a mapping of {cls.__name__} keys, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CorruptFileError(f"{where}: unknown {cls.__name__} keys {unknown}; known: {sorted(known)}")
    kwargs = {k: _convert(v, hints.get(k, Any), f"{where} ({k})") for k, v in raw.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        said = str(exc).removeprefix(f"invalid {cls.__name__}: ")  # a class's own check may name itself already
        raise CorruptFileError(f"{where}: invalid {cls.__name__}: {said}") from exc


class YamlConfig:
    """Mixin of the project's config dataclasses: ``Config.from_yaml(path)`` (see :func:`load_config`)."""

    @classmethod
    def from_yaml(cls: type[C], path: str | Path) -> C:
        """Load from YAML (keys as the fields; missing keys keep their defaults)."""
        return load_config(cls, path)


def load_config(cls: type[C], source: str | Path | dict[str, Any] | None = None, **overrides: Any) -> C:
    """A ``cls`` instance from a YAML file, a dict or nothing (defaults), plus ``overrides``."""
    if source is None:
        raw: dict[str, Any] = {}
        where = f"{cls.__name__} overrides"
    elif isinstance(source, dict):
        raw, where = dict(source), f"{cls.__name__} mapping"
    else:
        path = Path(source)
        where = str(path)
        if not path.exists():
            raise DataNotFoundError(f"{path}: config file not found")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise CorruptFileError(f"{path}: not valid YAML ({exc})") from exc
    return _build(cls, {**raw, **overrides}, where)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain dict (tuples as lists) of a config dataclass, nested ones included."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def config_changes(cfg: Any) -> dict[str, Any]:
    """The fields of a config dataclass whose values differ from its class defaults (plain values), e.g. to
    name a run's settings in a report; the class must be constructible without arguments."""
    default = config_to_dict(type(cfg)())
    return {k: v for k, v in config_to_dict(cfg).items() if default.get(k) != v}


def config_to_yaml(cfg: Any) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
