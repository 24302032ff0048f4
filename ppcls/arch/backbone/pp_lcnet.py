"""PP-LCNet: "PP-LCNet: A Lightweight CPU Convolutional Neural Network" (Cui et al., 2021).

Depthwise-separable blocks with hard-swish, SE only in the last two blocks, 5x5 depthwise
kernels in the late stages, and a 1280-d 1x1 conv after global pooling before the classifier.

``dropout_mode="downscale_in_infer"`` is PaddleClas's head (inference logits are ``fc((1 - p) x)``),
which its published weights need to reproduce their outputs; the default scales in training.
"""

from __future__ import annotations

import paddle
import paddle.nn as nn

from ppcls.registry import MODELS
from ppcls.utils.errors import ConfigError, summarize

from ..family import ModelFamily
from ..interface import ClassificationNet
from ..layers import ConvBNAct, SqueezeExcite, get_act, make_divisible
from ..weights.published import paddleclas

FAMILY = ModelFamily("PPLCNet")

# stage name -> rows of (kernel, in_channels, out_channels, stride, use_se) at width 1.0
ARCH: tuple[tuple[str, tuple[tuple[int, int, int, int, bool], ...]], ...] = (
    ("blocks2", ((3, 16, 32, 1, False),)),
    ("blocks3", ((3, 32, 64, 2, False), (3, 64, 64, 1, False))),
    ("blocks4", ((3, 64, 128, 2, False), (3, 128, 128, 1, False))),
    ("blocks5", ((3, 128, 256, 2, False),) + ((5, 256, 256, 1, False),) * 5),
    ("blocks6", ((5, 256, 512, 2, True), (5, 512, 512, 1, True))),
)
STEM_CHANNELS = 16
HEAD_CHANNELS = 1280
DROPOUT_MODES = ("upscale_in_train", "downscale_in_infer")


class DepthwiseSeparable(nn.Layer):
    """Depthwise kxk conv → optional SE → pointwise 1x1 conv, both with hard-swish."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        use_se: bool,
        act: str = "hardswish",
    ) -> None:
        super().__init__()
        self.dw_conv = ConvBNAct(
            in_channels, in_channels, kernel_size, stride, groups=in_channels, act=act
        )
        self.se = SqueezeExcite(in_channels, reduction=4) if use_se else nn.Identity()
        self.pw_conv = ConvBNAct(in_channels, out_channels, 1, act=act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.pw_conv(self.se(self.dw_conv(x)))


class PPLCNet(ClassificationNet):
    """PP-LCNet at width ``scale``; ``dropout_mode`` picks where dropout's scaling happens."""

    head_names = ("last_conv", "fc")

    def __init__(
        self,
        scale: float = 1.0,
        class_num: int = 1000,
        dropout_prob: float = 0.2,
        class_expand: int = HEAD_CHANNELS,
        act: str = "hardswish",
        dropout_mode: str = "upscale_in_train",
    ) -> None:
        super().__init__()
        if dropout_mode not in DROPOUT_MODES:
            raise ConfigError(
                f"PPLCNet dropout_mode {summarize(dropout_mode)} is not supported; valid: {', '.join(DROPOUT_MODES)}"
            )
        self.scale = scale
        self.class_num = class_num
        self.conv1 = ConvBNAct(3, make_divisible(STEM_CHANNELS * scale), 3, 2, act=act)
        for name, rows in ARCH:
            blocks = [
                DepthwiseSeparable(
                    make_divisible(cin * scale), make_divisible(cout * scale), k, s, se, act
                )
                for k, cin, cout, s, se in rows
            ]
            setattr(self, name, nn.Sequential(*blocks))
        self.num_features = make_divisible(ARCH[-1][1][-1][2] * scale)
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.last_conv = nn.Conv2D(self.num_features, class_expand, 1, bias_attr=False)
        self.head_act = get_act(act)
        # the mode decides where the 1 - p scaling happens: PaddleClas's weights were trained
        # unscaled and expect it at inference ("downscale_in_infer")
        self.dropout = nn.Dropout(p=dropout_prob, mode=dropout_mode) if dropout_prob > 0 else nn.Identity()
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.fc = nn.Linear(class_expand, class_num)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.conv1(x)
        for name, _ in ARCH:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.head_act(self.last_conv(self.avg_pool(x)))
        return self.fc(self.dropout(self.flatten(x)))


def _create_pplcnet(scale: float, **kwargs) -> PPLCNet:
    return PPLCNet(scale=scale, **kwargs)


@MODELS.register("PPLCNet", **FAMILY.entry(params=2_963_464, generic=True))
def pplcnet(**kwargs) -> PPLCNet:
    """PaddleClas's generic entry: the width comes from ``Arch.scale``."""
    return PPLCNet(**kwargs)


@MODELS.register(**FAMILY.entry(params=1_523_936, weights=paddleclas("PPLCNet_x0_25", "legendary_models")))
def PPLCNet_x0_25(**kwargs) -> PPLCNet:
    return _create_pplcnet(0.25, **kwargs)


@MODELS.register(**FAMILY.entry(params=1_646_930, weights=paddleclas("PPLCNet_x0_35", "legendary_models")))
def PPLCNet_x0_35(**kwargs) -> PPLCNet:
    return _create_pplcnet(0.35, **kwargs)


@MODELS.register(**FAMILY.entry(params=1_885_048, weights=paddleclas("PPLCNet_x0_5", "legendary_models", ssld=True)))
def PPLCNet_x0_5(**kwargs) -> PPLCNet:
    return _create_pplcnet(0.5, **kwargs)


@MODELS.register(**FAMILY.entry(params=2_365_232, weights=paddleclas("PPLCNet_x0_75", "legendary_models")))
def PPLCNet_x0_75(**kwargs) -> PPLCNet:
    return _create_pplcnet(0.75, **kwargs)


@MODELS.register(**FAMILY.entry(params=2_963_464, weights=paddleclas("PPLCNet_x1_0", "legendary_models", ssld=True)))
def PPLCNet_x1_0(**kwargs) -> PPLCNet:
    return _create_pplcnet(1.0, **kwargs)


@MODELS.register(**FAMILY.entry(params=4_516_248, weights=paddleclas("PPLCNet_x1_5", "legendary_models")))
def PPLCNet_x1_5(**kwargs) -> PPLCNet:
    return _create_pplcnet(1.5, **kwargs)


@MODELS.register(**FAMILY.entry(params=6_543_400, weights=paddleclas("PPLCNet_x2_0", "legendary_models")))
def PPLCNet_x2_0(**kwargs) -> PPLCNet:
    return _create_pplcnet(2.0, **kwargs)


@MODELS.register(**FAMILY.entry(params=9_044_920, weights=paddleclas("PPLCNet_x2_5", "legendary_models", ssld=True)))
def PPLCNet_x2_5(**kwargs) -> PPLCNet:
    return _create_pplcnet(2.5, **kwargs)
