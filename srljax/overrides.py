"""The machinery around the config dataclasses: dotted keys, coercion, overrides, `--set`
parsing, field descriptions and config.json round trips. Generic over any nested frozen
dataclass, so it imports nothing of srljax but its errors; `srljax.config` applies it to
`Config` (and re-exports every name).
"""
from __future__ import annotations

import ast
import dataclasses
import json
import math
import sys
import typing
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from srljax.errors import UserError


def field_paths(cls, prefix: str = "") -> Dict[str, Any]:
    """Every settable dotted key with its type, e.g. {'ppo.lr': float, ...}."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            out.update(field_paths(t, prefix + f.name + "."))
        else:
            out[prefix + f.name] = t
    return out


def _coerce(key: str, value: Any, typ: Any) -> Any:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin is typing.Union or (origin is not None and type(None) in args):
        return None if value is None else _coerce(key, value, [a for a in args if a is not type(None)][0])
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ is bool:
        word = value.strip().lower() if isinstance(value, str) else value
        if word in ("true", "false", "1", "0") or isinstance(value, bool) or (type(value) is int and value in (0, 1)):
            return word in ("true", "1") if isinstance(word, str) else bool(value)
    elif typ is int:
        if number and (isinstance(value, int) or value.is_integer()):
            return int(value)
    elif typ is float:
        if number and not math.isfinite(value):
            raise UserError(f"--set {key}: must be finite, got {value!r}")
        if number:
            return float(value)
    elif typ is str:
        if isinstance(value, str):
            return value
    elif origin in (tuple, typing.Tuple):
        kind = (int, float) if args and args[0] is float else int      # Tuple[float, ...] takes ints too
        if isinstance(value, (list, tuple)) and all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
            return tuple(float(v) for v in value) if kind != int else tuple(value)
    elif origin in (dict, typing.Dict):
        if isinstance(value, dict):
            return dict(value)
    else:
        return value
    raise UserError(f"--set {key}: expected {getattr(typ, '__name__', typ)}, got {value!r}")



def override(cfg, values: Dict[str, Any], renamed: Optional[Dict[str, str]] = None):
    """A new config with dotted keys replaced; unknown keys, keys of `renamed` (old name -> new) and
    wrong types are UserErrors."""
    paths = field_paths(type(cfg))
    for key, value in values.items():
        if key in (renamed or {}) and key not in paths:
            raise UserError(f"config key {key!r} is now {renamed[key]!r} (set {renamed[key]}={json.dumps(value)})")
        if key not in paths:
            raise UserError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(paths))}")
        cfg = _replace(cfg, key.split("."), _coerce(key, value, paths[key]))
    return cfg


def _replace(obj, parts, value):
    if len(parts) == 1:
        return dataclasses.replace(obj, **{parts[0]: value})
    child = getattr(obj, parts[0])
    return dataclasses.replace(obj, **{parts[0]: _replace(child, parts[1:], value)})



def parse_set(items, cls) -> Dict[str, Any]:
    """`KEY=VALUE` strings -> dict. A string field takes VALUE as it is (or a JSON string); other
    VALUEs are JSON when they parse, else strings (booleans also read true/false/True/False/1/0)."""
    paths, out = field_paths(cls), {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if paths.get(key.strip()) in (str, Optional[str]) and not isinstance(value, str):
            value = raw
        out[key.strip()] = value
    return out


def get(cfg, key: str):
    """The value of a dotted key."""
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def to_dict(cfg) -> Dict[str, Any]:
    return dataclasses.asdict(cfg)


def describe_fields(cls, prefix: str = "") -> List[Dict[str, Any]]:
    """Every field, depth first: {"key", "type", "default", "doc", "section"} (a section is a nested
    config, default None); type and docstring as written in the source file of the class that declares
    the field (a subclass's inherited fields: its base's), read with ast."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        sec = dataclasses.is_dataclass(default)
        typ, doc = _field_doc(cls, f.name)
        out.append({"key": prefix + f.name, "type": typ, "default": None if sec else default, "doc": doc, "section": sec})
        out += describe_fields(type(default), prefix + f.name + ".") if sec else []
    return out


def _field_doc(cls, name: str) -> Tuple[str, str]:
    owner = next(c for c in cls.__mro__ if name in c.__dict__.get("__annotations__", {}))
    key = (owner.__module__, owner.__name__, name)
    if key not in _DOCS:
        tree = ast.parse(Path(sys.modules[owner.__module__].__file__).read_text())
        _DOCS.update({(owner.__module__, c.name, a.target.id): (
                      ast.unparse(a.annotation), " ".join(d.value.value.split()) if
                      isinstance(d, ast.Expr) and isinstance(d.value, ast.Constant) else "")
                      for c in tree.body if isinstance(c, ast.ClassDef)
                      for a, d in zip(c.body, c.body[1:] + [None]) if isinstance(a, ast.AnnAssign)})
    return _DOCS[key]


_DOCS: Dict[Tuple[str, str, str], Tuple[str, str]] = {}


def from_dict(d: Dict[str, Any], default, renamed: Dict[str, str]):
    """Rebuild a config written by `to_dict` (config.json) as overrides of `default`; keys of older
    files are mapped through `renamed`."""
    if not isinstance(d, dict):
        raise UserError(f"a config must be a JSON object of config sections, got {json.dumps(d)[:40]}")
    flat = {}
    paths = field_paths(type(default))          # a dict-valued field (`sweep`, `env.kwargs`) is one value

    def walk(prefix, obj):
        for k, v in obj.items():
            key = prefix + k
            if isinstance(v, dict) and key not in paths and not key.endswith("kwargs"):
                walk(key + ".", v)
            else:
                flat[key] = v
    walk("", d)
    return override(default, {renamed.get(k, k): v for k, v in flat.items()})   # (old keys mapped)
