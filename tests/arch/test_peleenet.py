"""PeleeNet: exact parameter count, forward shapes, independence of instances, export."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from ppcls.arch import build_model
from ppcls.arch.backbone.peleenet import PeleeNet, StemBlock, TwoWayDenseLayer
from ppcls.arch.layers import reparameterize_model

PELEENET_PARAMS = 2_811_976  # Paddle counting, BatchNorm running statistics included


@pytest.fixture(scope="module")
def model():
    paddle.seed(0)
    return build_model({"name": "PeleeNet", "class_num": 1000})


def test_parameter_count(model):
    assert isinstance(model, PeleeNet)
    assert int(sum(int(p.numel()) for p in model.parameters())) == PELEENET_PARAMS
    assert model.num_features == 704


def test_forward_224_eval(model):
    model.eval()
    with paddle.no_grad():
        out = model(paddle.randn([1, 3, 224, 224]))
    assert out.shape == [1, 1000]
    assert bool(paddle.isfinite(out).all())


@pytest.mark.parametrize("train", [True, False])
def test_forward_small_input(model, train):
    model.train() if train else model.eval()
    out = model(paddle.randn([2, 3, 64, 64]))
    assert out.shape == [2, 1000]
    model.eval()


def test_blocks():
    stem = StemBlock(3, 32)
    assert stem(paddle.randn([1, 3, 64, 64])).shape == [1, 32, 16, 16]
    layer = TwoWayDenseLayer(32, 32, 4)
    # the bottleneck (16 * 4 = 64) is capped to 32 / 8 * 4 = 16 for a 32-channel input
    assert layer.branch1[0].conv._out_channels == 16
    assert layer(paddle.randn([1, 32, 8, 8])).shape == [1, 64, 8, 8]
    with pytest.raises(ValueError):
        PeleeNet(growth_rate=31)


def test_class_num_and_head():
    net = build_model({"name": "PeleeNet", "class_num": 10})
    net.eval()
    assert net(paddle.randn([2, 3, 64, 64])).shape == [2, 10]
    assert all(hasattr(net, n) for n in PeleeNet.head_names)
    assert net.forward_features(paddle.randn([1, 3, 64, 64])).shape == [1, 704, 2, 2]


def test_two_instances_are_independent():
    a = build_model({"name": "PeleeNet", "class_num": 10})
    b = build_model({"name": "PeleeNet", "class_num": 10, "growth_rate": 16})
    assert not {p.name for p in a.parameters()} & {p.name for p in b.parameters()}
    a.fc.weight.set_value(paddle.zeros_like(a.fc.weight))
    assert float(b.fc.weight.abs().sum()) > 0
    a.eval()
    b.eval()
    x = paddle.randn([1, 3, 64, 64])
    assert a(x).shape == b(x).shape == [1, 10]


def test_reparameterized_model_matches():
    paddle.seed(2)
    net = build_model({"name": "PeleeNet", "class_num": 10})
    net.train()
    net(paddle.randn([4, 3, 64, 64]))  # move the BN statistics away from their defaults
    net.eval()
    x = paddle.randn([2, 3, 64, 64])
    with paddle.no_grad():
        expected = net(x).numpy()
        reparameterize_model(net)
        got = net(x).numpy()
    assert not any(isinstance(m, paddle.nn.BatchNorm2D) for m in net.sublayers())
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_jit_export_matches_eager(tmp_path):
    paddle.seed(1)
    net = build_model({"name": "PeleeNet", "class_num": 10})
    net.eval()
    static = paddle.jit.to_static(
        net, input_spec=[paddle.static.InputSpec([None, 3, 64, 64], "float32")], full_graph=True
    )
    path = str(tmp_path / "peleenet" / "inference")
    paddle.jit.save(static, path)
    loaded = paddle.jit.load(path)
    loaded.eval()
    for batch in (1, 3):
        x = paddle.randn([batch, 3, 64, 64])
        with paddle.no_grad():
            expected = net(x).numpy()
            got = loaded(x).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
