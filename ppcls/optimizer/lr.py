"""Learning-rate schedules with linear warmup, stepped once per iteration.

Each schedule is a :class:`paddle.optimizer.lr.LRScheduler` whose value is a pure function of
the iteration counter, so ``state_dict()`` (saved inside the optimizer state) resumes exactly.
After ``warmup_epoch`` the decay starts from ``learning_rate`` at its own time zero.
``by_epoch: True`` holds the value constant within an epoch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from paddle.optimizer.lr import LRScheduler

from ppcls.registry import LRS
from ppcls.utils.errors import ConfigError
from ppcls.utils.numbers import parse_number

logger = logging.getLogger(__name__)

# keys of Optimizer.lr read by build_lr itself
LR_WRAPPER_KEYS = ("name", "base_batch_size", "scale_by_batch")


class WarmupSchedule(LRScheduler):
    """Base: linear warmup from ``warmup_start_lr``, then :meth:`decay` (0 ≤ progress ≤ 1)."""

    def __init__(
        self,
        learning_rate: float,
        epochs: int,
        step_each_epoch: int,
        warmup_epoch: float = 0,
        warmup_start_lr: float = 0.0,
        by_epoch: bool = False,
        last_epoch: int = -1,
    ) -> None:
        self.base_lr = parse_number(learning_rate, "Optimizer.lr.learning_rate")
        self.epochs = int(epochs)
        self.step_each_epoch = max(1, int(step_each_epoch))
        self.by_epoch = by_epoch
        self.warmup_steps = int(round(float(warmup_epoch) * self.step_each_epoch))
        self.warmup_start_lr = parse_number(warmup_start_lr, "Optimizer.lr.warmup_start_lr")
        self.total_steps = self.epochs * self.step_each_epoch
        super().__init__(self.base_lr, last_epoch=last_epoch)

    def _position(self) -> int:
        it = max(0, self.last_epoch)
        if self.by_epoch:
            it = it // self.step_each_epoch * self.step_each_epoch
        return it

    def get_lr(self) -> float:
        it = max(0, self.last_epoch)
        if it < self.warmup_steps:
            frac = it / self.warmup_steps
            return self.warmup_start_lr + (self.base_lr - self.warmup_start_lr) * frac
        t = max(0, self._position() - self.warmup_steps)
        span = max(1, self.total_steps - self.warmup_steps)
        return self.decay(t, span)

    def decay(self, t: int, span: int) -> float:
        """LR after warmup, ``t`` iterations into a decay phase of ``span`` iterations."""
        raise NotImplementedError


@LRS.register()
class Cosine(WarmupSchedule):
    def __init__(self, learning_rate: float, epochs: int, step_each_epoch: int,
                 eta_min: float = 0.0, **kwargs: Any) -> None:
        self.eta_min = parse_number(eta_min, "Optimizer.lr.eta_min")
        super().__init__(learning_rate, epochs, step_each_epoch, **kwargs)

    def decay(self, t: int, span: int) -> float:
        t = min(t, span)
        return self.eta_min + (self.base_lr - self.eta_min) * 0.5 * (1 + math.cos(math.pi * t / span))


@LRS.register()
class Piecewise(WarmupSchedule):
    """``values[i]`` until epoch ``decay_epochs[i]``; ``learning_rate`` defaults to ``values[0]``."""

    def __init__(self, epochs: int, step_each_epoch: int, decay_epochs: list, values: list,
                 learning_rate: float | None = None, **kwargs: Any) -> None:
        if len(values) != len(decay_epochs) + 1:
            raise ConfigError(
                f"Optimizer.lr (Piecewise): values needs len(decay_epochs) + 1 = "
                f"{len(decay_epochs) + 1} entries, got {len(values)}"
            )
        self.values = [parse_number(v, "Optimizer.lr.values") for v in values]
        self.boundaries = [int(round(float(e) * max(1, int(step_each_epoch)))) for e in decay_epochs]
        super().__init__(self.values[0] if learning_rate is None else learning_rate,
                         epochs, step_each_epoch, **kwargs)

    def decay(self, t: int, span: int) -> float:
        it = t + self.warmup_steps
        for boundary, value in zip(self.boundaries, self.values):
            if it < boundary:
                return value
        return self.values[-1]


@LRS.register()
class Step(WarmupSchedule):
    """Multiply by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, learning_rate: float, epochs: int, step_each_epoch: int, step_size: float,
                 gamma: float = 0.1, **kwargs: Any) -> None:
        self.step_iters = max(1, int(round(float(step_size) * max(1, int(step_each_epoch)))))
        self.gamma = parse_number(gamma, "Optimizer.lr.gamma")
        super().__init__(learning_rate, epochs, step_each_epoch, **kwargs)

    def decay(self, t: int, span: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_iters)


@LRS.register()
class Exponential(WarmupSchedule):
    """Multiply by ``gamma`` per epoch (continuously, or per whole epoch with ``by_epoch``)."""

    def __init__(self, learning_rate: float, epochs: int, step_each_epoch: int, gamma: float = 0.9,
                 **kwargs: Any) -> None:
        self.gamma = parse_number(gamma, "Optimizer.lr.gamma")
        super().__init__(learning_rate, epochs, step_each_epoch, **kwargs)

    def decay(self, t: int, span: int) -> float:
        return self.base_lr * self.gamma ** (t / self.step_each_epoch)


@LRS.register()
class Linear(WarmupSchedule):
    """Polynomial decay from ``learning_rate`` to ``end_lr`` (``power`` 1 is linear)."""

    def __init__(self, learning_rate: float, epochs: int, step_each_epoch: int, end_lr: float = 0.0,
                 power: float = 1.0, **kwargs: Any) -> None:
        self.end_lr = parse_number(end_lr, "Optimizer.lr.end_lr")
        self.power = float(power)
        super().__init__(learning_rate, epochs, step_each_epoch, **kwargs)

    def decay(self, t: int, span: int) -> float:
        frac = min(t, span) / span
        return (self.base_lr - self.end_lr) * (1 - frac) ** self.power + self.end_lr


@LRS.register()
class Constant(WarmupSchedule):
    def decay(self, t: int, span: int) -> float:
        return self.base_lr


def _scale_keys(cfg: dict, factor: float) -> None:
    for key in ("learning_rate", "warmup_start_lr", "eta_min", "end_lr"):
        if key in cfg and cfg[key] is not None:
            cfg[key] = parse_number(cfg[key], f"Optimizer.lr.{key}") * factor
    if "values" in cfg:
        cfg["values"] = [parse_number(v, "Optimizer.lr.values") * factor for v in cfg["values"]]


def build_lr(
    lr_cfg: Mapping[str, Any] | float,
    epochs: int,
    step_each_epoch: int,
    global_batch_size: int | None = None,
) -> LRScheduler:
    """Build the schedule of ``Optimizer.lr``; scale it linearly to the global batch size.

    ``base_batch_size`` is the total batch the LR was written for; when the run's global batch
    differs the LR is scaled by their ratio (logged), unless ``scale_by_batch: False``.
    """
    if isinstance(lr_cfg, (int, float)):
        lr_cfg = {"name": "Constant", "learning_rate": float(lr_cfg)}
    cfg = dict(lr_cfg)
    name = cfg.pop("name")
    base_batch = cfg.pop("base_batch_size", None)
    scale_by_batch = cfg.pop("scale_by_batch", True)
    if base_batch and global_batch_size and scale_by_batch and base_batch != global_batch_size:
        factor = global_batch_size / float(base_batch)
        before = cfg.get("learning_rate", (cfg.get("values") or [None])[0])
        _scale_keys(cfg, factor)
        after = cfg.get("learning_rate", (cfg.get("values") or [None])[0])
        logger.info(
            "scaling the learning rate linearly for global batch %d (recipe: %d): %s -> %.6g "
            "(set Optimizer.lr.scale_by_batch=False to keep it)",
            global_batch_size, base_batch, before, after,
        )
    warmup = float(cfg.get("warmup_epoch", 0) or 0)
    if warmup >= epochs and warmup > 0:
        new = float(max(0, epochs - 1))
        logger.warning(
            "Optimizer.lr.warmup_epoch=%s is not shorter than Global.epochs=%d: "
            "using warmup_epoch=%s so the schedule reaches its decay phase",
            cfg["warmup_epoch"], epochs, new,
        )
        cfg["warmup_epoch"] = new
    return LRS.build(name, epochs=epochs, step_each_epoch=step_each_epoch, **cfg)
