"""MobileNeXt: "Rethinking Bottleneck Structure for Efficient Mobile Network Design"
(Zhou et al., ECCV 2020).

The sandglass block flips MobileNetV2's inverted residual: the shortcut joins the wide ends,
and the block squeezes in the middle (depthwise 3x3 → linear 1x1 reduction → 1x1 expansion
→ depthwise 3x3). The layout of each block follows the authors' released code, which the
parameter counts of the paper's models pin down:

* the first block of the network (the ``t = 2`` stage) and the one-block stride-1 stage keep
  both depthwise convs, without a shortcut;
* the other width-changing blocks drop the leading depthwise conv and keep the trailing one
  only when they downsample;
* repeated blocks are full sandglasses with an identity shortcut;
* the reduced width is ``in // t``, raised to ``ceil(out / 6)`` rounded to a multiple of 16
  when smaller than that;
* the final 1280-wide stage does not shrink below 1280 for width multipliers under 1.
"""

from __future__ import annotations

import math

import paddle
import paddle.nn as nn

from ppcls.registry import MODELS

from ..family import ModelFamily
from ..interface import ClassificationNet
from ..layers import ConvBNAct, make_divisible
from ..weights.published import paddleclas

FAMILY = ModelFamily("MobileNeXt")

# rows of (t = reduction ratio, c = output channels at width 1.0, n = blocks, s = first stride)
ARCH: tuple[tuple[int, int, int, int], ...] = (
    (2, 96, 1, 2),
    (6, 144, 1, 1),
    (6, 192, 3, 2),
    (6, 288, 3, 2),
    (6, 384, 4, 1),
    (6, 576, 4, 2),
    (6, 960, 3, 1),
    (6, 1280, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


class SandglassBlock(nn.Layer):
    """Depthwise 3x3 (ReLU6) → 1x1 reduce (linear) → 1x1 expand (ReLU6) → depthwise 3x3 (linear).

    ``dw_in``/``dw_out`` drop the outer depthwise convs for the width-changing blocks; the
    stride sits on the trailing depthwise conv. The shortcut joins input and output (both
    high-dimensional) when ``stride == 1`` and the widths match.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden_channels: int,
        stride: int = 1,
        dw_in: bool = True,
        dw_out: bool = True,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"SandglassBlock stride must be 1 or 2, got {stride}")
        if stride == 2 and not dw_out:
            raise ValueError("a stride-2 SandglassBlock needs its trailing depthwise conv")
        self.dw_in = (
            ConvBNAct(in_channels, in_channels, 3, groups=in_channels, act="relu6")
            if dw_in
            else nn.Identity()
        )
        self.reduce = ConvBNAct(in_channels, hidden_channels, 1, act=None)
        self.expand = ConvBNAct(hidden_channels, out_channels, 1, act="relu6")
        self.dw_out = (
            ConvBNAct(out_channels, out_channels, 3, stride, groups=out_channels, act=None)
            if dw_out
            else nn.Identity()
        )
        self.use_shortcut = stride == 1 and in_channels == out_channels

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        out = self.dw_out(self.expand(self.reduce(self.dw_in(x))))
        return out + x if self.use_shortcut else out


def _hidden_channels(in_channels: int, out_channels: int, reduction: int) -> int:
    hidden = in_channels // reduction
    if hidden < out_channels / 6:
        hidden = make_divisible(math.ceil(out_channels / 6), 16)
    return hidden


class MobileNeXt(ClassificationNet):
    head_names = ("fc",)

    def __init__(
        self,
        scale: float = 1.0,
        class_num: int = 1000,
        dropout_prob: float = 0.2,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.class_num = class_num
        in_ch = make_divisible(STEM_CHANNELS * scale)
        self.stem = ConvBNAct(3, in_ch, 3, 2, act="relu6")
        blocks = []
        for stage_idx, (t, c, n, s) in enumerate(ARCH):
            out_ch = make_divisible(c * scale)
            if c == LAST_CHANNELS and scale < 1.0:
                out_ch = LAST_CHANNELS
            single_stride1 = n == 1 and s == 1
            for i in range(n):
                stride = s if i == 0 else 1
                full = stage_idx == 0 or in_ch == out_ch or single_stride1
                blocks.append(
                    SandglassBlock(
                        in_ch,
                        out_ch,
                        _hidden_channels(in_ch, out_ch, t),
                        stride,
                        dw_in=full,
                        dw_out=full or stride == 2,
                    )
                )
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.num_features = in_ch
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.dropout = nn.Dropout(p=dropout_prob) if dropout_prob > 0 else nn.Identity()
        self.fc = nn.Linear(self.num_features, class_num)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.blocks(self.stem(x))

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc(self.dropout(self.flatten(self.avg_pool(x))))


def _create_mobilenext(scale: float, **kwargs) -> MobileNeXt:
    return MobileNeXt(scale=scale, **kwargs)


@MODELS.register(**FAMILY.entry(params=1_936_344))
def MobileNeXt_x0_35(**kwargs) -> MobileNeXt:
    return _create_mobilenext(0.35, **kwargs)


@MODELS.register(**FAMILY.entry(params=2_181_600))
def MobileNeXt_x0_5(**kwargs) -> MobileNeXt:
    return _create_mobilenext(0.5, **kwargs)


@MODELS.register(**FAMILY.entry(params=2_807_424))
def MobileNeXt_x0_75(**kwargs) -> MobileNeXt:
    return _create_mobilenext(0.75, **kwargs)


@MODELS.register(**FAMILY.entry(params=3_588_440, weights=paddleclas("MobileNeXt_x1_0")))
def MobileNeXt_x1_0(**kwargs) -> MobileNeXt:
    return _create_mobilenext(1.0, **kwargs)


@MODELS.register(**FAMILY.entry(params=6_200_424))
def MobileNeXt_x1_4(**kwargs) -> MobileNeXt:
    return _create_mobilenext(1.4, **kwargs)
