"""Model building from the ``Arch`` config section."""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Mapping
from typing import Any

import paddle.nn as nn

from ppcls.registry import MODELS

from . import backbone  # noqa: F401  (registers every family)

logger = logging.getLogger(__name__)

# Arch keys handled around the backbone rather than passed to its constructor.
WRAPPER_KEYS = ("name", "pretrained", "freeze_backbone", "freeze_params", "use_ssld")


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


def build_model(arch_cfg: Mapping[str, Any]) -> nn.Layer:
    """Build the backbone named ``arch_cfg['name']`` with the other keys as arguments.

    ``pretrained`` (a path or URL) loads weights; ``freeze_backbone``/``freeze_params``
    freeze parameters (see :func:`ppcls.arch.freeze.freeze_parameters`).
    """
    if "name" not in arch_cfg:
        raise KeyError("Arch.name is missing: name a registered model, e.g. PPLCNet_x1_0")
    name = arch_cfg["name"]
    entry = MODELS.get(name)
    kwargs = {k: v for k, v in arch_cfg.items() if k not in WRAPPER_KEYS}
    allowed = model_arguments(name)
    if allowed is not None:
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise KeyError(
                f"Arch.{unknown[0]} is not an argument of model {name}; "
                f"valid keys: {', '.join(sorted(set(allowed) | set(WRAPPER_KEYS)))}"
            )
    if arch_cfg.get("use_ssld"):
        logger.warning("Arch.use_ssld is accepted for PaddleClas compatibility and ignored")
    model = entry(**kwargs)
    pretrained = arch_cfg.get("pretrained")
    if pretrained and not isinstance(pretrained, bool):
        from .pretrained import load_pretrained

        load_pretrained(model, str(pretrained))
    elif pretrained is True:
        raise ValueError(
            f"Arch.pretrained: True needs downloadable weights for {name}, which this project "
            "does not host; give a local path or an http(s) URL of a .pdparams file instead"
        )
    if arch_cfg.get("freeze_backbone") or arch_cfg.get("freeze_params"):
        from .freeze import freeze_parameters

        freeze_parameters(
            model,
            freeze_backbone=bool(arch_cfg.get("freeze_backbone")),
            prefixes=arch_cfg.get("freeze_params") or (),
        )
    return model


__all__ = ["build_model", "model_arguments", "model_class"]
