import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from ppcls.loss import CELoss, build_loss


def test_plain_ce_matches_paddle():
    x = paddle.randn([4, 5])
    y = paddle.to_tensor([0, 1, 4, 2])
    np.testing.assert_allclose(CELoss()(x, y).numpy(), F.cross_entropy(x, y).numpy(), rtol=1e-5)


def test_label_smoothing_matches_formula():
    x = paddle.randn([3, 4])
    y = paddle.to_tensor([1, 0, 3])
    eps = 0.1
    logp = F.log_softmax(x, axis=-1).numpy()
    target = np.full((3, 4), eps / 4)
    target[np.arange(3), y.numpy()] += 1 - eps
    expected = -(target * logp).sum(-1).mean()
    assert float(CELoss(epsilon=eps)(x, y)) == pytest.approx(expected, rel=1e-5)


def test_soft_targets():
    x = paddle.randn([2, 3])
    soft = paddle.to_tensor([[0.7, 0.3, 0.0], [0.0, 0.5, 0.5]], dtype="float32")
    logp = F.log_softmax(x, axis=-1).numpy()
    assert float(CELoss()(x, soft)) == pytest.approx(-(soft.numpy() * logp).sum(-1).mean(), rel=1e-5)


def test_weighted_list():
    loss = build_loss([{"CELoss": {"weight": 0.5}}, {"MixCELoss": {"weight": 2.0}}])
    x = paddle.randn([2, 3])
    y = paddle.to_tensor([0, 2])
    out = loss(x, y)
    assert set(out) == {"CELoss", "MixCELoss", "loss"}
    assert float(out["loss"]) == pytest.approx(2.5 * float(out["CELoss"]), rel=1e-5)


def test_bad_epsilon():
    with pytest.raises(ValueError, match="CELoss.epsilon"):
        CELoss(epsilon=1.5)
