"""ParNet: "Non-deep Networks" (Goyal, Bochkovskiy, Deng and Koltun, arXiv 2110.07641, 2021).

A depth-12 network of three parallel streams working at 1/4, 1/8 and 1/16 of the input
resolution, fused from the finest to the coarsest, then downsampled once more. Every layer is
one RepVGG-style block: a 3x3 conv-BN and a 1x1 conv-BN (on stride 2: a 2x2 average pool +
1x1 conv-BN) in parallel, plus a BatchNorm identity branch gated by the Skip-Squeeze-Excitation
(SSE) when the block keeps its shape. Blocks that change shape are gated as a whole by
``2 * sigmoid`` of the same squeeze. Streams meet in fusion blocks: one BatchNorm per input,
channel interleaving, then a 2-group block followed by a channel shuffle.

The layout follows the authors' released code (``imagenet/timm/models/simplenet_impl`` of
imankgoyal/NonDeepNetworks), not the later tutorial re-implementations. The paper uses SiLU;
the released configs build ReLU by accident, so ``act`` is an option (default ``"silu"``).

``reparameterize()`` folds the 1x1 (or pool + 1x1) branch and the BatchNorms into one 3x3 conv
per block. The gated identity branch cannot join that conv (its gate depends on the input), so
in deploy form it stays a per-channel affine multiplied by the gate, whose conv absorbs the
identity BatchNorm; an ungated identity branch (``use_sse=False``) is folded into the conv.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ppcls.registry import MODELS
from ppcls.utils.errors import ConfigError, summarize

from ..family import ModelFamily
from ..interface import ClassificationNet
from ..layers import ConvBNAct, channel_shuffle, fuse_conv_bn, get_act, interleave

FAMILY = ModelFamily("ParNet")

# variant -> (widths of the three streams, width of the last block, dropout before fc)
ARCH: MappingProxyType[str, tuple[tuple[int, int, int], int, float]] = MappingProxyType(
    {
        "S": ((92, 192, 384), 1280, 0.0),
        "M": ((128, 256, 512), 2048, 0.0),
        "L": ((160, 320, 640), 2560, 0.1),
        "XL": ((200, 400, 800), 3200, 0.1),
    }
)
# blocks per stream counting the block that downsamples into it, then the final block
NUM_BLOCKS: tuple[int, int, int, int] = (5, 6, 6, 1)
STEM_MAX_CHANNELS = 64


class ChannelAffine(nn.Layer):
    """``x * weight + bias`` per channel: a BatchNorm frozen in eval mode, for deploy graphs."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = self.create_parameter(
            [channels], default_initializer=nn.initializer.Constant(1.0)
        )
        self.bias = self.create_parameter(
            [channels], is_bias=True, default_initializer=nn.initializer.Constant(0.0)
        )

    @classmethod
    @paddle.no_grad()
    def from_batchnorm(cls, bn: nn.BatchNorm2D) -> ChannelAffine:
        layer = cls(bn._num_features)
        scale, shift = _bn_scale_shift(bn)
        layer.weight.set_value(scale)
        layer.bias.set_value(shift)
        return layer

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return x * self.weight.reshape([1, -1, 1, 1]) + self.bias.reshape([1, -1, 1, 1])


def _bn_scale_shift(bn: nn.BatchNorm2D) -> tuple[paddle.Tensor, paddle.Tensor]:
    """(scale, shift) with ``bn(x) == x * scale + shift`` in eval mode."""
    scale = bn.weight / paddle.sqrt(bn._variance + bn._epsilon)
    return scale, bn.bias - bn._mean * scale


def _branch_kernel(branch: ConvBNAct) -> tuple[paddle.Tensor, paddle.Tensor]:
    """(weight, bias) of a conv-BN branch, whether or not its BN was already folded."""
    if isinstance(branch.bn, nn.BatchNorm2D):
        return fuse_conv_bn(branch.conv.weight, branch.conv.bias, branch.bn)
    bias = branch.conv.bias
    if bias is None:
        bias = paddle.zeros([branch.conv.weight.shape[0]], dtype=branch.conv.weight.dtype)
    return branch.conv.weight, bias


class SkipSqueezeExcite(nn.Layer):
    """The SSE gate: global average pool → grouped 1x1 conv → ``scale * sigmoid``.

    Returns the gate (shape ``[N, C_out, 1, 1]``), not the gated tensor: the block decides what
    it multiplies. The released code has no bias here; reparameterization adds one when it
    absorbs a BatchNorm of the pooled input.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        groups: int = 1,
        scale: float = 1.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.conv = nn.Conv2D(
            in_channels, out_channels, 1, groups=groups, bias_attr=None if bias else False
        )

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        gate = F.sigmoid(self.conv(self.pool(x)))
        return gate * self.scale if self.scale != 1.0 else gate

    @paddle.no_grad()
    def absorb_input_affine(self, scale: paddle.Tensor, shift: paddle.Tensor) -> None:
        """Make ``self(x)`` equal the old ``self(x * scale + shift)`` (pooling is linear)."""
        conv = self.conv
        out_c, in_per_group = conv.weight.shape[0], conv.weight.shape[1]
        groups = conv._groups
        # per output channel, the affine of the input channels its group reads
        scale_o = scale.reshape([groups, in_per_group]).repeat_interleave(out_c // groups, 0)
        shift_o = shift.reshape([groups, in_per_group]).repeat_interleave(out_c // groups, 0)
        weight = conv.weight[:, :, 0, 0]
        bias = (weight * shift_o).sum(axis=1)
        if conv.bias is not None:
            bias = bias + conv.bias
        fused = nn.Conv2D(conv._in_channels, out_c, 1, groups=groups)
        fused.weight.set_value((weight * scale_o).reshape(conv.weight.shape))
        fused.bias.set_value(bias)
        self.conv = fused


class ParNetBlock(nn.Layer):
    """RepVGG-style block with the SSE gate (the released code's ``RepVGGBlock``).

    Training form: ``act(conv3x3_bn(x) + conv1x1_bn(x) + bn(x) * sse(bn(x)))`` when the block
    keeps its shape, ``act((conv3x3_bn(x) + conv1x1_bn(x)) * 2 * sse(x))`` otherwise; on
    stride 2 the 1x1 branch reads a 2x2 average pool. Grouped blocks shuffle their output.
    The deploy form (after ``reparameterize()``) has one 3x3 conv with bias in place of the
    branches; see the module docstring for the identity branch. Inputs of a stride-2 block
    need even height and width, as in the training form.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        groups: int = 1,
        use_sse: bool = True,
        act: str | None = "silu",
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ParNetBlock stride must be 1 or 2, got {stride}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"ParNetBlock channels ({in_channels} -> {out_channels}) must be divisible "
                f"by groups={groups}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.groups = groups
        self.deployed = False
        keeps_shape = in_channels == out_channels and stride == 1
        self.conv3x3 = ConvBNAct(in_channels, out_channels, 3, stride, groups=groups, act=None)
        conv1x1 = ConvBNAct(in_channels, out_channels, 1, groups=groups, act=None)
        self.conv1x1 = nn.Sequential(nn.AvgPool2D(2, 2), conv1x1) if stride == 2 else conv1x1
        self.identity = nn.BatchNorm2D(in_channels) if keeps_shape else None
        self.sse = (
            SkipSqueezeExcite(
                in_channels, out_channels, groups, scale=1.0 if keeps_shape else 2.0
            )
            if use_sse
            else None
        )
        self.act = get_act(act)

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        if self.deployed:
            out = self.reparam_conv(x)
            if self.identity is not None:  # gated identity, BN folded into the gate's conv
                out = out + self.identity(x) * self.sse(x)
            elif self.sse is not None:
                out = out * self.sse(x)
        else:
            out = self.conv3x3(x) + self.conv1x1(x)
            if self.identity is not None:
                identity = self.identity(x)
                if self.sse is not None:
                    identity = identity * self.sse(identity)
                out = out + identity
            elif self.sse is not None:
                out = out * self.sse(x)
        return channel_shuffle(self.act(out), self.groups)

    @paddle.no_grad()
    def _fused_kernel(self) -> tuple[paddle.Tensor, paddle.Tensor]:
        """(weight, bias) of the single 3x3 conv equal to the summed conv branches."""
        weight, bias = _branch_kernel(self.conv3x3)
        if self.stride == 2:
            # 2x2 average pool then 1x1 conv == 3x3 stride-2 conv whose lower-right 2x2
            # holds w/4: output (i, j) pools input rows/cols 2i..2i+1, the 3x3 window
            # (padding 1) covers 2i-1..2i+1.
            w1, b1 = _branch_kernel(self.conv1x1[1])
            w1 = F.pad(w1.tile([1, 1, 2, 2]) / 4.0, [1, 0, 1, 0])
        else:
            w1, b1 = _branch_kernel(self.conv1x1)
            w1 = F.pad(w1, [1, 1, 1, 1])
        weight, bias = weight + w1, bias + b1
        if self.identity is not None and self.sse is None:
            scale, shift = _bn_scale_shift(self.identity)
            # identity as a grouped 3x3 kernel: output c reads channel c % (C / groups)
            # of its own group, at the centre tap
            in_per_group = self.in_channels // self.groups
            eye = np.zeros(weight.shape, dtype="float32")
            idx = np.arange(self.out_channels)
            eye[idx, idx % in_per_group, 1, 1] = 1.0
            eye = paddle.to_tensor(eye, dtype=weight.dtype)
            weight = weight + eye * scale.reshape([-1, 1, 1, 1])
            bias = bias + shift
        return weight, bias

    @paddle.no_grad()
    def reparameterize(self) -> None:
        """Switch to the deploy form (one 3x3 conv + the gate); harmless when already done."""
        if self.deployed:
            return
        weight, bias = self._fused_kernel()
        if self.identity is not None and self.sse is not None:
            # the gate reads bn(x): fold that BN into the gate's conv, keep it as an affine
            scale, shift = _bn_scale_shift(self.identity)
            self.sse.absorb_input_affine(scale, shift)
            self.identity = ChannelAffine.from_batchnorm(self.identity)
        else:
            self.identity = None
            if self.sse is not None and self.sse.scale != 1.0:
                # (conv) * 2 * sigmoid(.) == (2 * conv) * sigmoid(.)
                weight, bias = weight * self.sse.scale, bias * self.sse.scale
                self.sse.scale = 1.0
        conv = nn.Conv2D(
            self.in_channels,
            self.out_channels,
            3,
            stride=self.stride,
            padding=1,
            groups=self.groups,
        )
        conv.weight.set_value(weight)
        conv.bias.set_value(bias)
        self.reparam_conv = conv
        del self.conv3x3
        del self.conv1x1
        self.deployed = True


class FusionBlock(nn.Layer):
    """Joins two streams: one BN per input → channel interleave → 2-group ``ParNetBlock``.

    The deploy form merges the two BatchNorms into one per-channel affine after the
    interleave; it cannot enter the 3x3 conv exactly because of the conv's zero padding.
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, act: str | None = "silu"
    ) -> None:
        super().__init__()
        self.bn_stream = nn.BatchNorm2D(in_channels)
        self.bn_fused = nn.BatchNorm2D(in_channels)
        self.affine: ChannelAffine | None = None
        self.block = ParNetBlock(2 * in_channels, out_channels, stride, groups=2, act=act)

    def forward(self, stream: paddle.Tensor, fused: paddle.Tensor) -> paddle.Tensor:
        if self.affine is not None:
            x = self.affine(interleave((stream, fused)))
        else:
            x = interleave((self.bn_stream(stream), self.bn_fused(fused)))
        return self.block(x)

    @paddle.no_grad()
    def reparameterize(self) -> None:
        """Merge the two input BatchNorms into one affine; harmless when already done."""
        if self.affine is not None:
            return
        scale_a, shift_a = _bn_scale_shift(self.bn_stream)
        scale_b, shift_b = _bn_scale_shift(self.bn_fused)
        affine = ChannelAffine(2 * scale_a.shape[0])
        affine.weight.set_value(paddle.stack([scale_a, scale_b], axis=1).flatten())
        affine.bias.set_value(paddle.stack([shift_a, shift_b], axis=1).flatten())
        self.affine = affine
        del self.bn_stream
        del self.bn_fused


class ParNet(ClassificationNet):
    """Three parallel streams, fused from the finest to the coarsest, then one final block.

    ``downsamples[i]`` feeds stream ``i`` (the first is the two-block stem, at 1/4 of the
    input); stream 0 is downsampled once more and fused with stream 1, the result with
    stream 2 (without downsampling), then the final block halves the resolution again.
    """

    head_names = ("fc",)

    def __init__(
        self,
        planes: tuple[int, int, int] = ARCH["S"][0],
        last_planes: int = ARCH["S"][1],
        num_blocks: tuple[int, int, int, int] = NUM_BLOCKS,
        class_num: int = 1000,
        dropout_prob: float = 0.0,
        act: str = "silu",
    ) -> None:
        super().__init__()
        if len(planes) != 3 or len(num_blocks) != 4 or min(num_blocks) < 1 or num_blocks[3] != 1:
            raise ConfigError(
                "ParNet needs three stream widths and four block counts (three streams >= 1, "
                f"then 1 for the final block), got planes={summarize(planes)}, num_blocks={summarize(num_blocks)}"
            )
        self.class_num = class_num
        p0, p1, p2 = planes
        stem_channels = min(STEM_MAX_CHANNELS, p0)
        self.downsamples = nn.LayerList(
            [
                nn.Sequential(
                    ParNetBlock(3, stem_channels, 2, act=act),
                    ParNetBlock(stem_channels, p0, 2, act=act),
                ),
                ParNetBlock(p0, p1, 2, act=act),
                ParNetBlock(p1, p2, 2, act=act),
            ]
        )
        self.streams = nn.LayerList(
            [
                nn.Sequential(*[ParNetBlock(p, p, 1, act=act) for _ in range(n - 1)])
                for p, n in zip(planes, num_blocks[:3])
            ]
        )
        self.stream_downsample = ParNetBlock(p0, p1, 2, act=act)
        self.fusions = nn.LayerList(
            [FusionBlock(p1, p2, 2, act=act), FusionBlock(p2, p2, 1, act=act)]
        )
        self.final = ParNetBlock(p2, last_planes, 2, act=act)
        self.num_features = last_planes
        self.avg_pool = nn.AdaptiveAvgPool2D(1)
        self.flatten = nn.Flatten(start_axis=1, stop_axis=-1)
        self.dropout = nn.Dropout(p=dropout_prob) if dropout_prob > 0 else nn.Identity()
        self.fc = nn.Linear(last_planes, class_num)

    def forward_features(self, x: paddle.Tensor) -> paddle.Tensor:
        outs = []
        for downsample, stream in zip(self.downsamples, self.streams):
            x = downsample(x)
            outs.append(stream(x))
        y = self.stream_downsample(outs[0])
        for stream_out, fusion in zip(outs[1:], self.fusions):
            y = fusion(stream_out, y)
        return self.final(y)

    def forward_head(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.fc(self.dropout(self.flatten(self.avg_pool(x))))


def _create_parnet(variant: str, **kwargs) -> ParNet:
    fixed = sorted({"planes", "last_planes"} & set(kwargs))
    if fixed:
        raise ConfigError(
            f"ParNet_{variant} fixes the widths; remove {', '.join(fixed)} from Arch "
            "(or build ParNet directly for custom widths)"
        )
    planes, last_planes, dropout_prob = ARCH[variant]
    kwargs.setdefault("dropout_prob", dropout_prob)
    return ParNet(planes=planes, last_planes=last_planes, **kwargs)


@MODELS.register(**FAMILY.entry(params=20_964_616))
def ParNet_S(**kwargs) -> ParNet:
    return _create_parnet("S", **kwargs)


@MODELS.register(**FAMILY.entry(params=38_999_592))
def ParNet_M(**kwargs) -> ParNet:
    return _create_parnet("M", **kwargs)


@MODELS.register(**FAMILY.entry(params=60_237_864))
def ParNet_L(**kwargs) -> ParNet:
    return _create_parnet("L", **kwargs)


@MODELS.register(**FAMILY.entry(params=93_248_424))
def ParNet_XL(**kwargs) -> ParNet:
    return _create_parnet("XL", **kwargs)
