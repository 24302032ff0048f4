"""What a class or function accepts, read from its signature (the bottom layer: registries and config checks)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable


def signature_params(fn: Callable) -> tuple[dict[str, inspect.Parameter], dict, bool]:
    """(named parameters, resolved type hints, accepts **kwargs) of a class or function."""
    # a class whose __init__ forwards **kwargs to its base takes the base's keywords too
    targets = [c.__init__ for c in fn.__mro__ if "__init__" in vars(c) and c is not object] if inspect.isclass(fn) else [fn]
    named: dict[str, inspect.Parameter] = {}
    hints: dict = {}
    var_kw = False
    for target in targets or [fn]:
        params = dict(inspect.signature(target).parameters)
        params.pop("self", None)
        try:
            found = typing.get_type_hints(target)
        except Exception:  # an unresolvable annotation only costs the type check
            found = {}
        for k, p in params.items():
            if p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
                continue
            named.setdefault(k, p)
            if k in found:
                hints.setdefault(k, found[k])
        var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if not var_kw:
            break
    return named, hints, var_kw
