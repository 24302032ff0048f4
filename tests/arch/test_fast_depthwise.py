"""Every model gives the same outputs and gradients with the fast depthwise kernel as with Paddle's own."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from ppcls.arch import build_model
from ppcls.ops import DepthwiseConv2D

from .model_checks import smallest_per_family

MODELS = smallest_per_family()  # one model of every registered family


def run(name: str, kernel: str, monkeypatch, dtype: str = "float32") -> list[np.ndarray]:
    """The logits and every parameter's gradient of one training-mode step."""
    monkeypatch.setenv("PPCLS_DEPTHWISE", kernel)
    paddle.set_default_dtype(dtype)
    try:
        paddle.seed(0)
        model = build_model({"name": name, "class_num": 10})
    finally:
        paddle.set_default_dtype("float32")
    model.train()
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(dtype))
    out = model(x)
    (out * paddle.to_tensor(np.linspace(-1, 1, out.size).reshape(out.shape).astype(dtype))).sum().backward()
    return [out.numpy().astype("float64")] + [p.grad.numpy().astype("float64") for p in model.parameters()
                                               if p.grad is not None]


@pytest.mark.parametrize("name", MODELS)
def test_outputs_and_gradients_are_as_accurate_as_with_paddles_kernel(name, monkeypatch):
    """Against a float64 run (Paddle's kernel), the fast kernel's float32 error is at most Paddle's float32 error
    (times 2, plus 1e-5 of the value's scale): deep gradients amplify any float32 rounding, so a direct
    comparison of the two float32 runs measures the rounding of both."""
    truth = run(name, "paddle", monkeypatch, "float64")
    fast = run(name, "fast", monkeypatch)
    ref = run(name, "paddle", monkeypatch)
    for i, (t, f, r) in enumerate(zip(truth, fast, ref)):
        scale = max(np.abs(t).max(), 1e-12)
        assert np.abs(f - t).max() <= 2 * np.abs(r - t).max() + 1e-5 * scale, ("output" if i == 0 else f"grad {i}")


def test_depthwise_layers_use_the_fast_conv_and_fold_into_a_plain_conv():
    model = build_model({"name": "PPLCNet_x0_25", "class_num": 10})
    assert any(isinstance(layer, DepthwiseConv2D) for layer in model.sublayers())
    model.eval()
    x = paddle.rand([1, 3, 64, 64])
    before = model(x).numpy()
    for layer in model.sublayers():
        if hasattr(layer, "reparameterize"):
            layer.reparameterize()
    assert not any(isinstance(layer, DepthwiseConv2D) for layer in model.sublayers())  # export sees Paddle's conv
    np.testing.assert_allclose(model(x).numpy(), before, atol=1e-4 * np.abs(before).max())
