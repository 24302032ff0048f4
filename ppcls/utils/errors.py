"""The project's error types, and bounded text for the messages that show a user's value.

Two kinds of failure reach a tool:

* a :class:`UserError` — the user's config, data, files, weights or command line (or the
  machine: a device this Paddle build lacks, a download that cannot be made) cannot be used.
  The message says what and where; the tools print it as one line and exit with status 2.
* anything else is a bug in this project (or in a library it calls): the tools print the
  traceback, say that it is a bug to report, and exit with status 1.

Each subclass also derives from the built-in type such errors had before (``ValueError``,
``KeyError``, ``FileNotFoundError``, ...), so ``except ValueError`` in callers keeps working.

A message that shows a value the user gave uses :func:`summarize`: a tensor or array is shown
by shape and dtype, long strings and collections are cut with their size, and the cost is
bounded by the summary's length, never by the value's (a YAML "billion laughs" value of 10^9
shared items is summarised in microseconds). :func:`bound_text` cuts a whole message.

Design note: :class:`UserError` is ``deploy.python.errors.UserError``, the one base of both sides'
user errors (deploy never imports ppcls, so the base lives there; ppcls may import deploy's pure
modules). A deploy error raised inside a tool (``tools/quantize.py`` runs deploy's quantization) is
therefore reported by ``ppcls/utils/cli.py`` exactly like these, with no translation. :data:`PPCLS_ERRORS`
tells the helpers shared with deploy which of the types below to raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploy.python.errors import ErrorKinds, UserError

SUMMARY_LIMIT = 200  # characters of one summarised value
MESSAGE_LIMIT = 2000  # characters of one user-error message on the screen
MESSAGE_LINES = 12  # lines of one user-error message on the screen
_MAX_DEPTH = 4  # nesting shown by summarize; deeper collections show their size only


class ConfigError(UserError, ValueError):
    """A config file, ``-o`` override or config value; the message names the dotted key first."""


class UnknownNameError(ConfigError, KeyError):
    """A name (model, loss, transform, metric, ...) or key that does not exist, with the closest ones."""


class ArgumentError(UserError, ValueError):
    """A tool's command-line arguments (``--class_num``, ``--out``, ...) that cannot be used."""


class DataError(UserError, ValueError):
    """A data list, class folder, label list or image that cannot be used; names file and line."""


class PathError(UserError, OSError):
    """A file or folder the user named that cannot be used as asked."""


class MissingFileError(PathError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class PathExistsError(PathError, FileExistsError):
    """A path the user named is already in use (e.g. a run folder holding another run)."""


class DownloadError(UserError, ConnectionError):
    """A download that cannot be made; the message says where a manually fetched file goes."""


class DependencyError(UserError, ImportError):
    """An optional package a requested feature needs is not installed; names the pip command."""


class DeviceError(UserError, RuntimeError):
    """The device or precision asked for is not available on this machine or Paddle build."""


# ----------------------------------------------------------------------------- bounded text


def summarize(value: Any, limit: int = SUMMARY_LIMIT) -> str:
    """A ``repr``-like text of ``value`` of at most about ``limit`` characters.

    Tensors and arrays are shown as ``Tensor(shape=[32, 3, 224, 224], dtype=float32)``; strings,
    byte strings and long numbers are cut with an ellipsis and their size; lists, tuples, sets
    and mappings show their first items and their length. The work done is bounded by ``limit``
    (and a fixed nesting depth), not by the size of ``value``.
    """
    out = _Summary(max(int(limit), 16))
    out.write(value, 0)
    return "".join(out.parts)


class _Summary:
    def __init__(self, limit: int) -> None:
        self.left = limit
        self.parts: list[str] = []

    def put(self, text: str) -> None:
        self.parts.append(text)
        self.left -= len(text)

    def write(self, value: Any, depth: int) -> None:
        if _is_array(value):
            self.put(_array_text(value))
        elif isinstance(value, (str, bytes, bytearray)):
            self.put(_text_summary(value, max(self.left, 16)))
        elif isinstance(value, bool) or value is None or isinstance(value, float):
            self.put(repr(value))
        elif isinstance(value, int):
            self.put(_int_summary(value, max(self.left, 16)))
        elif isinstance(value, Mapping):
            self._collection(value, depth, "{", "}", mapping=True)
        elif isinstance(value, (list, tuple, set, frozenset)):
            if isinstance(value, list):
                opener, closer = "[", "]"
            elif isinstance(value, tuple):
                opener, closer = "(", ")"
            else:
                opener, closer = "{", "}"
            self._collection(value, depth, opener, closer, mapping=False)
        else:
            self.put(_other_summary(value, max(self.left, 16)))

    def _collection(self, value: Any, depth: int, opener: str, closer: str, mapping: bool) -> None:
        n = len(value)
        kind = "entries" if mapping else "items"
        if n == 0:
            self.put(opener + closer if not isinstance(value, (set, frozenset)) else f"{type(value).__name__}()")
            return
        if depth >= _MAX_DEPTH or self.left <= 8:
            self.put(f"{opener}... ({n:,} {kind}){closer}")
            return
        self.put(opener)
        shown = 0
        items = value.items() if mapping else value
        for item in items:
            if self.left <= 8:
                break
            if shown:
                self.put(", ")
            if mapping:
                key, val = item
                self.write(key, depth + 1)
                self.put(": ")
                self.write(val, depth + 1)
            else:
                self.write(item, depth + 1)
            shown += 1
        if shown < n:
            self.put(f", ... ({n:,} {kind})" if shown else f"... ({n:,} {kind})")
        if isinstance(value, tuple) and n == 1 and shown == 1:
            self.put(",")
        self.put(closer)


def _is_array(value: Any) -> bool:
    if isinstance(value, (str, bytes, bytearray, Mapping, list, tuple, set, frozenset, int, float)):
        return False
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _array_text(value: Any) -> str:
    try:
        shape = [int(s) for s in value.shape]
    except Exception:  # an unusual shape object: show it as it prints
        shape = _other_summary(value.shape, 60)
    dtype = str(value.dtype).replace("paddle.", "")
    return f"{type(value).__name__}(shape={shape}, dtype={dtype})"


def _text_summary(value: str | bytes | bytearray, limit: int) -> str:
    text = repr(value[: limit + 1])  # escapes (\x00, \n) make the repr longer than the text
    if len(value) <= limit and len(text) <= limit + 2:
        return text
    unit = "characters" if isinstance(value, str) else "bytes"
    return f"{text[: max(limit - 24, 8)]}...{text[-1]} ({len(value):,} {unit})"


def _int_summary(value: int, limit: int) -> str:
    bits = value.bit_length()
    if bits > 3 * limit + 64:  # far too long to show; also avoids Python's int-to-str limit
        return f"<an integer of about {int(bits * 0.30103) + 1:,} digits>"
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: max(limit - 24, 8)]}... ({len(text):,} digits)"


def _other_summary(value: Any, limit: int) -> str:
    try:
        text = repr(value)
    except Exception as e:  # a broken __repr__ must not hide the message it was meant for
        return f"<{type(value).__name__} (repr failed: {type(e).__name__})>"
    first, *rest = text.splitlines() or [""]
    if len(first) <= limit and not rest:
        return first
    return f"{first[: max(limit - 24, 8)]}... ({len(text):,} characters)"


def bound_text(text: str, max_chars: int = MESSAGE_LIMIT, max_lines: int = MESSAGE_LINES) -> str:
    """``text`` cut to ``max_chars`` characters and ``max_lines`` lines, saying how much was cut."""
    if len(text) <= max_chars and text.count("\n") < max_lines:
        return text
    head = text[:max_chars]
    lines = head.split("\n")
    if len(lines) > max_lines:
        head = "\n".join(lines[:max_lines])
    omitted = len(text) - len(head)
    return f"{head} ... [{omitted:,} more characters not shown]"


# the helpers shared with deploy (deploy/python/files.py, config_syntax.py, postprocess.py) raise these
PPCLS_ERRORS = ErrorKinds(config=ConfigError, data=DataError, missing=MissingFileError, show=summarize)

__all__ = [
    "ArgumentError", "ConfigError", "DataError", "DependencyError", "DeviceError", "DownloadError",
    "MissingFileError", "PPCLS_ERRORS", "PathError", "PathExistsError", "UnknownNameError", "UserError",
    "bound_text", "summarize",
]
