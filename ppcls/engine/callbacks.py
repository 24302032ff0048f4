"""Collaborators the trainer calls at log steps and epoch ends (VisualDL, plots, ...)."""

from __future__ import annotations

from typing import Any


class Callback:
    """No-op hooks; subclasses override what they need."""

    def on_train_log(self, step: int, values: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, epoch: int, train: dict[str, float], evaluation: dict[str, float] | None) -> None:
        pass

    def on_train_end(self, history: list[dict[str, Any]]) -> None:
        pass


class StopRequest:
    """Set by a SIGTERM/SIGINT handler; the trainer stops after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""

    def request(self, name: str) -> None:
        self.requested = True
        self.signal_name = name


class EarlyStopper:
    """Stops after ``patience`` evaluations without an improvement larger than ``min_delta``."""

    def __init__(self, patience: int = 10, min_delta: float = 0.0, monitor: str = "top1", mode: str | None = None) -> None:
        if patience < 1:
            raise ValueError(f"Global.early_stop.patience: expected >= 1, got {patience}")
        self.patience = patience
        self.min_delta = float(min_delta)
        self.monitor = monitor
        self.mode = mode or ("min" if "loss" in monitor else "max")
        if self.mode not in ("min", "max"):
            raise ValueError(f"Global.early_stop.mode: expected min or max, got {mode!r}")
        self.best: float | None = None
        self.bad_evals = 0

    def update(self, metrics: dict[str, float]) -> bool:
        """Record an evaluation; True when the run should stop."""
        if self.monitor not in metrics:
            raise KeyError(f"Global.early_stop.monitor: '{self.monitor}' is not an eval metric ({', '.join(metrics)})")
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
