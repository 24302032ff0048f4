"""Photometric operators on uint8 HWC RGB images, and ``ColorJitter``.

The functions here are the pixel-value half of the AutoAugment / RandAugment / TimmAutoAugment
op sets (the geometric half lives in ``autoaugment.py``). They follow PIL's ``ImageEnhance`` and
``ImageOps`` definitions (blend with a degenerate image, equalize with PIL's bucket rule) but run
as lookup tables and ``cv2`` calls on numpy arrays, without a round trip through PIL.
"""

from __future__ import annotations

import random

import cv2
import numpy as np

from ppcls.registry import TRANSFORMS
from ppcls.utils.errors import ConfigError, summarize
from ppcls.utils.numbers import parse_number

_IDENTITY = np.arange(256, dtype=np.float32)


def as_image(img: np.ndarray, where: str) -> np.ndarray:
    """Check for a uint8 HWC image with 1 or 3 channels and return it C-contiguous."""
    if (
        not isinstance(img, np.ndarray)
        or img.dtype != np.uint8
        or img.ndim != 3
        or img.shape[2] not in (1, 3)
    ):
        got = f"{img.dtype} array of shape {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise ConfigError(
            f"{where}: expected a uint8 HWC image with 1 or 3 channels (before NormalizeImage), got {got}"
        )
    return np.ascontiguousarray(img)


def _lut(img: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Apply a 256-entry table (one for all channels) to a uint8 image."""
    table = np.clip(np.rint(table), 0, 255).astype(np.uint8)
    return cv2.LUT(img, table).reshape(img.shape)


def _lut_per_channel(img: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """Apply one 256-entry table per channel; ``tables`` is [C, 256] uint8."""
    if img.shape[2] == 1:
        return cv2.LUT(img, tables[0]).reshape(img.shape)
    return cv2.LUT(img, np.ascontiguousarray(tables.T).reshape(256, 1, 3))


def _gray(img: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma (PIL's ``L`` conversion) as a uint8 HxW array."""
    if img.shape[2] == 1:
        return img[:, :, 0]
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def blend(img: np.ndarray, degenerate: np.ndarray, factor: float) -> np.ndarray:
    """``degenerate + factor * (img - degenerate)`` rounded and saturated to uint8 (PIL's enhance)."""
    return cv2.addWeighted(img, float(factor), degenerate, 1.0 - float(factor), 0.0).reshape(img.shape)


def brightness(img: np.ndarray, factor: float) -> np.ndarray:
    """Blend with black: 0 gives black, 1 the original."""
    return _lut(img, _IDENTITY * factor)


def contrast(img: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the mean grey level: 0 gives a flat grey image, 1 the original."""
    mean = int(_gray(img).mean() + 0.5)
    return _lut(img, mean + factor * (_IDENTITY - mean))


def color(img: np.ndarray, factor: float) -> np.ndarray:
    """Saturation: blend with the greyscale image; 0 gives grey, 1 the original."""
    if img.shape[2] == 1:
        return img.copy()
    gray = cv2.cvtColor(_gray(img), cv2.COLOR_GRAY2RGB)
    return blend(img, gray, factor)


def sharpness(img: np.ndarray, factor: float) -> np.ndarray:
    """Blend with a smoothed copy (PIL's SMOOTH kernel, border pixels unchanged)."""
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=np.float32) / 13.0
    smooth = cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REPLICATE).reshape(img.shape)
    smooth[0, :], smooth[-1, :], smooth[:, 0], smooth[:, -1] = img[0, :], img[-1, :], img[:, 0], img[:, -1]
    return blend(img, smooth, factor)


def hue(img: np.ndarray, shift: float) -> np.ndarray:
    """Rotate the hue by ``shift`` of a full turn (``shift`` in [-0.5, 0.5])."""
    if img.shape[2] == 1 or shift == 0:
        return img.copy()
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)  # H in [0, 256)
    offset = int(round(shift * 256))
    hsv[:, :, 0] = cv2.LUT(hsv[:, :, 0], ((np.arange(256) + offset) % 256).astype(np.uint8)).reshape(
        hsv.shape[:2]
    )
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)


def posterize(img: np.ndarray, bits: int) -> np.ndarray:
    """Keep the ``bits`` most significant bits of every value (8 or more: unchanged)."""
    bits = int(bits)
    if bits >= 8:
        return img.copy()
    mask = (0xFF << (8 - max(bits, 0))) & 0xFF
    return np.bitwise_and(img, np.uint8(mask))


def solarize(img: np.ndarray, threshold: float) -> np.ndarray:
    """Invert the values at or above ``threshold`` (256: unchanged, 0: fully inverted)."""
    return _lut(img, np.where(_IDENTITY >= threshold, 255 - _IDENTITY, _IDENTITY))


def solarize_add(img: np.ndarray, add: int, threshold: int = 128) -> np.ndarray:
    """Add ``add`` to the values below ``threshold``, saturating at 255."""
    return _lut(img, np.where(_IDENTITY < threshold, np.minimum(_IDENTITY + add, 255), _IDENTITY))


def invert(img: np.ndarray) -> np.ndarray:
    return cv2.bitwise_not(img).reshape(img.shape)


def autocontrast(img: np.ndarray) -> np.ndarray:
    """Stretch each channel so that its darkest value becomes 0 and its brightest 255."""
    lo = img.reshape(-1, img.shape[2]).min(axis=0).astype(np.float32)
    hi = img.reshape(-1, img.shape[2]).max(axis=0).astype(np.float32)
    tables = np.empty((img.shape[2], 256), dtype=np.uint8)
    for c in range(img.shape[2]):
        if hi[c] <= lo[c]:
            tables[c] = np.arange(256)
        else:
            scale = 255.0 / (hi[c] - lo[c])
            tables[c] = np.clip(np.floor((_IDENTITY - lo[c]) * scale), 0, 255)
    return _lut_per_channel(img, tables)


def equalize(img: np.ndarray) -> np.ndarray:
    """Histogram equalisation per channel with PIL's rule (the top bucket is not spread)."""
    tables = np.empty((img.shape[2], 256), dtype=np.uint8)
    for c in range(img.shape[2]):
        hist = np.bincount(img[:, :, c].ravel(), minlength=256)
        nonzero = np.flatnonzero(hist)
        step = (hist.sum() - hist[nonzero[-1]]) // 255 if nonzero.size > 1 else 0
        if step == 0:
            tables[c] = np.arange(256)
            continue
        before = np.concatenate(([0], np.cumsum(hist)[:-1]))
        tables[c] = np.minimum((before + step // 2) // step, 255)
    return _lut_per_channel(img, tables)


def _factor_range(
    value: float | list | None, name: str, center: float, lower: float | None
) -> tuple[float, float] | None:
    """PaddleClas/torchvision jitter ranges: a number v means [center - v, center + v]."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ConfigError(f"ColorJitter.{name}: expected a number or [min, max], got {summarize(value)}")
        lo, hi = (parse_number(v, f"ColorJitter.{name}") for v in value)
    else:
        v = parse_number(value, f"ColorJitter.{name}")
        if v < 0:
            raise ConfigError(f"ColorJitter.{name}: expected a non-negative number, got {summarize(value)}")
        lo, hi = center - v, center + v
        if lower is not None:
            lo = max(lower, lo)
    if lo > hi or (lower is not None and lo < lower):
        raise ConfigError(f"ColorJitter.{name}: expected {lower} <= min <= max, got {summarize(value)}")
    if lo == hi == center:
        return None
    return lo, hi


@TRANSFORMS.register()
class ColorJitter:
    """Random brightness, contrast, saturation and hue, applied in a random order.

    A number ``v`` samples a factor in ``[max(0, 1 - v), 1 + v]`` (hue: a shift in
    ``[-v, v]`` of a full turn, ``v <= 0.5``); a ``[min, max]`` list gives the range directly.
    ``prob`` is the chance to apply the jitter at all (PaddleClas's default: always).
    """

    def __init__(
        self,
        brightness: float | list | None = 0.0,
        contrast: float | list | None = 0.0,
        saturation: float | list | None = 0.0,
        hue: float | list | None = 0.0,
        prob: float = 1.0,
    ) -> None:
        self.ranges: list[tuple[str, tuple[float, float]]] = []
        for name, value, center, lower in (
            ("brightness", brightness, 1.0, 0.0),
            ("contrast", contrast, 1.0, 0.0),
            ("saturation", saturation, 1.0, 0.0),
            ("hue", hue, 0.0, None),
        ):
            rng = _factor_range(value, name, center, lower)
            if rng is not None:
                self.ranges.append((name, rng))
        for name, (lo, hi) in self.ranges:
            if name == "hue" and not (-0.5 <= lo <= hi <= 0.5):
                raise ConfigError(f"ColorJitter.hue: expected values within [-0.5, 0.5], got {summarize(hue)}")
        self.prob = parse_number(prob, "ColorJitter.prob")
        if not 0.0 <= self.prob:
            raise ConfigError(f"ColorJitter.prob: expected a probability >= 0, got {summarize(prob)}")

    def __call__(self, img: np.ndarray) -> np.ndarray:
        img = as_image(img, "ColorJitter")
        if not self.ranges or (self.prob < 1.0 and random.random() >= self.prob):
            return img
        order = list(self.ranges)
        random.shuffle(order)
        for name, (lo, hi) in order:
            value = random.uniform(lo, hi)
            if name == "brightness":
                img = brightness(img, value)
            elif name == "contrast":
                img = contrast(img, value)
            elif name == "saturation":
                img = color(img, value)
            else:
                img = hue(img, value)
        return img
