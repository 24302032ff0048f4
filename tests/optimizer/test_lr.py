import math

import pytest

from ppcls.optimizer import build_lr
from ppcls.registry import LRS


def values(sched, n):
    out = []
    for _ in range(n):
        out.append(sched.get_lr())
        sched.step()
    return out


@pytest.mark.parametrize("name, extra", [("Cosine", {}), ("Piecewise", {"decay_epochs": [2, 3], "values": [0.1, 0.01, 0.001]}),
                                         ("Step", {"step_size": 1, "gamma": 0.5}), ("Exponential", {"gamma": 0.5}),
                                         ("Linear", {"end_lr": 0.0}), ("Constant", {})])
def test_every_schedule_warms_up_then_decays_without_increase(name, extra):
    assert name in LRS
    cfg = {"name": name, "learning_rate": 0.1, "warmup_epoch": 1, "warmup_start_lr": 0.0, **extra}
    lrs = values(build_lr(cfg, epochs=4, step_each_epoch=10), 40)
    assert lrs[0] == pytest.approx(0.0)
    assert lrs[5] == pytest.approx(0.05)  # linear warmup
    assert lrs[10] == pytest.approx(0.1)
    after = lrs[10:]
    assert all(b <= a + 1e-12 for a, b in zip(after, after[1:]))
    assert all(math.isfinite(v) and v >= 0 for v in lrs)


def test_cosine_values_and_by_epoch():
    lrs = values(build_lr({"name": "Cosine", "learning_rate": 1.0}, epochs=2, step_each_epoch=2), 4)
    assert lrs == pytest.approx([1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))])
    by_epoch = values(build_lr({"name": "Cosine", "learning_rate": 1.0, "by_epoch": True}, epochs=2, step_each_epoch=2), 4)
    assert by_epoch == pytest.approx([1.0, 1.0, 0.5, 0.5])


def test_state_dict_resumes_exactly():
    cfg = {"name": "Cosine", "learning_rate": 0.4, "warmup_epoch": 1}
    full = values(build_lr(cfg, 3, 5), 15)
    a = build_lr(cfg, 3, 5)
    values(a, 7)
    b = build_lr(cfg, 3, 5)
    b.set_state_dict(a.state_dict())
    assert values(b, 8) == pytest.approx(full[7:])


def test_linear_scaling_to_global_batch(caplog):
    cfg = {"name": "Cosine", "learning_rate": 0.8, "base_batch_size": 2048}
    with caplog.at_level("INFO"):
        s = build_lr(cfg, 10, 10, global_batch_size=16)
    assert s.get_lr() == pytest.approx(0.8 * 16 / 2048)
    assert "0.8 -> 0.00625" in caplog.text
    off = build_lr(dict(cfg, scale_by_batch=False), 10, 10, global_batch_size=16)
    assert off.get_lr() == pytest.approx(0.8)


def test_warmup_not_shorter_than_epochs_is_adjusted_and_logged(caplog):
    with caplog.at_level("WARNING"):
        s = build_lr({"name": "Cosine", "learning_rate": 0.1, "warmup_epoch": 5}, epochs=3, step_each_epoch=4)
    assert "warmup_epoch=5 is not shorter than Global.epochs=3" in caplog.text
    assert s.warmup_steps == 8


def test_piecewise_checks_lengths():
    with pytest.raises(ValueError, match="values needs len\\(decay_epochs\\) \\+ 1"):
        build_lr({"name": "Piecewise", "decay_epochs": [1, 2], "values": [0.1]}, 3, 2)
