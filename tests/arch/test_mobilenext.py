"""MobileNeXt: exact parameter counts, forward shapes, independence of instances, export."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from ppcls.arch import build_model
from ppcls.arch.backbone.mobilenext import MobileNeXt, SandglassBlock
from ppcls.arch.layers import reparameterize_model

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


@pytest.mark.parametrize("train", [True, False])
def test_forward_small_input(named_model, train):
    _, model = named_model
    model.train() if train else model.eval()
    out = model(paddle.randn([2, 3, 64, 64]))
    assert out.shape == [2, 1000]
    model.eval()


def test_class_num_and_head():
    model = build_model({"name": "MobileNeXt_x0_35", "class_num": 10})
    model.eval()
    assert model(paddle.randn([2, 3, 64, 64])).shape == [2, 10]
    assert all(hasattr(model, n) for n in MobileNeXt.head_names)
    feats = model.forward_features(paddle.randn([1, 3, 64, 64]))
    assert feats.shape == [1, model.num_features, 2, 2]


def test_two_instances_are_independent():
    a = build_model({"name": "MobileNeXt_x0_35", "class_num": 10})
    b = build_model({"name": "MobileNeXt_x0_5", "class_num": 10})
    names_a = {p.name for p in a.parameters()}
    names_b = {p.name for p in b.parameters()}
    assert not names_a & names_b
    a.fc.weight.set_value(paddle.zeros_like(a.fc.weight))
    assert float(b.fc.weight.abs().sum()) > 0
    a.eval()
    b.eval()
    x = paddle.randn([1, 3, 64, 64])
    assert a(x).shape == b(x).shape == [1, 10]


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


def test_reparameterized_model_matches():
    paddle.seed(2)
    model = build_model({"name": "MobileNeXt_x0_35", "class_num": 10})
    model.train()
    model(paddle.randn([4, 3, 64, 64]))  # move the BN statistics away from their defaults
    model.eval()
    x = paddle.randn([2, 3, 64, 64])
    with paddle.no_grad():
        expected = model(x).numpy()
        reparameterize_model(model)
        got = model(x).numpy()
    assert not any(isinstance(m, paddle.nn.BatchNorm2D) for m in model.sublayers())
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_jit_export_matches_eager(tmp_path):
    paddle.seed(1)
    model = build_model({"name": "MobileNeXt_x0_35", "class_num": 10})
    model.eval()
    static = paddle.jit.to_static(
        model, input_spec=[paddle.static.InputSpec([None, 3, 64, 64], "float32")], full_graph=True
    )
    path = str(tmp_path / "mobilenext" / "inference")
    paddle.jit.save(static, path)
    loaded = paddle.jit.load(path)
    loaded.eval()
    for batch in (1, 3):
        x = paddle.randn([batch, 3, 64, 64])
        with paddle.no_grad():
            expected = model(x).numpy()
            got = loaded(x).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
