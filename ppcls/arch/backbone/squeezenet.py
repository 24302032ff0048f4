"""SqueezeNet: "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model
size" (Iandola et al., 2016), versions 1.0 and 1.1.

A stem conv, eight Fire modules (1x1 squeeze, then 1x1 and 3x3 expands concatenated) with max
pools between them, dropout, and a 1x1 conv classifier with ReLU followed by global average
pooling. All convs have biases and no BatchNorm. Version 1.1 uses a 3x3 stem and moves the
pools earlier, for 2.4x less computation at the same accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Union

import paddle
import paddle.nn as nn

from ppcls.registry import MODELS

from ..layers import ConvBNAct

POOL = "M"

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


class SqueezeNet(nn.Layer):
    head_names = ("final_conv",)

    def __init__(self, version: str = "1.0", class_num: int = 1000, dropout_prob: float = 0.5) -> None:
        super().__init__()
        version = str(version)
        if version not in ARCH:
            raise ValueError(f"SqueezeNet version {version!r} is not supported; valid: {', '.join(ARCH)}")
        self.version = version
        self.class_num = class_num
        (stem_channels, kernel, stride, padding), body = ARCH[version]
        self.stem = _conv_relu(3, stem_channels, kernel, stride, padding)
        layers: list[nn.Layer] = []
        channels = stem_channels
        for row in body:
            if row == POOL:
                # floor-mode pooling as in PaddleClas (Caffe and torchvision use ceil mode);
                # only the spatial sizes differ, never the weights
                layers.append(nn.MaxPool2D(kernel_size=3, stride=2, padding=0))
            else:
                fire = Fire(channels, *row)
                layers.append(fire)
                channels = fire.out_channels
        self.features = nn.Sequential(*layers)
        self.num_features = channels
        # "downscale_in_infer" as in PaddleClas, so weights trained there give the same logits
        self.dropout = (
            nn.Dropout(p=dropout_prob, mode="downscale_in_infer") if dropout_prob > 0 else nn.Identity()
        )
        self.final_conv = _conv_relu(channels, class_num, 1)
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        in_size = x.shape[2:]
        x = self.features(self.stem(x))
        # the unpadded pools shrink small inputs to empty maps, which would pool to garbage;
        # sizes are -1 while tracing with dynamic shapes, so only real zeros are caught
        if 0 in x.shape[2:]:
            raise ValueError(
                f"input of spatial size {list(in_size)} is too small for SqueezeNet "
                f"{self.version}: its feature map is empty (use at least 32x32)"
            )
        return x

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.final_conv(self.dropout(x))
        return self.flatten(self.avg_pool(x))

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.forward_head(self.forward_features(x))


def _create_squeezenet(version: str, **kwargs) -> SqueezeNet:
    return SqueezeNet(version=version, **kwargs)


@MODELS.register()
def SqueezeNet1_0(**kwargs) -> SqueezeNet:
    return _create_squeezenet("1.0", **kwargs)


@MODELS.register()
def SqueezeNet1_1(**kwargs) -> SqueezeNet:
    return _create_squeezenet("1.1", **kwargs)
