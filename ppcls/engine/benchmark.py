"""Training-speed benchmark: the real trainer against a bare Paddle loop on in-memory tensors."""

from __future__ import annotations

import copy
import logging
import re
import tempfile
import time
from typing import Any

import paddle
import paddle.nn.functional as F

from ppcls.arch import build_model

from .callbacks import Callback
from .runner import _setup, build_training

logger = logging.getLogger(__name__)


class _WindowIps(Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_log(self, step: int, values: dict[str, float]) -> None:
        self.values.append(values["ips"])


def trainer_ips(cfg: dict, iters: int, warmup: int) -> dict[str, Any]:
    """Steady-state samples/s of the real trainer (data loading included) and its reader share."""
    cfg = copy.deepcopy(cfg)
    g = cfg["Global"]
    g.update(epochs=1, max_iters_per_epoch=warmup + iters, print_batch_step=1, eval_during_train=False)
    _setup(cfg)
    with tempfile.TemporaryDirectory() as folder:
        trainer = build_training(cfg, folder, save=False)
        probe = _WindowIps()
        trainer.hooks.callbacks = [probe]
        values = trainer.train_one_epoch(1)
    steady = sorted(probe.values[warmup:])
    batch = trainer.data.loader.batch_sampler.batch_size
    return {
        "ips": steady[len(steady) // 2],
        "reader_share": values["reader_cost"] / max(values["batch_cost"], 1e-9),
        "batch_size": batch,
    }


def bare_loop_ips(arch: dict, batch: int, image_shape: list[int], iters: int, warmup: int,
                  to_static: bool = False) -> float:
    """Forward, loss, backward and Momentum step on fixed tensors: the ceiling for the trainer."""
    model = build_model(arch)
    model.train()
    opt = paddle.optimizer.Momentum(0.01, parameters=model.parameters(), weight_decay=1e-4)
    step_model = paddle.jit.to_static(model, full_graph=True) if to_static else model
    x = paddle.randn([batch, *image_shape])
    y = paddle.randint(0, int(arch.get("class_num", 1000)), [batch])
    times = []
    for i in range(warmup + iters):
        tic = time.perf_counter()
        loss = F.cross_entropy(step_model(x), y)
        loss.backward()
        opt.step()
        opt.clear_grad()
        float(loss)
        if i >= warmup:
            times.append(time.perf_counter() - tic)
    times.sort()
    return batch / times[len(times) // 2]


# one logged training iteration (this trainer's and PaddleClas's lines share the format); [Avg] lines are not matched
IPS_LINE = re.compile(r"\[Train\]\[Epoch \d+/\d+\]\[Iter: ?\d+/\d+\].*?ips: ([0-9.]+) samples/s")


def logged_ips(text: str) -> list[float]:
    """Per-iteration samples/s from a training log run with ``Global.print_batch_step=1``."""
    return [float(m.group(1)) for m in IPS_LINE.finditer(text)]


def median_ips(values: list[float], skip: int = 5) -> float:
    """Median of ``values`` after the first ``skip`` iterations (start-up), as the comparisons report."""
    kept = sorted(values[skip:])
    if not kept:
        raise ValueError(f"{len(values)} logged iterations: none left after skipping the first {skip}")
    return kept[len(kept) // 2]
