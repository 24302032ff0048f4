"""Collaborators the trainer calls at log steps and epoch ends (VisualDL, plots, ...), and stops.

Stopping on a signal: :func:`install_stop_handlers` makes SIGTERM and SIGINT set a
:class:`StopRequest`; the trainer finishes the step it is in, writes ``latest`` and raises
:class:`StoppedBySignal` (``tools/train.py`` exits with :data:`EXIT_STOPPED`, 3). The tool
installs the handlers as its very first act, before Paddle is imported, so a signal during
start-up stops the run with a message instead of killing it. DataLoader worker processes
ignore both signals (``WorkerSeeder`` in ``ppcls/data/build.py``): the signal
sent to a whole process group (Ctrl-C in a terminal, systemd's stop, Slurm's ``scancel``)
reaches them too, and the trainer ends them itself once it has stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

from ppcls.utils.errors import ConfigError, UnknownNameError, summarize

logger = logging.getLogger(__name__)


class Callback:
    """No-op hooks; subclasses override what they need.

    A callback receives the objects it works on (a model, a loader, a folder) when it is built;
    the hooks pass only what the run produces: the epoch, the logged values, the history.
    """

    def on_epoch_begin(self, epoch: int) -> None:
        pass

    def on_train_log(self, step: int, values: dict[str, float]) -> None:
        """``step``: iterations trained so far (resumed epochs included); ``values``: the log line's (with ``lr``, ``ips``)."""

    def on_epoch_end(self, epoch: int, train: dict[str, float], evaluation: dict[str, float] | None) -> None:
        """``evaluation`` is None in epochs without one."""

    def on_train_end(self, history: list[dict[str, Any]]) -> None:
        """``history``: one ``{"epoch", "train", "eval"}`` dict per epoch, as saved in ``.pdstates``."""


class HeadOnlyEpochs(Callback):
    """For the first ``epochs`` epochs only the classifier head learns (``Global.finetune.head_only_epochs``).

    The backbone's parameters get a learning-rate multiplier of 0 (Paddle reads a parameter's
    ``optimize_attr['learning_rate']`` at every step), then their own again; nothing about the
    graph changes, so it works the same in eager, ``to_static`` and data-parallel training, on
    every rank. Its BatchNorm statistics keep adapting to the new data meanwhile.
    """

    def __init__(self, model: Any, epochs: int) -> None:
        from ppcls.arch.freeze import (  # here: tools/train.py imports this module before Paddle
            head_prefixes,
            matches_prefix,
        )

        heads = head_prefixes(model)
        self.epochs = int(epochs)
        self.backbone = [p for name, p in model.named_parameters() if not matches_prefix(name, heads) and not p.stop_gradient]
        self.own = [p.optimize_attr.get("learning_rate", 1.0) for p in self.backbone]
        self.frozen: bool | None = None

    def on_epoch_begin(self, epoch: int) -> None:
        frozen = epoch <= self.epochs
        if frozen == self.frozen:
            return
        for p, own in zip(self.backbone, self.own):
            p.optimize_attr["learning_rate"] = 0.0 if frozen else own
        if frozen:
            logger.info("epoch %d: head only (Global.finetune.head_only_epochs=%d): %d backbone tensors wait",
                        epoch, self.epochs, len(self.backbone))
        elif self.frozen is not None:
            logger.info("epoch %d: the whole network learns from now on", epoch)
        self.frozen = frozen


EXIT_STOPPED = 3  # tools/train.py's exit status after a clean stop on a signal (or a non-finite loss)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
DUPLICATE_WINDOW = 1.0  # seconds: another signal this soon is the same stop delivered twice


class StoppedBySignal(RuntimeError):
    """Training stopped on SIGTERM/SIGINT; the message says what ``latest`` holds."""


class StopRequest:
    """Set by a SIGTERM/SIGINT handler; the trainer stops after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self.time = 0.0

    def request(self, name: str) -> None:
        self.requested = True
        self.signal_name = name
        self.time = time.monotonic()

    def check_start_up(self) -> None:
        """Raise :class:`StoppedBySignal` if a signal came before training began."""
        if self.requested:
            raise StoppedBySignal(f"received {self.signal_name} during start-up: nothing was trained and no "
                                  "checkpoint was written")


@contextlib.contextmanager
def stop_signals_held(stop: StopRequest) -> Iterator[None]:
    """Hold SIGTERM/SIGINT back while importing Paddle, then reinstall ``stop``'s handlers.

    Paddle's import installs C++ handlers (glog's) that abort the process on SIGTERM, replacing
    ours; a signal that arrives meanwhile is kept pending and delivered to ours afterwards.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        install_stop_handlers(stop)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def install_stop_handlers(stop: StopRequest | None = None) -> StopRequest:
    """Make SIGTERM and SIGINT set ``stop`` (a new request if None); returns it.

    A second signal stops at once (``KeyboardInterrupt``), unless it comes within
    :data:`DUPLICATE_WINDOW` seconds of the first: ``paddle.distributed.launch`` forwards the
    SIGINT its process group got as a SIGTERM, so one Ctrl-C arrives twice. A process forked
    from this one (a DataLoader worker before it ignores the signals itself) leaves the stop to
    its parent.
    """
    stop = stop if stop is not None else StopRequest()
    owner = os.getpid()

    def handler(signum: int, _frame: Any) -> None:
        if os.getpid() != owner:
            return
        name = signal.Signals(signum).name
        if stop.requested:
            if time.monotonic() - stop.time < DUPLICATE_WINDOW:
                return
            raise KeyboardInterrupt(name)  # a second signal: stop now
        stop.request(name)
        logging.getLogger(__name__).warning(
            "%s received: finishing the current step, then saving latest (another signal stops at once)", name)

    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)
    return stop



class EarlyStopper:
    """Stops after ``patience`` evaluations without an improvement larger than ``min_delta``."""

    def __init__(self, patience: int = 10, min_delta: float = 0.0, monitor: str = "top1", mode: str | None = None) -> None:
        if patience < 1:
            raise ConfigError(f"Global.early_stop.patience: expected >= 1, got {patience}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.monitor = monitor
        self.mode = mode or ("min" if "loss" in monitor else "max")
        if self.mode not in ("min", "max"):
            raise ConfigError(f"Global.early_stop.mode: expected min or max, got {summarize(mode)}")
        self.best: float | None = None
        self.bad_evals = 0

    def update(self, metrics: dict[str, float]) -> bool:
        """Record an evaluation; True when the run should stop."""
        if self.monitor not in metrics:
            raise UnknownNameError(f"Global.early_stop.monitor: '{self.monitor}' is not an eval metric ({', '.join(metrics)})")
        value = metrics[self.monitor]
        improved = (
            self.best is None
            or (self.mode == "max" and value > self.best + self.min_delta)
            or (self.mode == "min" and value < self.best - self.min_delta)
        )
        if improved:
            self.best = value
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        return self.bad_evals >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "bad_evals": self.bad_evals}

    def set_state_dict(self, state: dict) -> None:
        self.best = state.get("best")
        self.bad_evals = int(state.get("bad_evals", 0))
