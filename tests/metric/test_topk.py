import paddle
import pytest

from ppcls.metric import TopkAcc, build_metrics


def test_topk_accumulates_over_batches():
    m = TopkAcc(topk=[1, 2])
    m.update(paddle.to_tensor([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05]]), paddle.to_tensor([1, 1]))
    m.update(paddle.to_tensor([[0.2, 0.3, 0.5]]), paddle.to_tensor([0]))
    assert m.compute() == {"top1": pytest.approx(1 / 3), "top2": pytest.approx(2 / 3)}
    m.reset()
    assert m.compute() == {"top1": 0.0, "top2": 0.0}


def test_k_larger_than_class_num_is_dropped_once(caplog):
    with caplog.at_level("WARNING"):
        (m,) = build_metrics([{"TopkAcc": {"topk": [1, 5]}}], class_num=2)
    assert m.topk == [1]
    assert caplog.text.count("top-5 dropped") == 1
    m.update(paddle.to_tensor([[0.2, 0.8]]), paddle.to_tensor([0]))
    assert m.compute() == {"top1": 0.0}


def test_soft_labels_use_argmax():
    m = TopkAcc(topk=[1])
    m.update(paddle.to_tensor([[0.1, 0.9]]), paddle.to_tensor([[0.3, 0.7]], dtype="float32"))
    assert m.compute()["top1"] == 1.0
