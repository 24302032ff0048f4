"""Freezing parameters for fine-tuning: no gradient, no optimizer state, fixed BN statistics."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import paddle.nn as nn

from ppcls.utils.errors import ConfigError, summarize

from .interface import ClassificationNet

logger = logging.getLogger(__name__)

_BN_TYPES = (nn.BatchNorm2D, nn.BatchNorm1D, nn.BatchNorm, nn.SyncBatchNorm)


def head_prefixes(model: nn.Layer) -> tuple[str, ...]:
    """Sublayer names of the classifier head (:attr:`ClassificationNet.head_names`)."""
    names = model.head_names if isinstance(model, ClassificationNet) else ()
    if not names:
        raise ConfigError(
            f"{type(model).__name__} is not a ClassificationNet declaring head_names, so Arch.freeze_backbone "
            "cannot tell its head; use Arch.freeze_params with parameter-name prefixes instead"
        )
    return tuple(names)


def matches_prefix(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p.rstrip(".") + ".") for p in prefixes)


class _FrozenBN:
    """Keeps frozen BatchNorm layers in eval mode even when ``model.train()`` is called."""

    def __init__(self, layers: list[nn.Layer]) -> None:
        self.layers = layers

    def __call__(self, layer: nn.Layer, inputs: tuple) -> None:
        for bn in self.layers:
            if bn.training:
                bn.eval()


def freeze_parameters(model: nn.Layer, freeze_backbone: bool = False, prefixes: Iterable[str] = ()) -> list[str]:
    """Freeze everything but the head (``freeze_backbone``) and/or parameters under ``prefixes``.

    Returns the frozen parameter names.
    """
    prefixes = [prefixes] if isinstance(prefixes, str) else list(prefixes)
    known = {name for name, _ in model.named_sublayers()} | {name for name, _ in model.named_parameters()}
    for p in prefixes:
        if not any(k == p.rstrip(".") or k.startswith(p.rstrip(".") + ".") for k in known):
            raise ConfigError(f"Arch.freeze_params: no parameter or layer named {summarize(p, 120)} in {type(model).__name__}")
    heads = head_prefixes(model) if freeze_backbone else ()
    frozen: list[str] = []
    for name, param in model.named_parameters():
        if (freeze_backbone and not matches_prefix(name, heads)) or matches_prefix(name, prefixes):
            param.stop_gradient = True
            frozen.append(name)
    frozen_bn = [
        layer for name, layer in model.named_sublayers()
        if isinstance(layer, _BN_TYPES) and layer.parameters() and all(p.stop_gradient for p in layer.parameters())
    ]
    if frozen_bn:
        model.register_forward_pre_hook(_FrozenBN(frozen_bn))
    total = len(list(model.named_parameters()))
    logger.info("froze %d of %d parameter tensors (%d BatchNorm layers keep their statistics)",
                len(frozen), total, len(frozen_bn))
    return frozen

