"""The trainer built from its groups: LR position on resume, the log line, callbacks, the epoch's values."""

from __future__ import annotations

import logging
import re

import paddle
import pytest

from ppcls.engine.callbacks import Callback
from ppcls.engine.checkpoint import Checkpointer
from ppcls.engine.trainer import (
    Evaluation,
    Hooks,
    Models,
    Optimization,
    TrainData,
    Trainer,
    TrainerOptions,
    TrainState,
)
from ppcls.loss import build_loss
from ppcls.optimizer import build_lr

ITERS = 5


class Loader:
    """``ITERS`` batches of 4 random 8-feature rows, labels 0..2, no undecodable image."""

    def __init__(self) -> None:
        paddle.seed(1)
        self.batches = [(paddle.randn([4, 8]), paddle.randint(0, 3, [4]), paddle.full([4], -1, "int64"))
                        for _ in range(ITERS)]

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


class Recorder(Callback):
    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_train_log(self, step: int, values: dict[str, float]) -> None:
        self.steps.append(step)


def make_trainer(tmp_path, state: TrainState | None = None, callbacks=()) -> Trainer:
    paddle.seed(2)
    net = paddle.nn.Linear(8, 3)
    lr = build_lr({"name": "Cosine", "learning_rate": 0.1}, 4, ITERS)
    optimizer = paddle.optimizer.Momentum(learning_rate=lr, parameters=net.parameters())
    return Trainer(
        Models(wrapped=net, plain=net),
        TrainData(Loader()),
        Optimization(build_loss([{"CELoss": {"weight": 1.0}}], 3), optimizer, lr, lr_name="Cosine"),
        Evaluation(),
        TrainerOptions(epochs=4, print_batch_step=2),
        Checkpointer(str(tmp_path), enabled=False),
        Hooks(list(callbacks)),
        state=state,
    )


def test_a_resumed_trainer_starts_the_lr_after_its_completed_epochs(tmp_path):
    fresh = make_trainer(tmp_path)
    for _ in range(2):
        fresh.train_one_epoch(1)
    lr_after_two = fresh.optim.lr_scheduler.get_lr()
    resumed = make_trainer(tmp_path, TrainState(epoch=2))
    assert resumed.global_step == 2 * ITERS
    assert resumed.optim.lr_scheduler.last_epoch == 2 * ITERS
    assert resumed.optim.lr_scheduler() == pytest.approx(lr_after_two)
    assert make_trainer(tmp_path, TrainState(epoch=0)).optim.lr_scheduler.last_epoch == 0


def test_one_epoch_logs_each_window_and_averages(tmp_path, caplog):
    recorder = Recorder()
    trainer = make_trainer(tmp_path, callbacks=[recorder])
    with caplog.at_level(logging.INFO, logger="ppcls.engine.trainer"):
        values = trainer.train_one_epoch(1)
    lines = [r.getMessage() for r in caplog.records if r.name == "ppcls.engine.trainer"]
    iters = [line for line in lines if "[Iter:" in line]
    assert [re.search(r"Iter: (\d+)/5", line).group(1) for line in iters] == ["2", "4", "5"]
    assert all(re.fullmatch(r"\[Train\]\[Epoch 1/4\]\[Iter: \d/5\]lr\(Cosine\): [\d.]+, CELoss: [\d.]+, loss: [\d.]+, "
                            r"batch_cost: [\d.]+s, reader_cost: [\d.]+s, ips: [\d.]+ samples/s, eta: [\d:]+", line)
               for line in iters), iters
    assert re.fullmatch(r"\[Train\]\[Epoch 1/4\]\[Avg\]CELoss: [\d.]+, loss: [\d.]+, batch_cost: [\d.]+s, "
                        r"reader_cost: [\d.]+s, ips: [\d.]+ samples/s, undecodable_images: 0, time: [\d.]+s", lines[-1])
    assert recorder.steps == [2, 4, 5]
    assert set(values) == {"CELoss", "loss", "ips", "reader_cost", "batch_cost", "undecodable_images"}
    assert values["ips"] > 0 and 0 <= values["reader_cost"] <= values["batch_cost"]
    assert trainer.global_step == ITERS
