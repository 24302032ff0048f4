import numpy as np
import paddle
import pytest

from ppcls.arch import build_model
from ppcls.optimizer import build_optimizer


def test_freeze_backbone_trains_only_the_head():
    model = build_model({"name": "PPLCNet_x0_25", "class_num": 3, "freeze_backbone": True})
    trainable = [n for n, p in model.named_parameters() if not p.stop_gradient]
    assert trainable and all(n.startswith(("last_conv.", "fc.")) for n in trainable)
    opt = build_optimizer({"name": "Momentum", "regularizer": {"name": "L2", "coeff": 0.1}}, model, 0.1)
    assert {id(p) for g in opt._param_groups for p in g["params"]} == {
        id(p) for p in model.parameters() if not p.stop_gradient}
    model.train()
    bn = model.conv1.bn
    mean_before = bn._mean.numpy().copy()
    w_before = model.conv1.conv.weight.numpy().copy()
    loss = model(paddle.randn([4, 3, 32, 32]) * 3 + 1).mean()
    loss.backward()
    opt.step()
    assert model.conv1.conv.weight.grad is None
    np.testing.assert_array_equal(model.conv1.conv.weight.numpy(), w_before)
    np.testing.assert_array_equal(bn._mean.numpy(), mean_before)  # frozen BN statistics stay fixed


def test_freeze_params_by_prefix_and_unknown_prefix():
    model = build_model({"name": "PPLCNet_x0_25", "class_num": 3, "freeze_params": ["conv1", "blocks2"]})
    # BatchNorm running statistics never take gradients; look at the learnable tensors
    frozen = {n for n, p in model.named_parameters() if p.stop_gradient and not n.endswith(("_mean", "_variance"))}
    assert any(n.startswith("conv1.") for n in frozen) and any(n.startswith("blocks2.") for n in frozen)
    assert not any(n.startswith("blocks3.") for n in frozen)
    with pytest.raises(ValueError, match="no parameter or layer named 'nothere'"):
        build_model({"name": "PPLCNet_x0_25", "class_num": 3, "freeze_params": ["nothere"]})
