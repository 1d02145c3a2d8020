"""Configs: dataclasses filled from YAML files and ``key=value`` overrides, with strict checking.

Unknown keys fail with a "did you mean", wrong types and out-of-range values fail naming the key, and
every failure is a ``UserError`` (exit code 2, no traceback).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from r1lab.errors import UserError, did_you_mean
from r1lab.runtime.io import read_user_text


def load_yaml(path: str | Path, cls=None) -> dict:
    """The mapping in a YAML config file; with ``cls`` (a config dataclass) its keys are checked against it
    here, so that a config written for another command is refused naming the file."""
    p = Path(path)
    text = read_user_text(p, "config file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise UserError(f"malformed YAML in {where}: {getattr(e, 'problem', e)}") from None
    if data is None:  # an empty (or comments-only) file is more likely a failed copy than a wish for defaults
        raise UserError(f"config file is empty: {p} (no settings; leave out --config to run with the defaults)")
    if not isinstance(data, dict):
        raise UserError(f"config file {p} must hold a mapping of keys to values, got {type(data).__name__}")
    if cls is not None:
        try:
            check_keys(cls, data)
        except UserError as e:
            hint = (" (it looks like a model's config.json; --config takes an r1lab YAML config such as "
                    "configs/zero_tiny.yaml)") if "model_type" in data else ""
            raise UserError(f"{p}: {e}{hint}") from None
    return data


def check_keys(cls, data: dict, prefix: str = "") -> None:
    """Fail on the first key of ``data`` that dataclass ``cls`` (or a nested config in it) does not have."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in names:
            raise UserError(f"unknown config key {prefix + str(key)!r}{did_you_mean(str(key), names)}")
        if dataclasses.is_dataclass(hints[key]) and isinstance(value, dict):
            check_keys(hints[key], value, f"{prefix}{key}.")


def parse_overrides(items: list[str]) -> dict:
    """``["a.b=3", "c=[1, 2]"]`` -> ``{"a": {"b": 3}, "c": [1, 2]}`` (values parsed as YAML)."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise UserError(f"override {item!r} has an empty key")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UserError(f"override {item!r} conflicts with another override of {part!r}")
        node[parts[-1]] = value
    return out


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp, key: str):
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except UserError as e:
                errors.append(e)
        raise UserError(f"config key {key!r}: expected {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, str) and hasattr(tp, "from_string"):  # a shorthand, e.g. ``data: train.parquet``
            return tp.from_string(value)
        raise UserError(f"config key {key!r}: expected a mapping, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key {key!r}: expected a list, got {value!r}")
        (inner,) = typing.get_args(tp)[:1] or (Any,)
        items = [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key {key!r}: expected a mapping, got {value!r}")
        kt, vt = (typing.get_args(tp) + (Any, Any))[:2]
        return {_coerce(k, kt, key): _coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"config key {key!r}: expected true or false, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise UserError(f"config key {key!r}: expected a number, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"config key {key!r}: expected an integer, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise UserError(f"config key {key!r}: expected a string, got {value!r}")
    return value


def build(cls, data: dict, prefix: str = "", base=None):
    """Instantiate dataclass ``cls`` from a nested dict, strictly; then run its ``validate()`` if present.

    ``base`` is the instance the values override. A nested dataclass field starts from the parent's
    default for it (so a recipe's ``reasoning_rl: GRPOConfig(template="user", ...)`` keeps its template
    when a YAML file sets only ``reasoning_rl.steps``).
    """
    check_keys(cls, data, prefix)
    hints = typing.get_type_hints(cls)
    if base is None:
        try:
            base = cls()
        except TypeError:  # a dataclass with required fields: build from the given values only
            base = None
    kwargs = {}
    for key, value in data.items():
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            kwargs[key] = build(tp, value, prefix=f"{prefix}{key}.", base=getattr(base, key, None))
        else:
            kwargs[key] = _coerce(value, tp, prefix + key)
    obj = dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        validate()
    return obj


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def load_config(cls, path: str | Path | None = None, overrides: list[str] | None = None, base: dict | None = None):
    """``cls`` from defaults, then ``base``, then the YAML file, then ``key=value`` overrides."""
    data = dict(base or {})
    if path is not None:
        data = deep_merge(data, load_yaml(path, cls))
    if overrides:
        data = deep_merge(data, parse_overrides(overrides))
    return build(cls, data)


def require(cond: bool, key: str, message: str) -> None:
    """Range checks in ``validate()``: ``require(cfg.group_size >= 2, "group_size", "must be at least 2")``."""
    if not cond:
        raise UserError(f"config key {key!r} {message}")


@dataclasses.dataclass
class DataConfig:
    """Where a command's data is and which columns hold what (``data:`` in configs, ``--data`` on the command
    line); read by ``r1lab.tasks.data``."""

    path: str | None = None
    problem_key: str | None = None      # default: problem, then prompt, then question
    answer_key: str = "answer"
    response_key: str | None = None     # SFT target; default: response, then completion
    split: str | None = None            # a DatasetDict folder's split (default: train, else its only split)

    @classmethod
    def from_string(cls, path: str) -> "DataConfig":
        """``data: train.parquet`` is short for ``data: {path: train.parquet}``."""
        return cls(path=path)
