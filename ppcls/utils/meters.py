"""Meters of a training epoch: device-side loss sums (read only when a log line is written) and step timing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import paddle

from ppcls.utils import dist

T = TypeVar("T")


class LossMeter:
    """Sums each loss term times the batch size on the device; averages on demand."""

    def __init__(self) -> None:
        self.sums: dict[str, paddle.Tensor] = {}
        self.count = 0

    def update(self, losses: dict[str, paddle.Tensor], batch_size: int) -> None:
        for name, value in losses.items():
            v = value.detach() * batch_size
            self.sums[name] = v if name not in self.sums else self.sums[name] + v
        self.count += batch_size

    def averages(self, reduce: bool = False) -> dict[str, float]:
        if not self.sums:
            return {}
        names = list(self.sums)
        stacked = paddle.stack([self.sums[n].reshape([]) .astype("float32") for n in names]
                               + [paddle.to_tensor(float(self.count), dtype="float32")])
        if reduce:
            stacked = dist.all_reduce_sum(stacked.clone())
        values = stacked.numpy()
        return {n: float(values[i] / max(values[-1], 1.0)) for i, n in enumerate(names)}


@dataclass
class StepCosts:
    """Average seconds per step (the whole step, and waiting for its batch) and samples/s over all ranks."""

    batch_cost: float
    reader_cost: float
    ips: float
    steps: int


class StepTimer:
    """Wall-clock timing of one epoch's steps, for the log window and for the whole epoch.

    A step is timed from asking the loader for its batch (the data wait, ``reader_cost``) to
    :meth:`step_done` after forward, backward, optimizer step and metric updates (``batch_cost``);
    the log line and callbacks written in between steps are not counted. ``ips`` counts the samples
    of all ``world_size`` ranks (each rank trains a batch per step). Host clocks only: no device sync.
    """

    def __init__(self, world_size: int = 1, clock: Callable[[], float] = time.perf_counter) -> None:
        self.world_size = world_size
        self._clock = clock
        self.started = self._tic = clock()
        self._wait = 0.0
        self._epoch = _Sums()
        self._window = _Sums()

    def batches(self, batches: Iterable[T]) -> Iterator[T]:
        """``batches``, timing how long each one takes to arrive."""
        source = iter(batches)
        while True:
            self._tic = self._clock()
            try:
                batch = next(source)
            except StopIteration:
                return
            self._wait = self._clock() - self._tic
            yield batch

    def step_done(self, batch_size: int) -> None:
        """The step of the last batch has finished: count its data wait, its whole time and its samples."""
        total = self._clock() - self._tic
        for sums in (self._epoch, self._window):
            sums.add(self._wait, total, batch_size)

    @property
    def samples(self) -> int:
        """Samples this rank trained on in this epoch."""
        return self._epoch.samples

    def elapsed(self) -> float:
        """Seconds since the epoch began, log lines included."""
        return self._clock() - self.started

    def window(self) -> StepCosts:
        """Costs of the steps since the last call (the log window); starts a new window."""
        costs = self._window.costs(self.world_size)
        self._window = _Sums()
        return costs

    def epoch(self) -> StepCosts:
        """Costs of all steps of the epoch so far."""
        return self._epoch.costs(self.world_size)


class _Sums:
    def __init__(self) -> None:
        self.reader = self.batch = 0.0
        self.samples = self.steps = 0

    def add(self, reader: float, batch: float, samples: int) -> None:
        self.reader += reader
        self.batch += batch
        self.samples += samples
        self.steps += 1

    def costs(self, world_size: int) -> StepCosts:
        n = max(self.steps, 1)
        return StepCosts(batch_cost=self.batch / n, reader_cost=self.reader / n,
                         ips=self.samples * world_size / max(self.batch, 1e-9), steps=self.steps)


def format_metrics(values: dict[str, float], fmt: str = "{:.5f}") -> str:
    return ", ".join(f"{k}: {fmt.format(v)}" for k, v in values.items())
