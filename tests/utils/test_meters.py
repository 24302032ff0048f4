"""The step timer: data wait and step cost per log window and per epoch, ips over all ranks."""

from __future__ import annotations

import pytest

from ppcls.utils.meters import StepTimer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


class SlowLoader:
    """Each batch takes ``wait`` seconds to arrive."""

    def __init__(self, clock: FakeClock, waits: list[float]) -> None:
        self.clock, self.waits = clock, waits

    def __iter__(self):
        for i, wait in enumerate(self.waits):
            self.clock.now += wait
            yield i


def test_window_and_epoch_costs(clock):
    timer = StepTimer(world_size=2, clock=clock)
    steps = 0
    for _ in timer.batches(SlowLoader(clock, [0.5, 0.1, 0.1])):
        clock.now += 1.0  # forward, backward, step
        timer.step_done(batch_size=4)
        clock.now += 7.0  # a log line between steps is not counted
        steps += 1
        if steps == 2:
            window = timer.window()
            assert (window.steps, window.batch_cost, window.reader_cost) == (2, pytest.approx(1.3), pytest.approx(0.3))
            assert window.ips == pytest.approx(2 * 8 / 2.6)
    last = timer.window()
    assert (last.steps, last.batch_cost, last.reader_cost) == (1, pytest.approx(1.1), pytest.approx(0.1))
    epoch = timer.epoch()
    assert (epoch.steps, epoch.batch_cost, epoch.reader_cost) == (3, pytest.approx(3.7 / 3), pytest.approx(0.7 / 3))
    assert epoch.ips == pytest.approx(2 * 12 / 3.7)
    assert timer.samples == 12 and timer.elapsed() == pytest.approx(3.7 + 3 * 7.0)


def test_no_steps(clock):
    timer = StepTimer(clock=clock)
    assert list(timer.batches([])) == []
    costs = timer.epoch()
    assert (costs.steps, costs.batch_cost, costs.reader_cost, costs.ips) == (0, 0.0, 0.0, 0.0)
    assert timer.samples == 0
