"""What a registered model entry builds and accepts, read from its signature and return annotation.

Below :mod:`ppcls.arch` (the weights loader needs it too), so it imports only the registry.
"""

from __future__ import annotations

import inspect
import typing

from ppcls.registry import MODELS


def model_class(name: str) -> type | None:
    """The network class a registered entry function returns (from its return annotation)."""
    entry = MODELS.get(name)
    if inspect.isclass(entry):
        return entry
    try:
        hints = typing.get_type_hints(entry)
    except Exception:  # an unresolvable annotation only costs us the key check
        return None
    ret = hints.get("return")
    return ret if inspect.isclass(ret) else None


def model_arguments(name: str) -> dict[str, inspect.Parameter] | None:
    """Keyword arguments the model called ``name`` accepts, or None when it takes any."""
    cls = model_class(name)
    target = cls.__init__ if cls is not None else MODELS.get(name)
    params = dict(inspect.signature(target).parameters)
    params.pop("self", None)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {k: p for k, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL}


__all__ = ["model_arguments", "model_class"]
