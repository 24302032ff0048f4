"""What users write as text in a config: ``-o Section.key=value`` overrides and numbers like ``1.0/255.0``.

Design note (one copy for ppcls and deploy): deploy/ must run when copied alone, so the code lives
here and imports nothing outside deploy/; ppcls imports it (``ppcls/utils/config.py``,
``ppcls/utils/numbers.py``) as it imports deploy's other pure modules. Each side keeps its error
types and wording: :func:`parse_number` takes an :class:`~deploy.python.errors.ErrorKinds`, the
override functions an :class:`OverrideRules` (the config's sections, the error type, one sentence
per mistake); the defaults are deploy's.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from .errors import DEPLOY_ERRORS, DeployConfigError, ErrorKinds, few, short

_FRACTION = re.compile(r"^\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*/\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*$")
MAX_SUGGESTED_NAME = 200  # difflib is quadratic in the name's length: longer names get no suggestion


def suggest(name: str, valid: Iterable[str]) -> str:
    """`` Did you mean: a, b?`` for the names of ``valid`` close to ``name``, else an empty string."""
    name = str(name)
    if len(name) > MAX_SUGGESTED_NAME:
        return ""
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def parse_number(value: Any, where: str = "value", errors: ErrorKinds = DEPLOY_ERRORS) -> float:
    """A float from a number, a numeric string or a fraction like ``1.0/255.0`` (never ``eval``)."""
    if isinstance(value, bool):
        raise errors.config(f"{where}: expected a number, got the boolean {value}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _FRACTION.match(value)
        try:
            if match:
                return float(match.group(1)) / float(match.group(2))
            return float(value)
        except (ValueError, ZeroDivisionError):
            pass
    raise errors.config(f"{where}: expected a number or a fraction like 1.0/255.0, got {errors.show(value)}")


# ----------------------------------------------------------------------------- -o overrides


def _eight_names(names: list[str]) -> str:
    return few(names, 8)


@dataclass(frozen=True)
class OverrideRules:
    """A config's sections and how its override mistakes are told: the error type, how keys, texts,
    item lists and values are shown, and one ``str.format`` sentence per mistake. The defaults are
    deploy's wording; ``ppcls/utils/config.py`` passes its own. A sentence may leave fields out
    (``inner``, the key inside an op whose arguments are not a mapping, is there for ppcls's)."""

    sections: tuple[str, ...]
    error: type[Exception] = DeployConfigError
    show_key: Callable[[Any], str] = str
    show_text: Callable[[str], str] = str
    show_items: Callable[[list[str]], str] = _eight_names
    show_value: Callable[[Any], str] = short
    not_an_assignment: str = "override '{text}' is not of the form Section.key=value"
    empty_key: str = "override '{text}' has an empty key"
    nested_too_deeply: str = "override {key}: the value is nested too deeply"
    not_a_section: str = "override {full}: {where} is not a section"
    unknown_section: str = "override {full}: unknown section '{part}'.{suggestion} Valid sections: {sections}"
    arguments_not_a_mapping: str = "override {full}: the arguments of {where} are {args}, not a mapping of keys"
    index_out_of_range: str = "override {full}: {where}: index out of range (the list has {size} items)"
    no_item: str = "override {full}: no item '{part}' in {parent} ({items}).{suggestion}"

    def fail(self, sentence: str, **fields: Any) -> Exception:
        """The error to raise: ``sentence`` (one of the fields above) filled with ``fields``."""
        return self.error(sentence.format(**fields))


def parse_override(text: str, rules: OverrideRules,
                   load: Callable[[str], Any] = yaml.safe_load) -> tuple[list[str], Any]:
    """``A.b.c=value`` → (["A", "b", "c"], the value read by ``load``; the raw text if it is not YAML)."""
    if "=" not in text:
        raise rules.fail(rules.not_an_assignment, text=rules.show_text(text))
    key, raw = text.split("=", 1)
    if not key.strip():
        raise rules.fail(rules.empty_key, text=rules.show_text(text))
    try:
        value = load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise rules.fail(rules.nested_too_deeply, key=rules.show_text(key.strip())) from None
    return key.strip().split("."), value


def apply_override(cfg: dict, path: list[str], value: Any, rules: OverrideRules, text: str | None = None) -> None:
    """Set ``cfg[path] = value``; list items are addressed by index or by op name.

    ``transform_ops.ResizeImage.resize_short`` (or ``transform_ops.1.resize_short``) sets one
    argument of an op; ``transform_ops.ResizeImage`` replaces that op's arguments;
    ``transform_ops.1`` replaces the whole item. ``text`` names the override in errors.
    """
    full = text or ".".join(path)
    node: Any = cfg
    for i, part in enumerate(path):
        last = i == len(path) - 1
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            idx = _list_index(node, part, where, full, rules)
            by_name = not part.lstrip("-").isdigit()
            if isinstance(node[idx], str):  # `- ToCHWImage` written without arguments
                node[idx] = {node[idx]: None}
            if last:
                node[idx] = {part: value} if by_name else value
                return
            item = node[idx]
            if isinstance(item, dict) and len(item) == 1 and path[i + 1] not in item:
                op = next(iter(item))
                if item[op] is None:  # `- ResizeImage:` with no arguments yet
                    item[op] = {}
                node = item[op]  # `transform_ops.ResizeImage.resize_short` reaches into the op's arguments
                if not isinstance(node, dict):
                    raise rules.fail(rules.arguments_not_a_mapping, full=rules.show_key(full),
                                     where=rules.show_key(where), args=rules.show_value(node),
                                     inner=rules.show_key(".".join(path[: i + 2])))
            else:
                node = item
            continue
        if not isinstance(node, dict):
            raise rules.fail(rules.not_a_section, full=rules.show_key(full), where=rules.show_key(where))
        if last:
            node[part] = value
            return
        if node.get(part) is None:
            if i == 0 and part not in rules.sections:
                raise rules.fail(rules.unknown_section, full=rules.show_key(full), part=rules.show_key(part),
                                 suggestion=suggest(part, rules.sections), sections=", ".join(rules.sections))
            node[part] = {}
        node = node[part]


def _list_index(node: list, part: str, where: str, full: str, rules: OverrideRules) -> int:
    if part.lstrip("-").isdigit():
        idx = int(part)
        if not -len(node) <= idx < len(node):
            raise rules.fail(rules.index_out_of_range, full=rules.show_key(full), where=rules.show_key(where),
                             size=len(node))
        return idx
    for idx, item in enumerate(node):
        if (isinstance(item, dict) and part in item) or item == part:
            return idx
    names = [next(iter(x)) if isinstance(x, dict) else str(x) for x in node if x]
    raise rules.fail(rules.no_item, full=rules.show_key(full), where=rules.show_key(where), part=rules.show_key(part),
                     parent=rules.show_key(where.rsplit(".", 1)[0]), items=rules.show_items(names),
                     suggestion=suggest(part, names))
