"""ShuffleNetV2: activations, channel shuffle, export (counts and 224 forward: test_models.py)."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from ppcls.arch import build_model
from ppcls.arch.backbone.shufflenet_v2 import ShuffleNetV2
from ppcls.arch.layers import channel_shuffle, reparameterize_model


def test_swish_variant_uses_swish():
    model = build_model({"name": "ShuffleNetV2_swish"})
    assert model.conv1.act.__class__ is paddle.nn.Swish  # the swish kernel, as PaddleClas (= SiLU)
    relu = build_model({"name": "ShuffleNetV2_x1_0"})
    assert relu.conv1.act.__class__ is paddle.nn.ReLU


def test_act_option():
    model = build_model({"name": "ShuffleNetV2_x0_25", "act": "hardswish", "class_num": 10})
    assert model.conv5.act.__class__ is paddle.nn.Hardswish
    model.eval()
    assert model(paddle.randn([1, 3, 32, 32])).shape == [1, 10]


def test_class_num_and_head():
    model = build_model({"name": "ShuffleNetV2_x0_5", "class_num": 10})
    model.eval()
    assert model(paddle.randn([2, 3, 64, 64])).shape == [2, 10]
    assert all(hasattr(model, n) for n in ShuffleNetV2.head_names)


def test_unknown_scale_raises():
    with pytest.raises(ValueError, match="scale"):
        ShuffleNetV2(scale=0.75)


def test_channel_shuffle_matches_numpy():
    x = np.arange(2 * 6 * 2 * 3, dtype="float32").reshape(2, 6, 2, 3)
    expected = x.reshape(2, 2, 3, 2, 3).transpose(0, 2, 1, 3, 4).reshape(2, 6, 2, 3)
    np.testing.assert_array_equal(channel_shuffle(paddle.to_tensor(x), 2).numpy(), expected)


def test_reparameterize_keeps_outputs():
    paddle.seed(1)
    model = build_model({"name": "ShuffleNetV2_x0_25", "class_num": 10})
    model.train()
    model(paddle.randn([4, 3, 32, 32]))  # move BN running statistics off their init values
    model.eval()
    x = paddle.randn([2, 3, 32, 32])
    before = model(x).numpy()
    reparameterize_model(model)
    np.testing.assert_allclose(model(x).numpy(), before, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "spec_shape, sizes",
    [([None, 3, 64, 64], [(1, 64), (3, 64)]), ([None, 3, None, None], [(1, 64), (2, 96)])],
    ids=["dynamic_batch", "dynamic_batch_and_size"],
)
def test_export_matches_eager(tmp_path, spec_shape, sizes):
    paddle.seed(0)
    model = build_model({"name": "ShuffleNetV2_x0_25", "class_num": 10})
    model.eval()
    inputs = [paddle.randn([n, 3, hw, hw]) for n, hw in sizes]
    eager = [model(x).numpy() for x in inputs]
    spec = [paddle.static.InputSpec(spec_shape, "float32", "x")]
    # full_graph=True: the AST path that honours input_spec, as an exporter would use
    static = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
    path = str(tmp_path / "inference")
    paddle.jit.save(static, path, input_spec=spec)
    loaded = paddle.jit.load(path)
    loaded.eval()
    for x, expected in zip(inputs, eager):
        out = loaded(x)
        out = out[0] if isinstance(out, (list, tuple)) else out
        assert out.shape == [x.shape[0], 10]
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-4)
