"""MobileNeXt: the sandglass block and the head (counts and 224 forward: test_models.py)."""

from __future__ import annotations

import paddle
import pytest

from ppcls.arch import build_model
from ppcls.arch.backbone.mobilenext import MobileNeXt, SandglassBlock


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
