"""Reparameterization protocol: fold BN and parallel branches into single convs for deploy."""

from __future__ import annotations

import paddle
import paddle.nn as nn


def fuse_conv_bn(
    weight: paddle.Tensor,
    bias: paddle.Tensor | None,
    bn: nn.BatchNorm2D,
) -> tuple[paddle.Tensor, paddle.Tensor]:
    """Return (weight, bias) of the conv equal to ``bn(conv(x))`` in eval mode (``bias=None``: a conv without bias)."""
    std = paddle.sqrt(bn._variance + bn._epsilon)
    gamma = bn.weight if bn.weight is not None else paddle.ones_like(std)
    beta = bn.bias if bn.bias is not None else paddle.zeros_like(std)
    scale = gamma / std
    fused_w = weight * scale.reshape([-1, 1, 1, 1])
    base = bias if bias is not None else paddle.zeros_like(std)
    fused_b = beta + (base - bn._mean) * scale
    return fused_w, fused_b


def reparameterize_model(model: nn.Layer) -> nn.Layer:
    """Call ``reparameterize()`` on every layer that has it, outermost first; returns ``model``.

    The model is switched to eval mode: a reparameterized model is for inference only.
    """
    model.eval()

    def visit(layer: nn.Layer) -> None:
        if layer is not model and callable(getattr(layer, "reparameterize", None)):
            layer.reparameterize()
        for child in list(layer.children()):
            visit(child)

    if callable(getattr(model, "reparameterize", None)):
        model.reparameterize()
    for child in list(model.children()):
        visit(child)
    model.eval()
    return model
