"""A weighted list of losses, as in ``Loss.Train: [{CELoss: {weight: 1.0}}, ...]``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import paddle
import paddle.nn as nn

from ppcls.registry import LOSSES
from ppcls.utils.config import op_list
from ppcls.utils.errors import ConfigError


class CombinedLoss(nn.Layer):
    """Returns ``{name: value, ..., "loss": weighted sum}``."""

    def __init__(self, items: Sequence[tuple[str, float, nn.Layer]]) -> None:
        super().__init__()
        if not items:
            raise ConfigError("Loss: the list of losses is empty")
        self.names = [name for name, _, _ in items]
        self.weights = [weight for _, weight, _ in items]
        self.losses = nn.LayerList([loss for _, _, loss in items])

    def forward(self, logits: paddle.Tensor, target: paddle.Tensor) -> dict[str, paddle.Tensor]:
        out: dict[str, paddle.Tensor] = {}
        total = None
        for name, weight, loss_fn in zip(self.names, self.weights, self.losses):
            value = loss_fn(logits, target)
            out[name] = value
            total = value * weight if total is None else total + value * weight
        out["loss"] = total
        return out


def build_loss(loss_cfg: Sequence[Any] | None, class_num: int | None = None) -> CombinedLoss | None:
    """Build the loss list of one split (``Loss.Train`` or ``Loss.Eval``); None if absent."""
    if not loss_cfg:
        return None
    items = []
    for name, args in op_list("Loss", loss_cfg):
        args = dict(args)
        weight = float(args.pop("weight", 1.0))
        items.append((name, weight, LOSSES.build_in_context(name, args, class_num=class_num)))
    return CombinedLoss(items)
