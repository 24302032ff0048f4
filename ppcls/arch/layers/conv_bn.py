"""Conv → BatchNorm → activation, the one conv block of the project.

A depthwise convolution (``groups == in_channels == out_channels``, no bias) is a
:class:`ppcls.ops.DepthwiseConv2D`: the same parameter (``conv.weight``, same shape and
initialisation), computed by the fast CPU operator in eager CPU training and evaluation, and by
Paddle's own kernel everywhere else (GPU, ``to_static``, export).
"""

from __future__ import annotations

import paddle
import paddle.nn as nn

from ppcls.ops import DepthwiseConv2D

from .activation import get_act
from .reparam import fuse_conv_bn


class ConvBNAct(nn.Layer):
    """Conv2D (no bias) + BatchNorm2D + activation; ``reparameterize()`` folds the BN."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        act: str | None = "relu",
        bn: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if padding is None:
            padding = kernel_size // 2
        if groups == in_channels == out_channels and groups > 1 and not bias:
            self.conv = DepthwiseConv2D(in_channels, kernel_size, stride=stride, padding=padding)
        else:
            self.conv = nn.Conv2D(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                groups=groups,
                bias_attr=None if bias else False,
            )
        self.bn = nn.BatchNorm2D(out_channels) if bn else nn.Identity()
        self.act = get_act(act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.act(self.bn(self.conv(x)))

    @paddle.no_grad()
    def reparameterize(self) -> None:
        """Fold the BatchNorm into the convolution (harmless when already folded)."""
        if not isinstance(self.bn, nn.BatchNorm2D):
            return
        conv = self.conv
        weight, bias = fuse_conv_bn(conv.weight, getattr(conv, "bias", None), self.bn)
        if isinstance(conv, DepthwiseConv2D):
            channels = conv._channels
            fused = nn.Conv2D(channels, channels, conv._kernel_size, stride=conv._stride, padding=conv._padding,
                              dilation=conv._dilation, groups=channels)
        else:
            fused = nn.Conv2D(
                conv._in_channels,
                conv._out_channels,
                conv._kernel_size,
                stride=conv._stride,
                padding=conv._padding,
                dilation=conv._dilation,
                groups=conv._groups,
            )
        fused.weight.set_value(weight)
        fused.bias.set_value(bias)
        self.conv = fused
        self.bn = nn.Identity()
