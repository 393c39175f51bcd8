"""YAML into typed dataclass configs, strictly.

A misspelt key in an experiment config silently falling back to a default is the classic way to
waste a GPU day, so every key must name a dataclass field; errors name the file and the full key
path (``sft.optim.lr``). Command-line overrides use the same path syntax (``sft.lr=2e-5``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config that does not match its schema; the message names the file and key path."""


def _fail(source: str, path: str, msg: str) -> ConfigError:
    where = f"{source}: " if source else ""
    return ConfigError(f"{where}{path or '<root>'}: {msg}")


def _convert(value: Any, tp: Any, source: str, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            # Optional[X]: X's own error names the exact key (``lora.rank``), not just ``lora``.
            return _convert(value, options[0], source, path)
        for arg in options:
            try:
                return _convert(value, arg, source, path)
            except ConfigError:
                pass
        raise _fail(source, path, f"{value!r} matches none of {tp}")
    if origin is Literal:
        if value not in get_args(tp):
            raise _fail(source, path, f"{value!r} is not one of {list(get_args(tp))}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(tp, type) and isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise _fail(source, path, f"expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, source=source, path=path)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _fail(source, path, f"expected a list, got {type(value).__name__}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, source, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _fail(source, path, f"expected a mapping, got {type(value).__name__}")
        args = get_args(tp)
        val_tp = args[1] if args else Any
        return {k: _convert(v, val_tp, source, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(source, path, f"expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(source, path, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML reads 1e-5 (no dot) as a string; accept numeric strings.
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise _fail(source, path, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(source, path, f"expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise _fail(source, path, f"expected a path, got {value!r}")
        return Path(value)
    return value


def from_dict(cls: type[T], data: dict, source: str = "", path: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; unknown keys and wrong types raise ConfigError."""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = f"{path}.{unknown[0]}" if path else str(unknown[0])
        close = difflib.get_close_matches(str(unknown[0]), list(fields), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(fields)})"
        raise _fail(source, key, f"unknown key{hint}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(value, hints[name], source, f"{path}.{name}" if path else name)
    missing = [
        n for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        key = f"{path}.{missing[0]}" if path else missing[0]
        raise _fail(source, key, "required key is missing")
    try:
        obj = cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise _fail(source, path, str(e)) from e
    return obj


def to_dict(obj: Any) -> Any:
    """Plain-data form of a config (for hashing and saving next to outputs)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def apply_overrides(data: dict, overrides: list[str], source: str = "command line") -> dict:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML) to a raw config mapping."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"{source}: override {item!r} is not of the form key.path=value")
        key, raw = item.split("=", 1)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{source}: {key}: {part} is not a mapping")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def read_yaml(path: Path | str) -> dict:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping")
    return data


def load_config(cls: type[T], path: Path | str, overrides: list[str] | None = None) -> T:
    """Read YAML file ``path`` into ``cls``, applying ``key.path=value`` overrides first."""
    data = apply_overrides(read_yaml(path), overrides or [])
    return from_dict(cls, data, source=str(path))
