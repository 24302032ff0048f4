"""Activations built by name, so blocks can take ``act="hardswish"`` from a config."""

from __future__ import annotations

from collections.abc import Callable

import paddle.nn as nn

from ppcls.utils.errors import ConfigError, summarize

_ACTS: dict[str, Callable[[], nn.Layer]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "hard_swish": nn.Hardswish,
    "swish": nn.Swish,  # the same function as Silu; Paddle's swish kernel, as PaddleClas uses
    "silu": nn.Silu,
    "sigmoid": nn.Sigmoid,
    "hardsigmoid": nn.Hardsigmoid,
    "hard_sigmoid": nn.Hardsigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "tanh": nn.Tanh,
}


def act_names() -> list[str]:
    return sorted(_ACTS)


def get_act(act: str | None) -> nn.Layer:
    """Return a new activation layer for ``act``; ``None``/"none"/"identity" give Identity."""
    if act is None or str(act).lower() in ("none", "identity", "linear", ""):
        return nn.Identity()
    key = str(act).lower()
    if key not in _ACTS:
        raise ConfigError(f"unknown activation {summarize(act, 80)}; valid: {', '.join(act_names())}, none")
    return _ACTS[key]()
