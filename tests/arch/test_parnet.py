"""ParNet: blocks, reparameterization parity, export (counts and 224 forward: test_models.py)."""

from __future__ import annotations

import numpy as np
import paddle
import pytest

from ppcls.arch import build_model
from ppcls.arch.backbone.parnet import ARCH, FusionBlock, ParNet, ParNetBlock
from ppcls.arch.layers import reparameterize_model


def _count(model: paddle.nn.Layer) -> int:
    return int(sum(int(p.numel()) for p in model.parameters()))


def _give_bn_statistics(model: paddle.nn.Layer, *inputs: paddle.Tensor) -> None:
    """Random BN affine parameters, running statistics from one train-mode batch."""
    bns = [m for m in model.sublayers(include_self=True) if isinstance(m, paddle.nn.BatchNorm2D)]
    for bn in bns:
        n = bn._num_features
        bn.weight.set_value(paddle.rand([n]) + 0.5)
        bn.bias.set_value(paddle.randn([n]) * 0.1)
        bn._momentum = 0.0  # running statistics := this batch's statistics
    model.train()
    with paddle.no_grad():
        model(*inputs)
    for bn in bns:
        bn._momentum = 0.9
    model.eval()


def _eval(model: paddle.nn.Layer, *inputs: paddle.Tensor) -> np.ndarray:
    with paddle.no_grad():
        return model(*inputs).numpy()


def _calibrated_parnet_s(seed: int = 0) -> ParNet:
    paddle.seed(seed)
    model = build_model({"name": "ParNet_S", "class_num": 10})
    _give_bn_statistics(model, paddle.randn([8, 3, 64, 64]))
    return model


def test_dropout_defaults():
    assert [ARCH[v][2] for v in ("S", "M", "L", "XL")] == [0.0, 0.0, 0.1, 0.1]
    model = build_model({"name": "ParNet_S", "class_num": 10, "dropout_prob": 0.2})
    assert isinstance(model.dropout, paddle.nn.Dropout)


@pytest.mark.parametrize("name", ["ParNet_S", "ParNet_M"])
def test_forward_small_input(name):
    model = build_model({"name": name, "class_num": 10})
    x = paddle.randn([2, 3, 64, 64])
    model.train()
    assert model(x).shape == [2, 10]
    model.eval()
    assert _eval(model, x).shape == (2, 10)


def test_features_head_and_backward():
    model = build_model({"name": "ParNet_S", "class_num": 10, "act": "relu"})
    assert all(hasattr(model, n) for n in ParNet.head_names)
    model.eval()
    feats = model.forward_features(paddle.randn([1, 3, 64, 64]))
    assert feats.shape == [1, model.num_features, 2, 2]
    model.train()
    loss = model(paddle.randn([2, 3, 32, 32])).mean()
    loss.backward()
    assert model.downsamples[0][0].conv3x3.conv.weight.grad is not None


def test_two_instances_are_independent():
    a = build_model({"name": "ParNet_S", "class_num": 10})
    b = build_model({"name": "ParNet_S", "class_num": 10})
    assert not {p.name for p in a.parameters()} & {p.name for p in b.parameters()}
    a.fc.weight.set_value(paddle.zeros_like(a.fc.weight))
    assert float(b.fc.weight.abs().sum()) > 0


def test_invalid_arguments():
    with pytest.raises(ValueError):
        ParNetBlock(8, 8, stride=3)
    with pytest.raises(ValueError):
        ParNetBlock(9, 8, groups=2)
    with pytest.raises(ValueError):
        ParNet(planes=(8, 16), num_blocks=(2, 2))
    with pytest.raises(ValueError):
        ParNet(planes=(8, 16, 32), num_blocks=(2, 2, 2, 2))
    with pytest.raises(ValueError):
        build_model({"name": "ParNet_S", "planes": (8, 16, 32)})


def test_block_branches_follow_the_released_code():
    same = ParNetBlock(16, 16, 1)
    assert isinstance(same.identity, paddle.nn.BatchNorm2D) and same.sse.scale == 1.0
    down = ParNetBlock(16, 32, 2)
    assert down.identity is None and down.sse.scale == 2.0
    assert isinstance(down.conv1x1[0], paddle.nn.AvgPool2D)
    assert down(paddle.randn([1, 16, 8, 8])).shape == [1, 32, 4, 4]


BLOCK_CASES = {
    "stride1_sse": lambda: (ParNetBlock(16, 16, 1), [(2, 16, 8, 8)]),
    "stride2_pool": lambda: (ParNetBlock(16, 24, 2), [(2, 16, 8, 8)]),
    "stride1_widen": lambda: (ParNetBlock(16, 24, 1), [(2, 16, 8, 8)]),
    "identity_no_sse": lambda: (ParNetBlock(16, 16, 1, use_sse=False), [(2, 16, 8, 8)]),
    "grouped_identity": lambda: (ParNetBlock(16, 16, 1, groups=2, use_sse=False), [(2, 16, 6, 6)]),
    "fusion_stride2": lambda: (FusionBlock(8, 16, 2), [(2, 8, 8, 8), (2, 8, 8, 8)]),
    "fusion_stride1": lambda: (FusionBlock(8, 8, 1), [(2, 8, 6, 6), (2, 8, 6, 6)]),
}


@pytest.mark.parametrize("case", sorted(BLOCK_CASES))
def test_block_reparameterization_parity(case):
    paddle.seed(3)
    block, shapes = BLOCK_CASES[case]()
    inputs = [paddle.randn(list(s)) for s in shapes]
    _give_bn_statistics(block, *[paddle.randn([8, *s[1:]]) for s in shapes])
    expected = _eval(block, *inputs)
    reparameterize_model(block)
    np.testing.assert_allclose(_eval(block, *inputs), expected, atol=1e-4, rtol=0)
    block.reparameterize()  # twice is harmless
    np.testing.assert_allclose(_eval(block, *inputs), expected, atol=1e-4, rtol=0)
    assert not [m for m in block.sublayers() if isinstance(m, paddle.nn.BatchNorm2D)]


def test_model_reparameterization_parity():
    model = _calibrated_parnet_s()
    x = paddle.randn([2, 3, 64, 64])
    expected = _eval(model, x)
    before = _count(model)
    reparameterize_model(model)
    np.testing.assert_allclose(_eval(model, x), expected, atol=1e-4, rtol=0)
    reparameterize_model(model)
    np.testing.assert_allclose(_eval(model, x), expected, atol=1e-4, rtol=0)
    assert not [m for m in model.sublayers() if isinstance(m, paddle.nn.BatchNorm2D)]
    blocks = [m for m in model.sublayers() if isinstance(m, ParNetBlock)]
    assert len(blocks) == 22 and all(b.deployed for b in blocks)
    assert all(not hasattr(b, "conv3x3") and not hasattr(b, "conv1x1") for b in blocks)
    assert _count(model) < before


def test_reparameterized_export_matches_eager(tmp_path):
    model = _calibrated_parnet_s(seed=1)
    reparameterize_model(model)
    static = paddle.jit.to_static(
        model, input_spec=[paddle.static.InputSpec([None, 3, 64, 64], "float32")], full_graph=True
    )
    path = str(tmp_path / "parnet" / "inference")
    paddle.jit.save(static, path)
    loaded = paddle.jit.load(path)
    loaded.eval()
    for batch in (1, 3):
        x = paddle.randn([batch, 3, 64, 64])
        np.testing.assert_allclose(_eval(loaded, x), _eval(model, x), atol=1e-4, rtol=0)
