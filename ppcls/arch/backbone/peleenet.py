"""PeleeNet: "Pelee: A Real-Time Object Detection System on Mobile Devices"
(Wang, Li and Ling, NeurIPS 2018).

A DenseNet variant: a stem block with a conv branch and a max-pool branch, two-way dense
layers (one 3x3 and one stacked 3x3-3x3 path, each adding half the growth rate), a dynamic
bottleneck width per stage, transition 1x1 convs without compression, and post-activation
conv-BN-ReLU everywhere.
"""

from __future__ import annotations

import logging

import paddle
import paddle.nn as nn

from ppcls.registry import MODELS
from ppcls.utils.errors import ConfigError, summarize

from ..family import ModelFamily
from ..interface import ClassificationNet
from ..layers import ConvBNAct
from ..weights.published import paddleclas

FAMILY = ModelFamily("PeleeNet")

logger = logging.getLogger(__name__)

# stage rows of (dense layers, bottleneck width); 2x2 average pooling follows every stage
# but the last
ARCH: tuple[tuple[int, int], ...] = ((3, 1), (4, 2), (8, 4), (6, 4))
GROWTH_RATE = 32
STEM_CHANNELS = 32


class StemBlock(nn.Layer):
    """3x3 s2 conv, then [1x1 → 3x3 s2] ‖ [2x2 max-pool s2], fused by a 1x1 conv (4x down)."""

    def __init__(self, in_channels: int = 3, out_channels: int = STEM_CHANNELS) -> None:
        super().__init__()
        mid = out_channels // 2
        self.stem1 = ConvBNAct(in_channels, out_channels, 3, 2)
        self.branch_conv = nn.Sequential(
            ConvBNAct(out_channels, mid, 1),
            ConvBNAct(mid, out_channels, 3, 2),
        )
        self.branch_pool = nn.MaxPool2D(kernel_size=2, stride=2)
        self.fuse = ConvBNAct(2 * out_channels, out_channels, 1)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.stem1(x)
        x = paddle.concat([self.branch_pool(x), self.branch_conv(x)], axis=1)
        return self.fuse(x)


def _bottleneck_channels(in_channels: int, branch_channels: int, width: int) -> int:
    """Bottleneck width of a two-way dense layer, capped at half the input channels.

    The cap keeps the first layers of a stage (few input channels, wide bottleneck) from
    spending more compute in the bottleneck than the dense connection carries.
    """
    inter = int(branch_channels * width / 4) * 4
    if inter > in_channels / 2:
        inter = int(in_channels / 8) * 4
        logger.debug("PeleeNet: bottleneck of a %d-channel dense layer reduced to %d", in_channels, inter)
    return inter


class TwoWayDenseLayer(nn.Layer):
    """Two branches of ``growth_rate / 2`` channels each, concatenated to the input."""

    def __init__(self, in_channels: int, growth_rate: int, bottleneck_width: int) -> None:
        super().__init__()
        branch = growth_rate // 2
        inter = _bottleneck_channels(in_channels, branch, bottleneck_width)
        self.branch1 = nn.Sequential(
            ConvBNAct(in_channels, inter, 1),
            ConvBNAct(inter, branch, 3),
        )
        self.branch2 = nn.Sequential(
            ConvBNAct(in_channels, inter, 1),
            ConvBNAct(inter, branch, 3),
            ConvBNAct(branch, branch, 3),
        )

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return paddle.concat([x, self.branch1(x), self.branch2(x)], axis=1)


class DenseStage(nn.Layer):
    """Dense layers → transition 1x1 conv (no compression) → optional 2x2 average pooling."""

    def __init__(
        self,
        in_channels: int,
        num_layers: int,
        growth_rate: int,
        bottleneck_width: int,
        pool: bool,
    ) -> None:
        super().__init__()
        layers = [
            TwoWayDenseLayer(in_channels + i * growth_rate, growth_rate, bottleneck_width)
            for i in range(num_layers)
        ]
        self.layers = nn.Sequential(*layers)
        self.out_channels = in_channels + num_layers * growth_rate
        self.transition = ConvBNAct(self.out_channels, self.out_channels, 1)
        self.pool = nn.AvgPool2D(kernel_size=2, stride=2) if pool else nn.Identity()

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.pool(self.transition(self.layers(x)))


class PeleeNet(ClassificationNet):
    head_names = ("fc",)

    def __init__(
        self,
        class_num: int = 1000,
        growth_rate: int = GROWTH_RATE,
        stem_channels: int = STEM_CHANNELS,
        dropout_prob: float = 0.05,
    ) -> None:
        super().__init__()
        if growth_rate % 2:
            raise ConfigError(f"PeleeNet growth_rate must be even (two branches), got {summarize(growth_rate)}")
        self.class_num = class_num
        self.stem = StemBlock(3, stem_channels)
        channels = stem_channels
        stages = []
        for idx, (num_layers, width) in enumerate(ARCH):
            stage = DenseStage(channels, num_layers, growth_rate, width, idx < len(ARCH) - 1)
            stages.append(stage)
            channels = stage.out_channels
        self.stages = nn.Sequential(*stages)
        self.num_features = channels
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.dropout = nn.Dropout(p=dropout_prob) if dropout_prob > 0 else nn.Identity()
        self.fc = nn.Linear(self.num_features, class_num)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc(self.dropout(self.flatten(self.avg_pool(x))))


def _create_peleenet(**kwargs) -> PeleeNet:
    return PeleeNet(**kwargs)


@MODELS.register("PeleeNet", **FAMILY.entry(params=2_811_976, weights=paddleclas("PeleeNet")))
def peleenet(**kwargs) -> PeleeNet:
    return _create_peleenet(**kwargs)
