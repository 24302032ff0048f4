"""AutoAugment with the ImageNet policy (Cubuk et al., 2019, https://arxiv.org/abs/1805.09501).

Also home of the geometric operators (shear, translate, rotate) that AutoAugment, RandAugment
and TimmAutoAugment share; they are ``cv2.warpAffine`` calls on uint8 HWC images.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from ppcls.registry import TRANSFORMS
from ppcls.utils.errors import ConfigError, summarize

from . import color as C

FILL = (128, 128, 128)
INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
}


def affine(
    img: np.ndarray, matrix: Sequence[Sequence[float]], fill: Sequence[int], interpolation: str
) -> np.ndarray:
    """Warp with ``matrix`` mapping output (x, y) to input coordinates, as PIL's AFFINE transform."""
    h, w = img.shape[:2]
    border = tuple(int(v) for v in fill)[: img.shape[2]]
    out = cv2.warpAffine(
        img,
        np.asarray(matrix, dtype=np.float64),
        (w, h),
        flags=INTERPOLATIONS[interpolation] | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )
    return out.reshape(img.shape)


def shear_x(
    img: np.ndarray, factor: float, fill: Sequence[int] = FILL, interpolation: str = "bicubic"
) -> np.ndarray:
    return affine(img, [[1, factor, 0], [0, 1, 0]], fill, interpolation)


def shear_y(
    img: np.ndarray, factor: float, fill: Sequence[int] = FILL, interpolation: str = "bicubic"
) -> np.ndarray:
    return affine(img, [[1, 0, 0], [factor, 1, 0]], fill, interpolation)


def translate_x(
    img: np.ndarray, pixels: float, fill: Sequence[int] = FILL, interpolation: str = "nearest"
) -> np.ndarray:
    """Move the content left by ``pixels`` (right when negative)."""
    return affine(img, [[1, 0, pixels], [0, 1, 0]], fill, interpolation)


def translate_y(
    img: np.ndarray, pixels: float, fill: Sequence[int] = FILL, interpolation: str = "nearest"
) -> np.ndarray:
    return affine(img, [[1, 0, 0], [0, 1, pixels]], fill, interpolation)


def rotate(
    img: np.ndarray, degrees: float, fill: Sequence[int] = FILL, interpolation: str = "nearest"
) -> np.ndarray:
    """Rotate counter-clockwise by ``degrees`` about the centre, filling the corners."""
    h, w = img.shape[:2]
    forward = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), degrees, 1.0)
    inverse = cv2.invertAffineTransform(forward)
    return affine(img, inverse, fill, interpolation)


def random_sign(value: float) -> float:
    """``value`` or ``-value`` with equal chance (Python's ``random``)."""
    return -value if random.random() < 0.5 else value


# Magnitude index (0..9) -> argument, for the ops of the ImageNet policy. Enhancement factors are
# 1 +- value (sign drawn per call); shear, translate and rotate get a random sign too.
_BINS = 10
_RANGES: dict[str, np.ndarray] = {
    "shearX": np.linspace(0.0, 0.3, _BINS),
    "shearY": np.linspace(0.0, 0.3, _BINS),
    "translateX": np.linspace(0.0, 150.0 / 331.0, _BINS),
    "translateY": np.linspace(0.0, 150.0 / 331.0, _BINS),
    "rotate": np.linspace(0.0, 30.0, _BINS),
    "color": np.linspace(0.0, 0.9, _BINS),
    "posterize": np.round(np.linspace(8, 4, _BINS)).astype(int),
    "solarize": np.linspace(256.0, 0.0, _BINS),
    "contrast": np.linspace(0.0, 0.9, _BINS),
    "sharpness": np.linspace(0.0, 0.9, _BINS),
    "brightness": np.linspace(0.0, 0.9, _BINS),
}


def paddleclas_ops(fill: Sequence[int]) -> dict[str, Callable[[np.ndarray, float], np.ndarray]]:
    """The 14 ops of PaddleClas's AutoAugment/RandAugment, each ``op(img, magnitude)``."""
    return {
        "shearX": lambda img, m: shear_x(img, random_sign(m), fill, "bicubic"),
        "shearY": lambda img, m: shear_y(img, random_sign(m), fill, "bicubic"),
        "translateX": lambda img, m: translate_x(img, random_sign(m) * img.shape[1], fill, "nearest"),
        "translateY": lambda img, m: translate_y(img, random_sign(m) * img.shape[0], fill, "nearest"),
        "rotate": lambda img, m: rotate(img, random_sign(m), fill, "nearest"),
        "color": lambda img, m: C.color(img, 1.0 + random_sign(m)),
        "posterize": lambda img, m: C.posterize(img, int(m)),
        "solarize": lambda img, m: C.solarize(img, m),
        "contrast": lambda img, m: C.contrast(img, 1.0 + random_sign(m)),
        "sharpness": lambda img, m: C.sharpness(img, 1.0 + random_sign(m)),
        "brightness": lambda img, m: C.brightness(img, 1.0 + random_sign(m)),
        "autocontrast": lambda img, _m: C.autocontrast(img),
        "equalize": lambda img, _m: C.equalize(img),
        "invert": lambda img, _m: C.invert(img),
    }


# The ImageNet policy as PaddleClas lists it: 25 sub-policies of two (op, probability, magnitude
# index) steps each.
IMAGENET_POLICY: tuple[tuple[tuple[str, float, int], tuple[str, float, int]], ...] = (
    (("posterize", 0.4, 8), ("rotate", 0.6, 9)),
    (("solarize", 0.6, 5), ("autocontrast", 0.6, 5)),
    (("equalize", 0.8, 8), ("equalize", 0.6, 3)),
    (("posterize", 0.6, 7), ("posterize", 0.6, 6)),
    (("equalize", 0.4, 7), ("solarize", 0.2, 4)),
    (("equalize", 0.4, 4), ("rotate", 0.8, 8)),
    (("solarize", 0.6, 3), ("equalize", 0.6, 7)),
    (("posterize", 0.8, 5), ("equalize", 1.0, 2)),
    (("rotate", 0.2, 3), ("solarize", 0.6, 8)),
    (("equalize", 0.6, 8), ("posterize", 0.4, 6)),
    (("rotate", 0.8, 8), ("color", 0.4, 0)),
    (("rotate", 0.4, 9), ("equalize", 0.6, 2)),
    (("equalize", 0.0, 7), ("equalize", 0.8, 8)),
    (("invert", 0.6, 4), ("equalize", 1.0, 8)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("rotate", 0.8, 8), ("color", 1.0, 2)),
    (("color", 0.8, 8), ("solarize", 0.8, 7)),
    (("sharpness", 0.4, 7), ("invert", 0.6, 8)),
    (("shearX", 0.6, 5), ("equalize", 1.0, 9)),
    (("color", 0.4, 0), ("equalize", 0.6, 3)),
    (("equalize", 0.4, 7), ("solarize", 0.2, 4)),
    (("solarize", 0.6, 5), ("autocontrast", 0.6, 5)),
    (("invert", 0.6, 4), ("equalize", 1.0, 8)),
    (("color", 0.6, 4), ("contrast", 1.0, 8)),
    (("equalize", 0.8, 8), ("equalize", 0.6, 3)),
)


def fill_color(fillcolor: list | int | None, where: str) -> tuple[int, int, int]:
    if fillcolor is None:
        return FILL
    values = [fillcolor] * 3 if isinstance(fillcolor, int) else list(fillcolor)
    if len(values) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in values):
        raise ConfigError(
            f"{where}.fillcolor: expected an integer or three integers in [0, 255], got {summarize(fillcolor)}"
        )
    return tuple(values)  # type: ignore[return-value]


@TRANSFORMS.register()
class AutoAugment:
    """Apply one random sub-policy of the AutoAugment ImageNet policy to a uint8 HWC image.

    Unlike PaddleClas (which only rotates counter-clockwise) rotations get a random sign, as the
    paper's search space is symmetric; empty corners are filled with ``fillcolor``.
    """

    def __init__(self, fillcolor: list | int | None = None) -> None:
        self.fill = fill_color(fillcolor, "AutoAugment")
        self.ops = paddleclas_ops(self.fill)
        self.policy = [
            tuple((self.ops[name], prob, self._magnitude(name, idx)) for name, prob, idx in sub)
            for sub in IMAGENET_POLICY
        ]

    @staticmethod
    def _magnitude(name: str, idx: int) -> float:
        return float(_RANGES[name][idx]) if name in _RANGES else 0.0

    def __call__(self, img: np.ndarray, policy_idx: int | None = None) -> np.ndarray:
        img = C.as_image(img, "AutoAugment")
        if policy_idx is None:
            policy_idx = random.randrange(len(self.policy))
        for op, prob, magnitude in self.policy[policy_idx % len(self.policy)]:
            if random.random() < prob:
                img = op(img, magnitude)
        return img
