"""YAML config reading, ``-o`` overrides and the key checks the builders use (the bottom layer).

Keys of registry-built objects are checked against the signature of the object they build
(:func:`check_kwargs`, :func:`op_list`), so a new transform or model is validated the day it is
registered. Loading a whole config and validating it against every registry needs every package
that registers entries, so it sits above them: :func:`ppcls.engine.config.load_config`.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml

from deploy.python import config_syntax
from deploy.python.config_syntax import OverrideRules
from deploy.python.config_syntax import suggest as _suggest
from ppcls.utils.errors import ConfigError, UnknownNameError, bound_text, summarize
from ppcls.utils.numbers import parse_number
from ppcls.utils.signature import signature_params

logger = logging.getLogger(__name__)

__all__ = ["ConfigError", "UnknownNameError", "apply_override", "check_kwargs", "check_keys", "dump_config",
           "load_yaml", "op_list", "parse_override", "yaml_load"]

# A config holds a few hundred values. YAML aliases (``*name``) repeat an anchored value without
# copying it, so a few lines can stand for 10^9 values (a "billion laughs"); anything that walks
# or formats such a config would take minutes and gigabytes, so it is refused at load time.
MAX_CONFIG_VALUES = 100_000

# the config's sections (an -o override naming another is refused); documented in docs/configs.md
SECTIONS = ("Global", "Arch", "Loss", "Optimizer", "DataLoader", "Infer", "Metric", "AMP", "EMA")


# ----------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` (no dot, as YAML 1.1 requires) as a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(text_or_stream: Any) -> Any:
    return yaml.load(text_or_stream, Loader=_Loader)


def load_yaml(path: str) -> dict:
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml_load(f)
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {bound_text(str(e), 600)}") from None
        except RecursionError:
            raise ConfigError(f"{path}: not a usable config: its values are nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {summarize(data)}")
    check_size(data, path)
    return data


def count_values(node: Any, limit: int = MAX_CONFIG_VALUES) -> int:
    """How many values ``node`` holds with YAML aliases expanded, counted up to just past ``limit``.

    Each distinct container is visited once (aliases share one Python object), so the cost is the
    size of the file, not of the expansion.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(node, False)]
    on_stack: set[int] = set()
    while stack:
        item, done = stack.pop()
        if not isinstance(item, (dict, list, tuple)):
            continue
        key = id(item)
        children = list(item.values()) if isinstance(item, dict) else list(item)
        if done:
            on_stack.discard(key)
            total = 1
            for child in children:
                total += sizes.get(id(child), 1) if isinstance(child, (dict, list, tuple)) else 1
                if total > limit:
                    break
            sizes[key] = min(total, limit + 1)
            continue
        if key in sizes or key in on_stack:
            continue
        on_stack.add(key)
        stack.append((item, True))
        stack.extend((child, False) for child in children if isinstance(child, (dict, list, tuple)))
    return sizes.get(id(node), 1) if isinstance(node, (dict, list, tuple)) else 1


def check_size(cfg: Any, source: str) -> None:
    """Refuse a config that expands (through YAML aliases) to more than :data:`MAX_CONFIG_VALUES` values."""
    if count_values(cfg) <= MAX_CONFIG_VALUES:
        return
    keys: list[str] = []
    node = cfg
    while isinstance(node, dict) and node and len(keys) < 6:  # down to the key that holds the expansion
        key = max(node, key=lambda k: count_values(node[k]))
        if count_values(node[key]) <= MAX_CONFIG_VALUES:
            break
        keys.append(_name(key))
        node = node[key]
    where = f"{'.'.join(keys)}: " if keys else ""
    raise ConfigError(
        f"{where}the config {source} holds more than {MAX_CONFIG_VALUES:,} values once its YAML aliases (*name) "
        "are expanded; a classification config has a few hundred. Write the values out, or check the anchors "
        "(&name) and aliases for ones that repeat each other"
    )


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``A.b.c=value`` into (["A", "b", "c"], parsed value)."""
    return config_syntax.parse_override(text, _OVERRIDES, yaml_load)


def _name(key: Any) -> str:
    """A user's key for a message: as written when short, summarised otherwise."""
    text = str(key) if isinstance(key, (str, int, float, bool)) or key is None else summarize(key, 80)
    return text if len(text) <= 80 else summarize(text, 80)


def _item_names(names: list[str]) -> str:
    return ", ".join(_name(n) for n in names[:20])


# ``deploy/python/config_syntax.py`` walks the config (one copy of the override parser for both sides,
# see its note); these are ppcls's sentences for the mistakes it finds
_OVERRIDES = OverrideRules(
    SECTIONS, error=ConfigError, show_key=_name, show_text=summarize, show_items=_item_names,
    not_an_assignment="-o {text}: not of the form Section.key=value",
    empty_key="-o {text}: the key before '=' is empty",
    nested_too_deeply="-o {key}: the value is nested too deeply",
    not_a_section="{where}: not a section, so -o {full}=... cannot set a key in it",
    arguments_not_a_mapping="{inner}: not a section, so -o {full}=... cannot set a key in it",
    unknown_section="{part}: unknown section (in -o {full}=...).{suggestion} Valid sections: {sections}",
    index_out_of_range="{where}: index out of range, the list has {size} items (-o override)",
    no_item="{where}: no list item named {part} (-o override).{suggestion} Items: {items}",
)


def apply_override(cfg: dict, path: list[str], value: Any) -> None:
    """Set ``cfg[path] = value``; list elements are addressed by index or by op name."""
    config_syntax.apply_override(cfg, path, value, _OVERRIDES)


# ----------------------------------------------------------------------------- key checks


def _type_ok(value: Any, types_: tuple | None) -> bool:
    if types_ is None:
        return True
    if isinstance(value, bool) and bool not in types_:
        return False
    return isinstance(value, types_)


def _type_names(types_: tuple) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types_)


def check_keys(where: str, section: Mapping, schema: Mapping[str, tuple | None]) -> None:
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {summarize(section)}")
    for key, value in section.items():
        if key not in schema:
            raise UnknownNameError(
                f"{where}.{_name(key)}: unknown key.{_suggest(str(key), schema)} "
                f"Valid keys: {', '.join(sorted(schema))}"
            )
        if not _type_ok(value, schema[key]):
            raise ConfigError(
                f"{where}.{_name(key)}: expected {_type_names(schema[key])}, got {summarize(value)}"
            )


def _hint_types(hint: Any) -> tuple | None:
    """Python types an annotation admits, or None when it is not a simple check."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        out: list = []
        for arg in typing.get_args(hint):
            sub = _hint_types(arg)
            if sub is None:
                return None
            out.extend(sub)
        return tuple(out)
    if hint is type(None) or hint is None:
        return (type(None),)
    if hint is float:
        return (int, float, str)  # str: fractions like 1.0/255.0 are parsed later
    if hint in (int, bool, str, dict):
        return (hint,)
    if origin in (list, tuple) or hint in (list, tuple):
        return (list, tuple)
    if origin in (dict,) or origin is typing.Mapping:
        return (dict,)
    return None


def check_kwargs(
    where: str,
    fn: Callable,
    kwargs: Mapping | None,
    extra: Iterable[str] = (),
    injected: Iterable[str] = (),
) -> None:
    """Check ``kwargs`` against ``fn``'s signature: unknown keys, missing ones, simple types.

    ``extra`` are keys consumed around ``fn``; ``injected`` are arguments the builder supplies.
    """
    kwargs = kwargs or {}
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"{where}: expected a mapping of arguments, got {summarize(kwargs)}")
    named, hints, var_kw = signature_params(fn)
    extra = set(extra)
    injected = set(injected)
    for key, value in kwargs.items():
        if key in extra:
            continue
        if key not in named:
            if var_kw:
                continue
            valid = sorted((set(named) - injected) | extra)
            raise UnknownNameError(
                f"{where}.{_name(key)}: unknown key.{_suggest(str(key), valid)} Valid keys: {', '.join(valid)}"
            )
        types_ = _hint_types(hints.get(key)) if key in hints else None
        if types_ is not None and value is not None and not _type_ok(value, types_):
            raise ConfigError(f"{where}.{key}: expected {_type_names(types_)}, got {summarize(value)}")
        if types_ is not None and float in types_ and isinstance(value, str):
            try:
                parse_number(value, f"{where}.{key}")
            except ValueError as e:
                raise ConfigError(str(e)) from None
    for key, p in named.items():
        if p.default is inspect.Parameter.empty and key not in kwargs and key not in injected:
            raise ConfigError(f"{where}.{key}: required, but not given")


def op_list(where: str, ops: Any) -> list[tuple[str, dict]]:
    """Turn ``[{Name: {kwargs}}, ...]`` into ``[(Name, kwargs), ...]`` with clear errors."""
    if ops is None:
        return []
    if not isinstance(ops, list):
        raise ConfigError(f"{where}: expected a list of {{Name: {{arguments}}}} items, got {summarize(ops)}")
    out = []
    for i, item in enumerate(ops):
        if isinstance(item, str):
            out.append((item, {}))
            continue
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"{where}[{i}]: expected one {{Name: {{arguments}}}} mapping, got {summarize(item)}")
        name, args = next(iter(item.items()))
        if args is not None and not isinstance(args, dict):
            raise ConfigError(f"{where}[{i}].{_name(name)}: expected a mapping of arguments, got {summarize(args)}")
        out.append((name, dict(args or {})))
    return out


def dump_config(cfg: Mapping) -> str:
    """The merged config as YAML text, for the start-of-run log."""
    return yaml.safe_dump(copy.deepcopy(dict(cfg)), sort_keys=False, default_flow_style=None)
