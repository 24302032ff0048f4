"""PP-LCNet: the generic scale entry and the paper's structure (counts and 224 forward: test_models.py)."""

import paddle

from ppcls.arch import build_model
from ppcls.utils.flops import count_params


def test_generic_entry_with_scale_matches_named_width():
    a = build_model({"name": "PPLCNet", "scale": 0.5, "class_num": 1000})
    b = build_model({"name": "PPLCNet_x0_5", "class_num": 1000})
    assert count_params(a) == count_params(b) == 1_885_048  # the count named in the issue


def test_forward_shapes_and_paper_structure():
    model = build_model({"name": "PPLCNet_x1_0", "class_num": 7})
    model.eval()
    assert model(paddle.randn([2, 3, 64, 64])).shape == [2, 7]
    assert model(paddle.randn([1, 3, 224, 224])).shape == [1, 7]
    model.train()
    assert model(paddle.randn([2, 3, 32, 32])).shape == [2, 7]
    # SE only in the last stage, 5x5 depthwise from the late stages on, 1280-d head conv
    assert all(isinstance(b.se, paddle.nn.Identity) for b in model.blocks5)
    assert not any(isinstance(b.se, paddle.nn.Identity) for b in model.blocks6)
    assert [b.dw_conv.conv._kernel_size[0] for b in model.blocks5] == [3, 5, 5, 5, 5, 5]
    assert model.last_conv.weight.shape == [1280, 512, 1, 1]
