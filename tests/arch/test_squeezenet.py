"""SqueezeNet 1.0 / 1.1: Fire structure, head, input checks (counts and 224 forward: test_models.py)."""

from __future__ import annotations

import paddle
import pytest

from ppcls.arch import build_model
from ppcls.arch.backbone.squeezenet import Fire, SqueezeNet

VERSIONS = ["SqueezeNet1_0", "SqueezeNet1_1"]


@pytest.mark.parametrize("name", VERSIONS)
def test_structure(name):
    model = build_model({"name": name, "class_num": 1000})
    fires = [layer for layer in model.features if isinstance(layer, Fire)]
    assert len(fires) == 8
    assert not any(isinstance(m, paddle.nn.BatchNorm2D) for m in model.sublayers())


def test_scores_are_non_negative():
    model = build_model({"name": "SqueezeNet1_1", "class_num": 1000})
    model.eval()
    with paddle.no_grad():
        out = model(paddle.randn([1, 3, 224, 224]))
    assert bool((out >= 0).all())  # the classifier conv is followed by ReLU


def test_dropout_active_only_in_train():
    paddle.seed(0)
    model = build_model({"name": "SqueezeNet1_1", "class_num": 10})
    x = paddle.randn([2, 3, 64, 64])
    model.eval()
    assert bool(paddle.equal_all(model(x), model(x)))
    model.train()
    assert not bool(paddle.equal_all(model(x), model(x)))


def test_class_num_and_head():
    model = build_model({"name": "SqueezeNet1_1", "class_num": 10})
    model.eval()
    assert model(paddle.randn([2, 3, 32, 32])).shape == [2, 10]
    assert all(hasattr(model, n) for n in SqueezeNet.head_names)


@pytest.mark.parametrize("name", VERSIONS)
def test_too_small_input_raises(name):
    model = build_model({"name": name, "class_num": 10})
    model.eval()
    with pytest.raises(ValueError, match="too small"):
        model(paddle.randn([1, 3, 16, 16]))
    assert model(paddle.randn([1, 3, 32, 32])).shape == [1, 10]


def test_unknown_version_raises():
    with pytest.raises(ValueError, match="version"):
        SqueezeNet(version="2.0")
