"""Exponential moving average of the model weights.

Every checkpoint set of an EMA run carries the EMA weights of its own moment
(``{name}_ema.pdparams``, see :mod:`ppcls.engine.checkpoint`), so a run resumed from
``latest`` or ``epoch_N`` continues the same average as the uninterrupted run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paddle

from ppcls.utils.errors import ConfigError

logger = logging.getLogger(__name__)


class ModelEMA:
    """Shadow copy ``ema = decay * ema + (1 - decay) * w`` of parameters and BN statistics."""

    def __init__(self, model: paddle.nn.Layer, decay: float = 0.9999) -> None:
        if not 0.0 < float(decay) < 1.0:
            raise ConfigError(f"EMA.decay: expected a value in (0, 1), got {decay}")
        self.model = model
        self.decay = float(decay)
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @paddle.no_grad()
    def update(self) -> None:
        for key, value in self.model.state_dict().items():
            shadow = self.shadow[key]
            if paddle.is_floating_point(value):
                shadow.set_value(shadow * self.decay + value.detach() * (1.0 - self.decay))
            else:
                shadow.set_value(value)

    def state_dict(self) -> dict:
        return dict(self.shadow)

    def set_state_dict(self, state: dict) -> None:
        missing = [k for k in self.shadow if k not in state]
        if missing:
            raise ValueError(
                f"EMA state: {len(missing)} of the model's {len(self.shadow)} tensors are missing "
                f"(first: {', '.join(missing[:3])}); is it the EMA of another model?"
            )
        for key, value in state.items():
            if key in self.shadow:
                self.shadow[key].set_value(value)

    @paddle.no_grad()
    def reset(self) -> None:
        """Restart the average from the model's current weights."""
        for key, value in self.model.state_dict().items():
            self.shadow[key].set_value(value.detach())

    def restore(self, checkpoint: Any) -> None:
        """Take the EMA weights saved with ``checkpoint`` (a :class:`~ppcls.engine.checkpoint.Checkpoint`).

        A set without them (written without EMA, or before each set carried its own) restarts
        the average from the resumed weights, with a warning; an older run's ``latest`` still
        has its EMA beside it as ``latest_ema.pdparams``.
        """
        if checkpoint.ema is not None:
            self.set_state_dict(checkpoint.ema)
            return
        legacy = checkpoint.prefix + "_ema.pdparams"
        if not checkpoint.verified and os.path.basename(checkpoint.prefix) == "latest" and os.path.isfile(legacy):
            self.set_state_dict(paddle.load(legacy))
            logger.info("EMA: took the EMA weights of %s from %s", checkpoint.prefix, legacy)
            return
        self.reset()
        logger.warning("EMA: %s holds no EMA weights; the average restarts from its weights", checkpoint.prefix)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Temporarily load the EMA weights into the model."""
        backup = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.set_state_dict(self.shadow)
        try:
            yield
        finally:
            self.model.set_state_dict(backup)
