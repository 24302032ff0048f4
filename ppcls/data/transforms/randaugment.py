"""RandAugment (Cubuk et al., 2020, https://arxiv.org/abs/1909.13719) as PaddleClas defines it.

``num_layers`` ops are drawn uniformly (with replacement) from PaddleClas's 14 and applied at
one global ``magnitude`` (0..10). The magnitude maps to op arguments as in PaddleClas: for
example posterize keeps ``int(4 * magnitude / 10)`` bits and solarize inverts from
``256 * magnitude / 10`` up. For timm's variant (increasing ops, magnitude noise, per-op
probability) use ``TimmAutoAugment`` with ``config_str: rand-...``.
"""

from __future__ import annotations

import numpy as np

from ppcls.registry import TRANSFORMS
from ppcls.utils.errors import ConfigError, summarize
from ppcls.utils.numbers import parse_number

from . import color as C
from .autoaugment import fill_color, paddleclas_ops

MAX_LEVEL = 10.0


def paddleclas_levels(magnitude: float) -> dict[str, float]:
    """Each op's argument at ``magnitude`` (0..10)."""
    level = magnitude / MAX_LEVEL
    return {
        "shearX": 0.3 * level,
        "shearY": 0.3 * level,
        "translateX": 150.0 / 331.0 * level,
        "translateY": 150.0 / 331.0 * level,
        "rotate": 30.0 * level,
        "color": 0.9 * level,
        "posterize": int(4.0 * level),
        "solarize": 256.0 * level,
        "contrast": 0.9 * level,
        "sharpness": 0.9 * level,
        "brightness": 0.9 * level,
        "autocontrast": 0.0,
        "equalize": 0.0,
        "invert": 0.0,
    }


@TRANSFORMS.register()
class RandAugment:
    """Apply ``num_layers`` random ops at ``magnitude`` to a uint8 HWC image."""

    def __init__(
        self, num_layers: int = 2, magnitude: float = 5, fillcolor: list | int | None = None
    ) -> None:
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 0:
            raise ConfigError(f"RandAugment.num_layers: expected an integer >= 0, got {summarize(num_layers)}")
        magnitude = parse_number(magnitude, "RandAugment.magnitude")
        if not 0.0 <= magnitude <= MAX_LEVEL:
            raise ConfigError(
                f"RandAugment.magnitude: expected a value in [0, {MAX_LEVEL:g}], got {summarize(magnitude)}"
            )
        self.num_layers = num_layers
        self.magnitude = magnitude
        self.ops = paddleclas_ops(fill_color(fillcolor, "RandAugment"))
        self.levels = paddleclas_levels(magnitude)
        self.names = list(self.levels)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        img = C.as_image(img, "RandAugment")
        for _ in range(self.num_layers):
            name = self.names[np.random.randint(len(self.names))]
            img = self.ops[name](img, self.levels[name])
        return img
