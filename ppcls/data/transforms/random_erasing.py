"""Random Erasing (Zhong et al., 2020, https://arxiv.org/abs/1708.04896) on normalised images.

It runs after ``NormalizeImage`` on the float image, HWC or CHW: the layout is read from the
shape (channels first when the first axis has 1 or 3 entries and the last does not).
"""

from __future__ import annotations

import math
import random

import numpy as np

from ppcls.registry import TRANSFORMS
from ppcls.utils.errors import ConfigError, summarize
from ppcls.utils.numbers import parse_number

MODES = ("const", "rand", "pixel")


def is_chw(img: np.ndarray) -> bool:
    """True for channels-first; HWC when ambiguous (as for a 3x3x3 image)."""
    return img.shape[0] in (1, 3) and img.shape[2] not in (1, 3)


@TRANSFORMS.register()
class RandomErasing:
    """With probability ``EPSILON`` fill one random rectangle of the image.

    The rectangle covers a fraction in [``sl``, ``sh``] of the area with aspect ratio in
    [``r1``, 1/``r1``] (sampled on a log scale with ``use_log_aspect``); up to ``attempt`` draws
    are tried until one fits. ``mode`` const fills with ``mean``, rand with one normal value per
    channel, pixel with a normal value per pixel (the values are in normalised units).
    """

    def __init__(
        self,
        EPSILON: float = 0.5,  # noqa: N803 - PaddleClas's key
        sl: float = 0.02,
        sh: float = 0.4,
        r1: float = 0.3,
        mean: list | None = None,
        attempt: int = 100,
        use_log_aspect: bool = False,
        mode: str = "const",
    ) -> None:
        self.prob = parse_number(EPSILON, "RandomErasing.EPSILON")
        self.sl = parse_number(sl, "RandomErasing.sl")
        self.sh = parse_number(sh, "RandomErasing.sh")
        r1 = parse_number(r1, "RandomErasing.r1")
        if not 0.0 <= self.prob <= 1.0:
            raise ConfigError(f"RandomErasing.EPSILON: expected a probability in [0, 1], got {summarize(EPSILON)}")
        if not 0.0 < self.sl <= self.sh <= 1.0:
            raise ConfigError(f"RandomErasing.sl/sh: expected 0 < sl <= sh <= 1, got sl={summarize(sl)}, sh={summarize(sh)}")
        if not r1 > 0:
            raise ConfigError(f"RandomErasing.r1: expected a positive aspect ratio, got {summarize(r1)}")
        lo, hi = sorted((r1, 1.0 / r1))
        self.aspect = (math.log(lo), math.log(hi)) if use_log_aspect else (lo, hi)
        self.use_log_aspect = use_log_aspect
        if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
            raise ConfigError(f"RandomErasing.attempt: expected a positive integer, got {summarize(attempt)}")
        self.attempt = attempt
        if mode not in MODES:
            raise ConfigError(f"RandomErasing.mode: expected one of {', '.join(MODES)}, got {summarize(mode)}")
        self.mode = mode
        self.mean = np.asarray(mean if mean is not None else [0.0, 0.0, 0.0], dtype=np.float32)

    def _fill(self, shape: tuple[int, int, int], chw: bool, dtype: np.dtype) -> np.ndarray:
        channels = shape[0] if chw else shape[2]
        if self.mode == "pixel":
            values = np.random.normal(size=shape)
        elif self.mode == "rand":
            values = np.random.normal(size=(channels, 1, 1) if chw else (1, 1, channels))
        else:
            if self.mean.size == channels:
                mean = self.mean
            elif self.mean.size == 1 or channels == 1:  # a grey image takes the first value
                mean = np.full(channels, self.mean[0], dtype=np.float32)
            else:
                raise ConfigError(
                    f"RandomErasing.mean: {self.mean.size} values for an image with {channels} channels"
                )
            values = mean.reshape((channels, 1, 1) if chw else (1, 1, channels))
        return values.astype(dtype, copy=False)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if not isinstance(img, np.ndarray) or img.ndim != 3:
            got = f"shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
            raise ConfigError(
                f"RandomErasing: expected a 3-D HWC or CHW image (after NormalizeImage), got {got}"
            )
        if random.random() > self.prob:
            return img
        chw = is_chw(img)
        h, w = (img.shape[1], img.shape[2]) if chw else (img.shape[0], img.shape[1])
        area = h * w
        for _ in range(self.attempt):
            target = random.uniform(self.sl, self.sh) * area
            aspect = random.uniform(*self.aspect)
            if self.use_log_aspect:
                aspect = math.exp(aspect)
            eh = int(round(math.sqrt(target * aspect)))
            ew = int(round(math.sqrt(target / aspect)))
            if 0 < eh < h and 0 < ew < w:
                y = random.randint(0, h - eh)
                x = random.randint(0, w - ew)
                if not img.flags.writeable:
                    img = img.copy()
                if chw:
                    img[:, y : y + eh, x : x + ew] = self._fill((img.shape[0], eh, ew), True, img.dtype)
                else:
                    img[y : y + eh, x : x + ew, :] = self._fill((eh, ew, img.shape[2]), False, img.dtype)
                return img
        return img
