import paddle
import pytest

from ppcls.arch import build_model
from ppcls.optimizer import build_lr, build_optimizer, split_decay_groups
from ppcls.registry import OPTIMIZERS


def tiny():
    return build_model({"name": "PPLCNet_x0_25", "class_num": 4})


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_builds_and_steps(name):
    paddle.seed(0)
    model = tiny()
    lr = build_lr({"name": "Constant", "learning_rate": 0.01}, 1, 1)
    cfg = {"name": name, "regularizer": {"name": "L2", "coeff": 1e-4}, "clip_norm": 5.0}
    opt = build_optimizer(cfg, model, lr)
    before = model.fc.weight.numpy().copy()
    loss = model(paddle.randn([2, 3, 32, 32])).mean()
    loss.backward()
    opt.step()
    assert not (model.fc.weight.numpy() == before).all()


def test_momentum_nesterov_passed_through():
    opt = build_optimizer({"name": "Momentum", "momentum": 0.8, "use_nesterov": True}, tiny(), 0.1)
    assert opt._use_nesterov and opt._momentum == pytest.approx(0.8)


def test_decay_groups():
    model = tiny()
    decay, no_decay = split_decay_groups(model, None, False)
    bn_ids = {id(model.conv1.bn.weight), id(model.conv1.bn.bias)}
    assert bn_ids <= {id(p) for p in no_decay}
    assert id(model.fc.bias) in {id(p) for p in decay}
    _, no_decay2 = split_decay_groups(model, None, True)
    assert id(model.fc.bias) in {id(p) for p in no_decay2}
    _, no_decay3 = split_decay_groups(model, "fc.", False)
    assert id(model.fc.weight) in {id(p) for p in no_decay3}


def test_frozen_parameters_are_left_out():
    model = tiny()
    for p in model.conv1.parameters():
        p.stop_gradient = True
    decay, no_decay = split_decay_groups(model, None, False)
    frozen = {id(p) for p in model.conv1.parameters()}
    assert not frozen & {id(p) for p in decay + no_decay}
