"""ShuffleNet V2: "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design"
(Ma et al., 2018).

A 3x3 stride-2 stem and max-pool, three stages of units that split the channels in two, run a
1x1 → depthwise 3x3 → 1x1 branch on one half and concatenate it with the untouched half, then
shuffle the channels. The first unit of each stage has stride 2 and two branches over the full
input. A 1x1 conv widens the features before global pooling and the classifier.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import paddle
import paddle.nn as nn

from ppcls.registry import MODELS
from ppcls.utils.errors import ConfigError, summarize

from ..family import ModelFamily
from ..interface import ClassificationNet
from ..layers import ConvBNAct, channel_shuffle
from ..weights.published import paddleclas, torchvision

FAMILY = ModelFamily("ShuffleNet")

STAGE_REPEATS: tuple[int, ...] = (4, 8, 4)

# width -> (stem, stage2, stage3, stage4, last conv) output channels. The x0_25 and x0_33 rows
# are PaddleClas's own (not in the paper); they keep its pretrained weights loadable.
STAGE_CHANNELS: Mapping[float, tuple[int, int, int, int, int]] = MappingProxyType(
    {
        0.25: (24, 24, 48, 96, 512),
        0.33: (24, 32, 64, 128, 512),
        0.5: (24, 48, 96, 192, 1024),
        1.0: (24, 116, 232, 464, 1024),
        1.5: (24, 176, 352, 704, 1024),
        2.0: (24, 244, 488, 976, 2048),
    }
)


class ShuffleUnit(nn.Layer):
    """Stride-1 unit: split channels, transform one half (1x1, dw 3x3, 1x1), concat, shuffle."""

    def __init__(self, channels: int, act: str = "relu") -> None:
        super().__init__()
        half = channels // 2
        self.conv_pw = ConvBNAct(half, half, 1, act=act)
        self.conv_dw = ConvBNAct(half, half, 3, 1, groups=half, act=None)
        self.conv_linear = ConvBNAct(half, half, 1, act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x1, x2 = paddle.chunk(x, 2, axis=1)
        x2 = self.conv_linear(self.conv_dw(self.conv_pw(x2)))
        return channel_shuffle(paddle.concat([x1, x2], axis=1), 2)


class ShuffleDownUnit(nn.Layer):
    """Stride-2 unit: both branches see the whole input, each gives half the output channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, act: str = "relu") -> None:
        super().__init__()
        half = out_channels // 2
        # branch 1: dw 3x3 (stride) → 1x1
        self.conv_dw_1 = ConvBNAct(in_channels, in_channels, 3, stride, groups=in_channels, act=None)
        self.conv_linear_1 = ConvBNAct(in_channels, half, 1, act=act)
        # branch 2: 1x1 → dw 3x3 (stride) → 1x1
        self.conv_pw_2 = ConvBNAct(in_channels, half, 1, act=act)
        self.conv_dw_2 = ConvBNAct(half, half, 3, stride, groups=half, act=None)
        self.conv_linear_2 = ConvBNAct(half, half, 1, act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x1 = self.conv_linear_1(self.conv_dw_1(x))
        x2 = self.conv_linear_2(self.conv_dw_2(self.conv_pw_2(x)))
        return channel_shuffle(paddle.concat([x1, x2], axis=1), 2)


class ShuffleNetV2(ClassificationNet):
    head_names = ("fc",)

    def __init__(self, scale: float = 1.0, class_num: int = 1000, act: str = "relu") -> None:
        super().__init__()
        if scale not in STAGE_CHANNELS:
            valid = ", ".join(str(s) for s in STAGE_CHANNELS)
            raise ConfigError(f"ShuffleNetV2 scale {summarize(scale)} is not supported; valid: {valid}")
        self.scale = scale
        self.class_num = class_num
        stem, *stage_channels, last = STAGE_CHANNELS[scale]
        self.conv1 = ConvBNAct(3, stem, 3, 2, act=act)
        self.max_pool = nn.MaxPool2D(kernel_size=3, stride=2, padding=1)
        stages = []
        in_channels = stem
        for repeats, out_channels in zip(STAGE_REPEATS, stage_channels):
            units = [ShuffleDownUnit(in_channels, out_channels, 2, act)]
            units += [ShuffleUnit(out_channels, act) for _ in range(repeats - 1)]
            stages.append(nn.Sequential(*units))
            in_channels = out_channels
        self.stages = nn.Sequential(*stages)
        self.conv5 = ConvBNAct(in_channels, last, 1, act=act)
        self.num_features = last
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.fc = nn.Linear(last, class_num)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.max_pool(self.conv1(x))
        return self.conv5(self.stages(x))

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc(self.flatten(self.avg_pool(x)))


def _create_shufflenet_v2(scale: float, **kwargs) -> ShuffleNetV2:
    return ShuffleNetV2(scale=scale, **kwargs)


@MODELS.register(**FAMILY.entry(params=607_712, weights=paddleclas("ShuffleNetV2_x0_25")))
def ShuffleNetV2_x0_25(**kwargs) -> ShuffleNetV2:
    return _create_shufflenet_v2(0.25, **kwargs)


@MODELS.register(**FAMILY.entry(params=652_264, weights=paddleclas("ShuffleNetV2_x0_33")))
def ShuffleNetV2_x0_33(**kwargs) -> ShuffleNetV2:
    return _create_shufflenet_v2(0.33, **kwargs)


@MODELS.register(**FAMILY.entry(params=1_374_744, weights=(*paddleclas("ShuffleNetV2_x0_5"), torchvision("shufflenetv2_x0.5-f707e7126e.pth"))))
def ShuffleNetV2_x0_5(**kwargs) -> ShuffleNetV2:
    return _create_shufflenet_v2(0.5, **kwargs)


@MODELS.register(**FAMILY.entry(params=2_294_784, weights=(*paddleclas("ShuffleNetV2_x1_0"), torchvision("shufflenetv2_x1-5666bf0f80.pth"))))
def ShuffleNetV2_x1_0(**kwargs) -> ShuffleNetV2:
    return _create_shufflenet_v2(1.0, **kwargs)


@MODELS.register(**FAMILY.entry(params=3_527_064, weights=(*paddleclas("ShuffleNetV2_x1_5"), torchvision("shufflenetv2_x1_5-3c479a10.pth"))))
def ShuffleNetV2_x1_5(**kwargs) -> ShuffleNetV2:
    return _create_shufflenet_v2(1.5, **kwargs)


@MODELS.register(**FAMILY.entry(params=7_427_712, weights=(*paddleclas("ShuffleNetV2_x2_0"), torchvision("shufflenetv2_x2_0-8be3c8ee.pth"))))
def ShuffleNetV2_x2_0(**kwargs) -> ShuffleNetV2:
    return _create_shufflenet_v2(2.0, **kwargs)


@MODELS.register(**FAMILY.entry(params=2_294_784, weights=paddleclas("ShuffleNetV2_swish")))
def ShuffleNetV2_swish(**kwargs) -> ShuffleNetV2:
    """ShuffleNetV2 x1.0 with swish activations (PaddleClas's variant)."""
    kwargs.setdefault("act", "swish")
    return _create_shufflenet_v2(1.0, **kwargs)
