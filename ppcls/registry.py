"""Name → builder registries: everything a config names is looked up here."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from ppcls.utils.errors import UnknownNameError, summarize
from ppcls.utils.signature import signature_params

T = TypeVar("T", bound=Callable[..., Any])


class Registry:
    """A mapping from config names to callables (classes or factory functions).

    An entry may carry metadata (for models: family, input size, normalisation, parameter count
    and published weights; see :mod:`ppcls.arch.family`), given as keyword arguments to
    :meth:`register`, read with :meth:`metadata` and selected on with :meth:`list`.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._items: dict[str, Callable[..., Any]] = {}
        self._meta: dict[str, Mapping[str, Any]] = {}

    def register(self, name: str | None = None, **metadata: Any) -> Callable[[T], T]:
        """Decorator registering a callable under ``name`` (default: its ``__name__``)."""

        def deco(obj: T) -> T:
            key = name or obj.__name__
            if key in self._items:
                raise KeyError(f"{self.name} registry already has an entry named '{key}'")
            self._items[key] = obj
            self._meta[key] = MappingProxyType(dict(metadata))
            return obj

        return deco

    def unregister(self, name: str) -> Callable[..., Any]:
        """Remove entry ``name`` and return it (for code that registers for a while, such as tests)."""
        entry = self.get(name)
        del self._items[name], self._meta[name]
        return entry

    def metadata(self, name: str) -> Mapping[str, Any]:
        """The metadata registered with entry ``name`` (empty when none was given)."""
        self.get(name)
        return self._meta[name]

    def list(self, pattern: str = "*", **where: Any) -> list[str]:
        """Entry names matching a shell-style ``pattern`` (``"PPLCNet_*"``) and ``where``, sorted.

        Each ``where`` item selects entries whose metadata value equals it (``family="ParNet"``), or,
        given a callable, for which it returns true (``weights=bool``: models with published weights).
        An entry without that metadata key does not match.
        """
        missing = object()

        def matches(name: str) -> bool:
            meta = self._meta[name]
            for key, want in where.items():
                have = meta.get(key, missing)
                if have is missing or not (want(have) if callable(want) else have == want):
                    return False
            return True

        return sorted(n for n in self._items if fnmatch.fnmatchcase(n, pattern) and matches(n))

    def get(self, name: str) -> Callable[..., Any]:
        """Return the entry called ``name``; unknown names raise with the closest matches."""
        if not isinstance(name, str) or name not in self._items:
            raise UnknownNameError(self.unknown_message(name))
        return self._items[name]

    def unknown_message(self, name: Any) -> str:
        short = isinstance(name, str) and len(name) <= 100
        shown = f"'{name}'" if short else summarize(name, 100)
        close = difflib.get_close_matches(name, self._items, n=3, cutoff=0.5) if short else []
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return (
            f"unknown {self.name} name {shown}.{hint} "
            f"Valid {self.name} names: {', '.join(sorted(self._items))}"
        )

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)

    def build_in_context(self, name: str, args: Mapping[str, Any], **context: Any) -> Any:
        """Build ``name`` with the config's ``args``, plus each ``context`` value (e.g. the run's ``class_num``)
        that the entry takes as a named parameter and the config does not set itself."""
        return self.get(name)(**with_context(self.get(name), args, **context))

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.name!r}, {len(self)} entries)"


MODELS = Registry("model")
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer")
LRS = Registry("lr schedule")
DATASETS = Registry("dataset")
TRANSFORMS = Registry("transform")
BATCH_TRANSFORMS = Registry("batch transform")
METRICS = Registry("metric")
POSTPROCESS = Registry("postprocess")
WEIGHT_FORMATS = Registry("weights format")


def with_context(fn: Callable[..., Any], args: Mapping[str, Any], **context: Any) -> dict[str, Any]:
    """``args`` plus each ``context`` value ``fn`` takes as a named parameter and ``args`` does not set."""
    named, _, _ = signature_params(fn)
    return {**{k: v for k, v in context.items() if k in named}, **args}
