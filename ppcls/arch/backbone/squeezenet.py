"""SqueezeNet: "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model
size" (Iandola et al., 2016), versions 1.0 and 1.1.

A stem conv, eight Fire modules (1x1 squeeze, then 1x1 and 3x3 expands concatenated) with max
pools between them, dropout, and a 1x1 conv classifier with ReLU followed by global average
pooling. All convs have biases and no BatchNorm. Version 1.1 uses a 3x3 stem and moves the
pools earlier, for 2.4x less computation at the same accuracy.

The defaults are PaddleClas's architecture. ``ceil_mode=True``, ``stem_padding=0`` (1.1) and
``dropout_mode="upscale_in_train"`` give torchvision's (and Caffe's) instead, which its
published weights need to reproduce their outputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Union

import paddle
import paddle.nn as nn

from ppcls.registry import MODELS
from ppcls.utils.errors import ConfigError, summarize

from ..family import ModelFamily
from ..interface import ClassificationNet
from ..layers import ConvBNAct
from ..weights.published import paddleclas, torchvision

FAMILY = ModelFamily("SqueezeNet")

POOL = "M"
POOL_KERNEL, POOL_STRIDE = 3, 2
DROPOUT_MODES = ("downscale_in_infer", "upscale_in_train")

# version -> (stem (out_channels, kernel, stride, padding), body). A body row is either POOL
# (3x3 stride-2 max pool) or a Fire module (squeeze, expand1x1, expand3x3).
FireRow = Union[str, tuple[int, int, int]]
ARCH: Mapping[str, tuple[tuple[int, int, int, int], tuple[FireRow, ...]]] = MappingProxyType(
    {
        "1.0": (
            (96, 7, 2, 0),
            (
                POOL,
                (16, 64, 64),
                (16, 64, 64),
                (32, 128, 128),
                POOL,
                (32, 128, 128),
                (48, 192, 192),
                (48, 192, 192),
                (64, 256, 256),
                POOL,
                (64, 256, 256),
            ),
        ),
        "1.1": (
            (64, 3, 2, 1),
            (
                POOL,
                (16, 64, 64),
                (16, 64, 64),
                POOL,
                (32, 128, 128),
                (32, 128, 128),
                POOL,
                (48, 192, 192),
                (48, 192, 192),
                (64, 256, 256),
                (64, 256, 256),
            ),
        ),
    }
)


def _conv_relu(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0
) -> ConvBNAct:
    """Conv with bias + ReLU, no BatchNorm (SqueezeNet predates BN)."""
    return ConvBNAct(in_channels, out_channels, kernel_size, stride, padding, act="relu", bn=False, bias=True)


class Fire(nn.Layer):
    """1x1 squeeze → (1x1 expand ‖ 3x3 expand), concatenated along channels."""

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = _conv_relu(in_channels, squeeze, 1)
        self.expand1x1 = _conv_relu(squeeze, expand1x1, 1)
        self.expand3x3 = _conv_relu(squeeze, expand3x3, 3, padding=1)
        self.out_channels = expand1x1 + expand3x3

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.squeeze(x)
        return paddle.concat([self.expand1x1(x), self.expand3x3(x)], axis=1)


def _out_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool = False) -> int:
    """Output length of a conv or pool as Paddle computes it (C division, truncating toward 0)."""
    span = size + 2 * padding - kernel + (stride - 1 if ceil_mode else 0)
    return max(0, int(span / stride) + 1)


def _validate_options(stem_padding: int | None, ceil_mode: bool, dropout_mode: str) -> None:
    """Raise ValueError with a sentence for a bad architecture option."""
    if not isinstance(ceil_mode, bool):
        raise ConfigError(f"SqueezeNet ceil_mode must be true or false, not {summarize(ceil_mode)}")
    if stem_padding is not None and (
        isinstance(stem_padding, bool) or not isinstance(stem_padding, int) or stem_padding < 0
    ):
        raise ConfigError(
            f"SqueezeNet stem_padding must be a non-negative integer or null (the version's own), "
            f"not {summarize(stem_padding)}"
        )
    if dropout_mode not in DROPOUT_MODES:
        raise ConfigError(
            f"SqueezeNet dropout_mode {summarize(dropout_mode)} is not supported; valid: {', '.join(DROPOUT_MODES)}"
        )


class SqueezeNet(ClassificationNet):
    """SqueezeNet 1.0/1.1; ``stem_padding=None`` keeps the version's table value."""

    head_names = ("final_conv",)

    def __init__(
        self,
        version: str = "1.0",
        class_num: int = 1000,
        dropout_prob: float = 0.5,
        ceil_mode: bool = False,
        stem_padding: int | None = None,
        dropout_mode: str = "downscale_in_infer",
    ) -> None:
        super().__init__()
        version = str(version)
        if version not in ARCH:
            raise ConfigError(f"SqueezeNet version {summarize(version)} is not supported; valid: {', '.join(ARCH)}")
        _validate_options(stem_padding, ceil_mode, dropout_mode)
        self.version = version
        self.class_num = class_num
        (stem_channels, kernel, stride, padding), body = ARCH[version]
        if stem_padding is not None:
            padding = stem_padding
        self.stem = _conv_relu(3, stem_channels, kernel, stride, padding)
        layers: list[nn.Layer] = []
        channels = stem_channels
        for row in body:
            if row == POOL:
                # floor mode by default as in PaddleClas; Caffe and torchvision use ceil mode.
                # Only the spatial sizes differ, never the weights.
                layers.append(nn.MaxPool2D(POOL_KERNEL, POOL_STRIDE, padding=0, ceil_mode=ceil_mode))
            else:
                fire = Fire(channels, *row)
                layers.append(fire)
                channels = fire.out_channels
        self.features = nn.Sequential(*layers)
        self.num_features = channels
        self.min_input_size = self._min_input_size((kernel, stride, padding), body, ceil_mode)
        # "downscale_in_infer" (PaddleClas) scales by 1 - p at inference, "upscale_in_train"
        # (torchvision) by 1 / (1 - p) in training: the same weights give different logits
        self.dropout = nn.Dropout(p=dropout_prob, mode=dropout_mode) if dropout_prob > 0 else nn.Identity()
        self.final_conv = self.new_classifier(class_num)
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)

    @staticmethod
    def _min_input_size(stem: tuple[int, int, int], body: tuple[FireRow, ...], ceil_mode: bool) -> int:
        """The smallest input side whose feature map is not empty (Fire modules keep the size)."""
        size = 1
        while True:
            out = _out_size(size, *stem)
            for row in body:
                if row == POOL:
                    out = _out_size(out, POOL_KERNEL, POOL_STRIDE, 0, ceil_mode)
            if out > 0:
                return size
            size += 1

    def new_classifier(self, class_num: int) -> ConvBNAct:
        """The classifier is a 1x1 conv with ReLU, pooled afterwards (as in the paper)."""
        return _conv_relu(self.num_features, class_num, 1)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        in_size = x.shape[2:]
        # the unpadded pools shrink small inputs to empty maps, which would pool to garbage;
        # checked in eager mode only: traced sizes are -1 or tensors, and an export's are declared
        if paddle.in_dynamic_mode() and any(0 <= s < self.min_input_size for s in in_size):
            side = self.min_input_size
            raise ConfigError(
                f"input of spatial size {list(in_size)} is too small for SqueezeNet "
                f"{self.version}: its feature map is empty (use at least {side}x{side})"
            )
        return self.features(self.stem(x))

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.final_conv(self.dropout(x))
        return self.flatten(self.avg_pool(x))


def _create_squeezenet(version: str, **kwargs) -> SqueezeNet:
    return SqueezeNet(version=version, **kwargs)


@MODELS.register(**FAMILY.entry(params=1_248_424, weights=(*paddleclas("SqueezeNet1_0"), torchvision("squeezenet1_0-b66bff10.pth"))))
def SqueezeNet1_0(**kwargs) -> SqueezeNet:
    return _create_squeezenet("1.0", **kwargs)


@MODELS.register(**FAMILY.entry(params=1_235_496, weights=(*paddleclas("SqueezeNet1_1"), torchvision("squeezenet1_1-b8a52dc0.pth"))))
def SqueezeNet1_1(**kwargs) -> SqueezeNet:
    return _create_squeezenet("1.1", **kwargs)
