"""The fast CPU depthwise conv op: parity with Paddle's conv2d(groups=C) (forward, grad wrt input and
weight), the fallback switch, the layer's checkpoint compatibility, export, and a failed build."""

from __future__ import annotations

import functools
import logging
import os
import subprocess
import sys

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest

from ppcls.ops import DepthwiseConv2D, depthwise_conv2d
from ppcls.ops import depthwise_conv as dwc

REAL_CONV = F.conv2d  # the reference; tests patch the module attribute ppcls.ops uses
TOL = 1e-4  # max abs difference, relative to the reference's max abs

# (batch, channels, H, W, kernel, stride, padding, dilation)
CASES = [
    (1, 16, 15, 15, 3, 1, 1, 1),
    (3, 16, 15, 15, 3, 2, 1, 1),
    (3, 33, 7, 9, 3, 1, 0, 1),
    (1, 33, 7, 9, 3, 2, 2, 1),
    (1, 1, 56, 56, 3, 1, 1, 1),
    (3, 16, 56, 56, 3, 2, 1, 1),
    (3, 16, 15, 15, 5, 1, 2, 1),
    (1, 33, 15, 15, 5, 2, 2, 1),
    (3, 1, 7, 9, 5, 1, 0, 1),
    (1, 16, 56, 56, 5, 2, 2, 1),
    (3, 16, 7, 9, 5, 2, 1, 1),
    (1, 16, 15, 15, 7, 1, 3, 1),
    (3, 16, 15, 15, 3, 1, 2, 2),
    (1, 16, 15, 15, 3, [2, 1], [1, 0, 2, 1], 1),  # unequal strides, asymmetric padding
]


def _conv_and_grads(conv, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    xt, wt = paddle.to_tensor(x, stop_gradient=False), paddle.to_tensor(w, stop_gradient=False)
    y = conv(xt, wt)
    dx, dw = paddle.grad([y], [xt, wt], [paddle.to_tensor(g)])
    return [y.numpy(), dx.numpy(), dw.numpy()]


def _case_arrays(case, seed: int = 0):
    n, c, h, w, k, stride, padding, dilation = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype("float32")
    weight = rng.standard_normal((c, 1, k, k)).astype("float32")
    out = REAL_CONV(paddle.to_tensor(x), paddle.to_tensor(weight), stride=stride, padding=padding,
                   dilation=dilation, groups=c)
    g = rng.standard_normal(out.shape).astype("float32")
    return x, weight, g


@pytest.fixture(scope="module")
def extension():
    module = dwc.load_extension()
    assert module is not None, "the custom op failed to build (see the logged warning)"
    return module


@pytest.fixture()
def fast_only(monkeypatch, extension):
    """Paddle's conv2d raises inside ppcls.ops: a passing call really ran the custom op."""
    monkeypatch.delenv(dwc.ENV_SWITCH, raising=False)

    def forbidden(*args, **kwargs):
        raise AssertionError("fell back to paddle's conv2d")
    monkeypatch.setattr(dwc.F, "conv2d", forbidden)


@pytest.mark.parametrize("case", CASES, ids=lambda c: "n{}c{}_{}x{}_k{}s{}p{}d{}".format(*c))
def test_matches_paddle_conv(case, fast_only):
    _, _, _, _, _, stride, padding, dilation = case
    x, w, g = _case_arrays(case)
    got = _conv_and_grads(lambda a, b: depthwise_conv2d(a, b, stride, padding, dilation), x, w, g)
    ref = _conv_and_grads(
        lambda a, b: REAL_CONV(a, b, stride=stride, padding=padding, dilation=dilation,
                                                 groups=a.shape[1]), x, w, g)
    for name, a, b in zip(("out", "grad x", "grad weight"), got, ref):
        assert a.shape == b.shape, name
        err = np.abs(a - b).max() / np.abs(b).max()
        assert err <= TOL, f"{name}: relative max error {err:.2e}"


def test_weight_grad_reproducible_across_thread_counts(fast_only, monkeypatch):
    case = (3, 16, 15, 15, 5, 2, 2, 1)
    x, w, g = _case_arrays(case, seed=3)
    results = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv(dwc.THREADS_ENV, threads)
        results.append(_conv_and_grads(lambda a, b: depthwise_conv2d(a, b, 2, 2, 1), x, w, g))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_fallback_switch_gives_paddle_results(monkeypatch, extension):
    case = (3, 16, 15, 15, 3, 2, 1, 1)
    x, w, g = _case_arrays(case, seed=1)
    calls = []

    def counted(*args, **kwargs):
        calls.append(kwargs.get("groups"))
        return REAL_CONV(*args, **kwargs)
    monkeypatch.setattr(dwc.F, "conv2d", counted)
    monkeypatch.setenv(dwc.ENV_SWITCH, "paddle")
    got = _conv_and_grads(lambda a, b: depthwise_conv2d(a, b, 2, 1, 1), x, w, g)
    assert calls == [16]
    ref = _conv_and_grads(lambda a, b: REAL_CONV(a, b, stride=2, padding=1, groups=16), x, w, g)
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setenv(dwc.ENV_SWITCH, "fast")
    fast = _conv_and_grads(lambda a, b: depthwise_conv2d(a, b, 2, 1, 1), x, w, g)
    assert calls == [16]  # the fast op again
    for a, b in zip(fast, ref):
        assert np.abs(a - b).max() <= TOL * np.abs(b).max()


def test_unsupported_inputs_fall_back(extension):
    x = paddle.randn([2, 4, 9, 9])
    w = paddle.randn([4, 1, 3, 3])
    same = depthwise_conv2d(x, w, 1, "SAME", 1)  # string padding: Paddle's kernel
    np.testing.assert_array_equal(same.numpy(), REAL_CONV(x, w, padding="SAME", groups=4).numpy())
    w_mult = paddle.randn([8, 1, 3, 3])  # depth multiplier 2: Paddle's kernel
    np.testing.assert_array_equal(depthwise_conv2d(x, w_mult, 1, 1, 1).numpy(),
                                  REAL_CONV(x, w_mult, padding=1, groups=4).numpy())
    x64, w64 = x.astype("float64"), w.astype("float64")
    out64 = depthwise_conv2d(x64, w64, 1, 1, 1)
    assert out64.dtype == paddle.float64
    np.testing.assert_array_equal(out64.numpy(), REAL_CONV(x64, w64, padding=1, groups=4).numpy())


def test_layer_matches_conv2d_with_same_state_dict(fast_only, monkeypatch):
    paddle.seed(5)
    ref = nn.Conv2D(24, 24, 5, stride=2, padding=2, groups=24, bias_attr=False)
    layer = DepthwiseConv2D(24, 5, stride=2, padding=2)
    assert list(layer.state_dict()) == list(ref.state_dict()) == ["weight"]
    assert layer.weight.shape == ref.weight.shape == [24, 1, 5, 5]
    layer.set_state_dict(ref.state_dict())
    x = np.random.default_rng(2).standard_normal((3, 24, 15, 15)).astype("float32")
    g = np.random.default_rng(3).standard_normal((3, 24, 8, 8)).astype("float32")
    outs = []
    for net in (layer, ref):
        xt = paddle.to_tensor(x, stop_gradient=False)
        y = net(xt)
        y.backward(paddle.to_tensor(g))
        outs.append([y.numpy(), xt.grad.numpy(), net.weight.grad.numpy()])
    for a, b in zip(*outs):
        assert np.abs(a - b).max() <= TOL * np.abs(b).max()


def test_layer_default_initialisation_like_conv2d():
    paddle.seed(11)
    layer = DepthwiseConv2D(64, 5)
    paddle.seed(11)
    ref = nn.Conv2D(64, 64, 5, groups=64, bias_attr=False)
    np.testing.assert_array_equal(layer.weight.numpy(), ref.weight.numpy())
    assert layer.weight.dtype == ref.weight.dtype
    assert not layer.weight.stop_gradient


class _TinyNet(nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.dw = DepthwiseConv2D(8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2D(8)

    def forward(self, x):
        return self.bn(self.dw(x))


@pytest.mark.parametrize("full_graph", [True, False], ids=["ast", "sot"])
def test_export_holds_only_standard_ops(tmp_path, extension, full_graph):
    paddle.seed(7)
    net = _TinyNet()
    net.eval()
    x = np.random.default_rng(4).standard_normal((2, 8, 15, 15)).astype("float32")
    eager = net(paddle.to_tensor(x)).numpy()
    prefix = str(tmp_path / "model" / "inference")
    static = paddle.jit.to_static(net, input_spec=[paddle.static.InputSpec([None, 8, 15, 15], "float32")],
                                  full_graph=full_graph)
    paddle.jit.save(static, prefix)
    files = [os.path.join(tmp_path / "model", f) for f in os.listdir(tmp_path / "model")]
    program = b"".join(open(f, "rb").read() for f in files if not f.endswith(".pdiparams"))
    assert b"conv2d" in program
    assert dwc.OP_NAME.encode() not in program
    np.save(tmp_path / "x.npy", x)
    # A fresh process that never builds or loads the extension runs the exported model.
    code = ("import sys, numpy as np, paddle\n"
            f"m = paddle.jit.load({prefix!r}); m.eval()\n"
            f"np.save({str(tmp_path / 'y.npy')!r}, m(paddle.to_tensor(np.load({str(tmp_path / 'x.npy')!r}))).numpy())\n"
            "assert not any('ppcls' in name for name in sys.modules), 'ppcls was imported'\n")
    env = {**os.environ, dwc.ENV_SWITCH: "paddle"}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(tmp_path), env=env, timeout=120)
    loaded = np.load(tmp_path / "y.npy")
    assert np.abs(loaded - eager).max() <= TOL * np.abs(eager).max()


def test_failed_build_warns_once_and_falls_back(tmp_path, monkeypatch, caplog):
    broken = tmp_path / "broken.cc"
    broken.write_text('#error "deliberately broken"\n')
    monkeypatch.setattr(dwc, "SOURCE", str(broken))
    monkeypatch.setenv("PPCLS_OPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(dwc.ENV_SWITCH, raising=False)
    # A fresh cached loader (the process's real one stays untouched).
    monkeypatch.setattr(dwc, "load_extension", functools.lru_cache(maxsize=1)(dwc.load_extension.__wrapped__))
    x, w = paddle.randn([1, 4, 9, 9]), paddle.randn([4, 1, 3, 3])
    with caplog.at_level(logging.WARNING, logger=dwc.__name__):
        first = depthwise_conv2d(x, w, 1, 1, 1)
        second = depthwise_conv2d(x, w, 1, 1, 1)
    warnings = [r for r in caplog.records if r.name == dwc.__name__ and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"{dwc.ENV_SWITCH}=paddle" in warnings[0].getMessage()
    ref = REAL_CONV(x, w, padding=1, groups=4).numpy()
    np.testing.assert_array_equal(first.numpy(), ref)
    np.testing.assert_array_equal(second.numpy(), ref)


def test_cache_name_depends_on_source(tmp_path, monkeypatch):
    name = dwc.build_name()
    other = tmp_path / "other.cc"
    other.write_text(open(dwc.SOURCE).read() + "\n// changed\n")
    monkeypatch.setattr(dwc, "SOURCE", str(other))
    assert dwc.build_name() != name
    monkeypatch.setenv("PPCLS_OPS_CACHE_DIR", str(tmp_path / "c"))
    assert dwc.cache_dir() == str(tmp_path / "c")


def test_bad_switch_values_are_config_errors(monkeypatch):
    from ppcls.utils.errors import ConfigError

    monkeypatch.setenv(dwc.ENV_SWITCH, "fastest")
    with pytest.raises(ConfigError, match=dwc.ENV_SWITCH):
        depthwise_conv2d(paddle.randn([1, 2, 5, 5]), paddle.randn([2, 1, 3, 3]))
    monkeypatch.setenv(dwc.ENV_SWITCH, "fast")
    monkeypatch.setenv(dwc.THREADS_ENV, "0")
    with pytest.raises(ConfigError, match=dwc.THREADS_ENV):
        dwc.num_threads()
    monkeypatch.setenv(dwc.THREADS_ENV, "3")
    assert dwc.num_threads() == 3


def test_benchmark_tool_times_the_models_depthwise_layers(tmp_path):
    tool = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "benchmark_depthwise.py")
    done = subprocess.run([sys.executable, tool, "--model", "PPLCNet_x0_25", "--batch", "1", "--size", "32",
                           "--repeat", "1", "--warmup", "0"], capture_output=True, text=True, timeout=300,
                          cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "blocks6.1" in done.stdout and "total" in done.stdout  # all 13 depthwise layers, then the totals
