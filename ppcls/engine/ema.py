"""Exponential moving average of the model weights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import paddle


class ModelEMA:
    """Shadow copy ``ema = decay * ema + (1 - decay) * w`` of parameters and BN statistics."""

    def __init__(self, model: paddle.nn.Layer, decay: float = 0.9999) -> None:
        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"EMA.decay: expected a value in (0, 1), got {decay}")
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
        for key, value in state.items():
            if key in self.shadow:
                self.shadow[key].set_value(value)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Temporarily load the EMA weights into the model."""
        backup = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.set_state_dict(self.shadow)
        try:
            yield
        finally:
            self.model.set_state_dict(backup)
