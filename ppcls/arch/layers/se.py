"""Squeeze-and-excitation."""

from __future__ import annotations

import paddle
import paddle.nn as nn

from .activation import get_act


class SqueezeExcite(nn.Layer):
    """Global pool → 1x1 reduce (bias) → act → 1x1 expand (bias) → gate → scale input."""

    def __init__(
        self,
        channels: int,
        reduction: int = 4,
        rd_channels: int | None = None,
        act: str = "relu",
        gate: str = "hardsigmoid",
    ) -> None:
        super().__init__()
        rd = rd_channels or max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.reduce = nn.Conv2D(channels, rd, 1)
        self.act = get_act(act)
        self.expand = nn.Conv2D(rd, channels, 1)
        self.gate = get_act(gate)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        s = self.gate(self.expand(self.act(self.reduce(self.pool(x)))))
        return x * s
