"""Parameter and multiply-add counts of any model, measured by running it once.

Convention (that of the papers' "FLOPs" tables, which are multiply-adds): one MAC per
multiply-accumulate of a convolution or a fully connected layer; biases, BatchNorm,
activations, pooling, element-wise additions and channel shuffles count 0. Every call of
a layer counts (a layer used twice counts twice). ``paddle.flops`` (behind the figures in
PaddleClas's tables, e.g. PP-LCNet's "161M FLOPs") also counts 2 operations per BatchNorm
output element: ``bn_ops_per_element=2`` reproduces it. Parameters are counted as Paddle counts
them: the sum of ``numel`` over ``model.parameters()``, which includes the BatchNorm running
mean and variance (they are non-trainable parameters in Paddle); ``trainable`` leaves out
those and anything frozen (``stop_gradient``).

``paddle.flops`` is not used: it fails under NumPy 2.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import paddle
import paddle.nn as nn

from ppcls.ops import DepthwiseConv2D
from ppcls.utils.errors import ArgumentError, ConfigError, MissingFileError
from ppcls.utils.io import atomic_write_text

logger = logging.getLogger(__name__)

_CONV = (nn.Conv1D, nn.Conv2D, nn.Conv3D, DepthwiseConv2D)  # the fast depthwise conv has Conv2D's weight layout
_CONV_TRANSPOSE = (nn.Conv1DTranspose, nn.Conv2DTranspose, nn.Conv3DTranspose)
_BN = (nn.BatchNorm, nn.BatchNorm1D, nn.BatchNorm2D, nn.BatchNorm3D, nn.SyncBatchNorm)

MARK_START = "<!-- model-zoo:start -->"
MARK_END = "<!-- model-zoo:end -->"


def count_params(model: nn.Layer, trainable_only: bool = False) -> int:
    """Sum of ``numel`` over ``model.parameters()`` (BN running statistics included, as Paddle counts).

    ``trainable_only`` keeps the parameters an optimizer updates (``stop_gradient`` False).
    """
    total = 0
    for p in model.parameters():
        if trainable_only and (p.stop_gradient or not getattr(p, "trainable", True)):
            continue
        total += int(math.prod(p.shape))
    return total


def _layer_macs(layer: nn.Layer, inputs: Sequence[Any], output: Any) -> int | None:
    """MACs of one call of ``layer``; None when its type is not one we count."""
    if isinstance(layer, _CONV):
        # weight [out, in / groups, *kernel]: each output element is one dot product of that length
        w = layer.weight.shape
        return int(math.prod(output.shape)) * int(math.prod(w[1:]))
    if isinstance(layer, _CONV_TRANSPOSE):
        # weight [in, out / groups, *kernel]: each input element is scattered into that many outputs
        w = layer.weight.shape
        return int(math.prod(inputs[0].shape)) * int(math.prod(w[1:]))
    if isinstance(layer, nn.Linear):
        return int(math.prod(output.shape)) * int(layer.weight.shape[0])
    return None


def _uncounted_kernels(model: nn.Layer) -> list[str]:
    """Layers owning a matrix or kernel (ndim >= 2) whose type we do not count: their MACs would be missed."""
    missed = []
    for name, layer in model.named_sublayers(include_self=True):
        if isinstance(layer, _CONV + _CONV_TRANSPOSE + (nn.Linear,)):
            continue
        own = [p for p in layer.parameters(include_sublayers=False) if len(p.shape) >= 2]
        if own:
            missed.append(f"{name or '<model>'} ({type(layer).__name__})")
    return missed


def count_flops(
    model: nn.Layer, input_shape: Sequence[int] = (1, 3, 224, 224), bn_ops_per_element: int = 0
) -> int:
    """Multiply-adds of one forward pass on a zero tensor of ``input_shape`` (N, C, H, W), in eval mode.

    Counted with forward post-hooks on convolutions and linear layers (see the module docstring),
    plus ``bn_ops_per_element`` per BatchNorm output element (0: the papers' convention; 2: paddle.flops').
    Layers holding a kernel of another type are named in a warning, since their work is not counted.
    """
    shape = [int(s) for s in input_shape]
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise ConfigError(f"count_flops: input_shape must be positive sizes N, C, H, W; got {list(input_shape)}")
    missed = _uncounted_kernels(model)
    if missed:
        logger.warning("MACs of these layers are not counted (unknown layer types): %s", ", ".join(missed))
    total = 0

    def hook(layer: nn.Layer, inputs: Any, output: Any) -> None:
        nonlocal total
        if isinstance(layer, _BN):
            total += bn_ops_per_element * int(math.prod(output.shape))
            return
        total += _layer_macs(layer, inputs if isinstance(inputs, (tuple, list)) else (inputs,), output) or 0

    counted = _CONV + _CONV_TRANSPOSE + (nn.Linear,) + (_BN if bn_ops_per_element else ())
    handles = [layer.register_forward_post_hook(hook) for layer in model.sublayers(include_self=True)
               if isinstance(layer, counted)]
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros(shape, dtype="float32"))
    finally:
        for h in handles:
            h.remove()
        if was_training:
            model.train()
    return total


@dataclass
class ModelSummary:
    """One row of the model table; ``deploy_*`` are measured after ``reparameterize_model``."""

    name: str
    input_shape: tuple[int, ...]  # C, H, W
    params: int
    trainable_params: int
    macs: int
    deploy_params: int | None = None
    deploy_macs: int | None = None

    @property
    def input_size(self) -> str:
        return "x".join(str(s) for s in self.input_shape[1:])


def _millions(n: int | None, digits: int = 2) -> str:
    return "-" if n is None else f"{n / 1e6:.{digits}f}"


def format_table(rows: Iterable[ModelSummary]) -> str:
    """A fixed-width text table for the terminal."""
    header = ("Model", "Params(M)", "Trainable(M)", "MACs(M)", "Deploy params(M)", "Deploy MACs(M)", "Input")
    lines = [header]
    for r in rows:
        lines.append((r.name, _millions(r.params), _millions(r.trainable_params), _millions(r.macs, 1),
                      _millions(r.deploy_params), _millions(r.deploy_macs, 1), r.input_size))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
        for line in lines
    )


def markdown_table(rows: Iterable[ModelSummary]) -> str:
    """The model-zoo table in Markdown."""
    header = ("Model", "Params (M)", "Trainable params (M)", "MACs (M)", "Deploy params (M)", "Deploy MACs (M)",
              "Input")
    out = ["| " + " | ".join(header) + " |", "|:--|--:|--:|--:|--:|--:|:-:|"]
    for r in rows:
        cells = (r.name, _millions(r.params), _millions(r.trainable_params), _millions(r.macs, 1),
                 _millions(r.deploy_params), _millions(r.deploy_macs, 1), r.input_size)
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def replace_between_markers(text: str, content: str, path: str = "the document", name: str = "model-zoo") -> str:
    """Put ``content`` between the ``<!-- {name}:start/end -->`` markers of ``text``, keeping the rest."""
    MARK_START, MARK_END = f"<!-- {name}:start -->", f"<!-- {name}:end -->"  # noqa: N806
    starts, ends = text.count(MARK_START), text.count(MARK_END)
    if starts != 1 or ends != 1:
        raise ArgumentError(
            f"{path}: expected the markers {MARK_START} and {MARK_END} once each (found {starts} and {ends}); "
            "add them on their own lines where the table belongs"
        )
    pattern = re.compile(re.escape(MARK_START) + r".*?" + re.escape(MARK_END), re.DOTALL)
    if not pattern.search(text):
        raise ArgumentError(f"{path}: {MARK_END} comes before {MARK_START}")
    return pattern.sub(lambda _m: f"{MARK_START}\n{content.rstrip()}\n{MARK_END}", text, count=1)


def write_markdown_table(path: str, rows: Iterable[ModelSummary]) -> None:
    """Rewrite the table between the markers of ``path`` atomically (the file must exist and hold them)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise MissingFileError(
            f"{path} not found: create it with the lines {MARK_START} and {MARK_END} where the table goes"
        ) from None
    atomic_write_text(path, replace_between_markers(text, markdown_table(rows), path))
