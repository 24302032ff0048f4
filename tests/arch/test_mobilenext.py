"""MobileNeXt: exact parameter counts, forward shapes, independence of instances, export."""

from __future__ import annotations

import paddle
import pytest

from ppcls.arch import build_model
from ppcls.arch.backbone.mobilenext import MobileNeXt, SandglassBlock

# Paddle counting (BatchNorm running statistics included), class_num=1000
PARAM_COUNTS = {
    "MobileNeXt_x0_35": 1_936_344,
    "MobileNeXt_x0_5": 2_181_600,
    "MobileNeXt_x0_75": 2_807_424,
    "MobileNeXt_x1_0": 3_588_440,
    "MobileNeXt_x1_4": 6_200_424,
}


def _count(model: paddle.nn.Layer) -> int:
    return int(sum(int(p.numel()) for p in model.parameters()))


@pytest.fixture(scope="module", params=sorted(PARAM_COUNTS))
def named_model(request):
    paddle.seed(0)
    return request.param, build_model({"name": request.param, "class_num": 1000})


def test_parameter_count(named_model):
    name, model = named_model
    assert isinstance(model, MobileNeXt)
    assert _count(model) == PARAM_COUNTS[name]


def test_forward_224_eval(named_model):
    _, model = named_model
    model.eval()
    with paddle.no_grad():
        out = model(paddle.randn([1, 3, 224, 224]))
    assert out.shape == [1, 1000]
    assert bool(paddle.isfinite(out).all())


def test_class_num_and_head():
    model = build_model({"name": "MobileNeXt_x0_35", "class_num": 10})
    model.eval()
    assert model(paddle.randn([2, 3, 64, 64])).shape == [2, 10]
    assert all(hasattr(model, n) for n in MobileNeXt.head_names)
    feats = model.forward_features(paddle.randn([1, 3, 64, 64]))
    assert feats.shape == [1, model.num_features, 2, 2]


def test_block_layout_and_shortcut():
    repeat = SandglassBlock(64, 64, 16, stride=1)
    assert repeat.use_shortcut
    down = SandglassBlock(64, 96, 16, stride=2, dw_in=False)
    assert not down.use_shortcut
    assert down(paddle.randn([1, 64, 8, 8])).shape == [1, 96, 4, 4]
    with pytest.raises(ValueError):
        SandglassBlock(64, 96, 16, stride=2, dw_out=False)
    with pytest.raises(ValueError):
        SandglassBlock(64, 96, 16, stride=3)
