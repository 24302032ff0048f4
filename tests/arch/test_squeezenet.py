"""SqueezeNet 1.0 / 1.1: exact parameter counts, forward shapes, independent instances."""

from __future__ import annotations

import paddle
import pytest

from ppcls.arch import build_model
from ppcls.arch.backbone.squeezenet import Fire, SqueezeNet

# Paddle counting, class_num=1000 (no BatchNorm in SqueezeNet)
PARAM_COUNTS = {
    "SqueezeNet1_0": 1_248_424,
    "SqueezeNet1_1": 1_235_496,
}


def _count(model: paddle.nn.Layer) -> int:
    return int(sum(int(p.numel()) for p in model.parameters()))


@pytest.fixture(scope="module", params=sorted(PARAM_COUNTS))
def named_model(request):
    paddle.seed(0)
    return request.param, build_model({"name": request.param, "class_num": 1000})


def test_parameter_count(named_model):
    name, model = named_model
    assert isinstance(model, SqueezeNet)
    assert _count(model) == PARAM_COUNTS[name]


def test_structure(named_model):
    _, model = named_model
    fires = [layer for layer in model.features if isinstance(layer, Fire)]
    assert len(fires) == 8
    assert not any(isinstance(m, paddle.nn.BatchNorm2D) for m in model.sublayers())


def test_forward_224_eval(named_model):
    _, model = named_model
    model.eval()
    with paddle.no_grad():
        out = model(paddle.randn([1, 3, 224, 224]))
    assert out.shape == [1, 1000]
    assert bool(paddle.isfinite(out).all())
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


@pytest.mark.parametrize("name", sorted(PARAM_COUNTS))
def test_too_small_input_raises(name):
    model = build_model({"name": name, "class_num": 10})
    model.eval()
    with pytest.raises(ValueError, match="too small"):
        model(paddle.randn([1, 3, 16, 16]))
    assert model(paddle.randn([1, 3, 32, 32])).shape == [1, 10]


def test_unknown_version_raises():
    with pytest.raises(ValueError, match="version"):
        SqueezeNet(version="2.0")
