"""PeleeNet: stem and dense layers (count and 224 forward: test_models.py)."""

from __future__ import annotations

import paddle
import pytest

from ppcls.arch import build_model
from ppcls.arch.backbone.peleenet import PeleeNet, StemBlock, TwoWayDenseLayer


@pytest.fixture(scope="module")
def model():
    paddle.seed(0)
    return build_model({"name": "PeleeNet", "class_num": 1000})


def test_feature_width(model):
    assert isinstance(model, PeleeNet)
    assert model.num_features == 704


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
