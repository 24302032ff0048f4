import paddle
import pytest

from ppcls.arch import build_model

PARAMS = {
    "PPLCNet_x0_25": 1_523_936, "PPLCNet_x0_35": 1_646_930, "PPLCNet_x0_5": 1_885_048,
    "PPLCNet_x0_75": 2_365_232, "PPLCNet_x1_0": 2_963_464, "PPLCNet_x1_5": 4_516_248,
    "PPLCNet_x2_0": 6_543_400, "PPLCNet_x2_5": 9_044_920,
}


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_count(name):
    model = build_model({"name": name, "class_num": 1000})
    assert sum(p.numel().item() for p in model.parameters()) == PARAMS[name]


def test_generic_entry_with_scale_matches_named_width():
    a = build_model({"name": "PPLCNet", "scale": 0.5, "class_num": 1000})
    assert sum(p.numel().item() for p in a.parameters()) == PARAMS["PPLCNet_x0_5"]


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
