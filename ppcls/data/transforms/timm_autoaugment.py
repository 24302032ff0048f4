"""``TimmAutoAugment``: timm's RandAugment, configured by a timm ``config_str``.

``config_str`` is ``rand`` followed by dash-separated sections (timm's syntax):

- ``m<float>`` magnitude, 0..10 (default 10)
- ``n<int>`` ops applied per image (default 2)
- ``mstd<float>`` std of Gaussian noise added to the magnitude per op call (> 100: uniform in
  [0, m])
- ``mmax<float>`` upper clip of the noisy magnitude (default 10)
- ``inc<0|1>`` use the ops whose strength increases with magnitude (timm's ``*Increasing``)
- ``p<float>`` probability of each chosen op (default 0.5)
- ``w0`` weighted op choice without replacement (timm's only weight set)

For example ``rand-m9-mstd0.5-inc1``. timm's ``augmix-...`` and ``v0``/``original`` AutoAugment
policies are not implemented and raise; ``AutoAugment`` is the ImageNet policy.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

import numpy as np

from ppcls.registry import TRANSFORMS
from ppcls.utils.errors import ConfigError, summarize
from ppcls.utils.numbers import parse_number

from . import color as C
from .autoaugment import INTERPOLATIONS, random_sign, rotate, shear_x, shear_y, translate_x, translate_y

MAX_LEVEL = 10.0
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
TRANSLATE_PCT = 0.45

RAND_TRANSFORMS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "Posterize",
    "Solarize",
    "SolarizeAdd",
    "Color",
    "Contrast",
    "Brightness",
    "Sharpness",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
)
RAND_INCREASING_TRANSFORMS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "PosterizeIncreasing",
    "SolarizeIncreasing",
    "SolarizeAdd",
    "ColorIncreasing",
    "ContrastIncreasing",
    "BrightnessIncreasing",
    "SharpnessIncreasing",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
)
# timm's weight set 0 for the ``w0`` section, by base op name
CHOICE_WEIGHTS_0 = {
    "Rotate": 0.3,
    "ShearX": 0.2,
    "ShearY": 0.2,
    "TranslateXRel": 0.1,
    "TranslateYRel": 0.1,
    "Color": 0.025,
    "Sharpness": 0.025,
    "AutoContrast": 0.025,
    "Solarize": 0.005,
    "SolarizeAdd": 0.005,
    "Contrast": 0.005,
    "Brightness": 0.005,
    "Equalize": 0.005,
    "Posterize": 0.0,
    "Invert": 0.0,
}

def _enhance(level: float) -> float:
    return level / MAX_LEVEL * 1.8 + 0.1


def _enhance_increasing(level: float) -> float:
    return 1.0 + random_sign(level / MAX_LEVEL * 0.9)


def _posterize(level: float) -> int:
    return int(level / MAX_LEVEL * 4)


def _solarize(level: float) -> int:
    return int(level / MAX_LEVEL * 256)


# name -> (op(img, argument, fill, interpolation), magnitude -> argument)
TIMM_OPS: dict[str, tuple[Callable[..., np.ndarray], Callable[[float], float] | None]] = {
    "AutoContrast": (lambda img, _a, _f, _i: C.autocontrast(img), None),
    "Equalize": (lambda img, _a, _f, _i: C.equalize(img), None),
    "Invert": (lambda img, _a, _f, _i: C.invert(img), None),
    "Rotate": (rotate, lambda m: random_sign(m / MAX_LEVEL * 30.0)),
    "Posterize": (lambda img, a, _f, _i: C.posterize(img, a), _posterize),
    "PosterizeIncreasing": (lambda img, a, _f, _i: C.posterize(img, a), lambda m: 4 - _posterize(m)),
    "Solarize": (lambda img, a, _f, _i: C.solarize(img, a), _solarize),
    "SolarizeIncreasing": (lambda img, a, _f, _i: C.solarize(img, a), lambda m: 256 - _solarize(m)),
    "SolarizeAdd": (lambda img, a, _f, _i: C.solarize_add(img, a), lambda m: int(m / MAX_LEVEL * 110)),
    "Color": (lambda img, a, _f, _i: C.color(img, a), _enhance),
    "ColorIncreasing": (lambda img, a, _f, _i: C.color(img, a), _enhance_increasing),
    "Contrast": (lambda img, a, _f, _i: C.contrast(img, a), _enhance),
    "ContrastIncreasing": (lambda img, a, _f, _i: C.contrast(img, a), _enhance_increasing),
    "Brightness": (lambda img, a, _f, _i: C.brightness(img, a), _enhance),
    "BrightnessIncreasing": (lambda img, a, _f, _i: C.brightness(img, a), _enhance_increasing),
    "Sharpness": (lambda img, a, _f, _i: C.sharpness(img, a), _enhance),
    "SharpnessIncreasing": (lambda img, a, _f, _i: C.sharpness(img, a), _enhance_increasing),
    "ShearX": (shear_x, lambda m: random_sign(m / MAX_LEVEL * 0.3)),
    "ShearY": (shear_y, lambda m: random_sign(m / MAX_LEVEL * 0.3)),
    "TranslateXRel": (
        lambda img, a, f, i: translate_x(img, a * img.shape[1], f, i),
        lambda m: random_sign(m / MAX_LEVEL * TRANSLATE_PCT),
    ),
    "TranslateYRel": (
        lambda img, a, f, i: translate_y(img, a * img.shape[0], f, i),
        lambda m: random_sign(m / MAX_LEVEL * TRANSLATE_PCT),
    ),
}


class RandAugmentOp:
    """One timm op: applied with probability ``prob`` at a (possibly noisy) magnitude."""

    def __init__(
        self,
        name: str,
        prob: float,
        magnitude: float,
        magnitude_std: float,
        magnitude_max: float,
        fill: tuple[int, ...],
        interpolation: str,
    ) -> None:
        self.name = name
        self.fn, self.level_fn = TIMM_OPS[name]
        self.prob = prob
        self.magnitude = magnitude
        self.magnitude_std = magnitude_std
        self.magnitude_max = magnitude_max
        self.fill = fill
        self.interpolation = interpolation

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.prob < 1.0 and random.random() > self.prob:
            return img
        magnitude = self.magnitude
        if self.magnitude_std == float("inf"):
            magnitude = random.uniform(0.0, magnitude)
        elif self.magnitude_std > 0:
            magnitude = random.gauss(magnitude, self.magnitude_std)
        magnitude = max(0.0, min(magnitude, self.magnitude_max))
        arg = self.level_fn(magnitude) if self.level_fn is not None else None
        interp = self.interpolation
        if interp == "random":
            interp = random.choice(("bilinear", "bicubic"))
        return self.fn(img, arg, self.fill, interp)


def parse_rand_config(config_str: str) -> dict[str, float | int | bool]:
    """Parse ``rand-m9-n2-mstd0.5-mmax10-inc1-p0.5-w0`` into its settings, with defaults."""
    where = "TimmAutoAugment.config_str"
    if not isinstance(config_str, str) or not config_str:
        raise ConfigError(f"{where}: expected a string like 'rand-m9-mstd0.5-inc1', got {summarize(config_str)}")
    parts = config_str.split("-")
    if parts[0] != "rand":
        kind = (
            "AugMix"
            if parts[0] == "augmix"
            else "AutoAugment"
            if parts[0] in ("v0", "v0r", "original", "originalr", "auto")
            else None
        )
        extra = f" (timm's {kind} is not implemented)" if kind else ""
        raise ConfigError(
            f"{where}: only timm's RandAugment ('rand-...') is supported{extra}, got {summarize(config_str)}"
        )
    out: dict[str, float | int | bool] = {
        "magnitude": MAX_LEVEL,
        "num_layers": 2,
        "magnitude_std": 0.0,
        "magnitude_max": MAX_LEVEL,
        "increasing": False,
        "prob": 0.5,
        "weight_set": -1,
    }
    readers: dict[str, Callable[[str], tuple[str, float | int | bool]]] = {
        "m": lambda v: ("magnitude", float(v)),
        "n": lambda v: ("num_layers", int(v)),
        "mstd": lambda v: ("magnitude_std", float("inf") if float(v) > 100 else float(v)),
        "mmax": lambda v: ("magnitude_max", float(v)),
        "inc": lambda v: ("increasing", bool(int(v))),
        "p": lambda v: ("prob", float(v)),
        "w": lambda v: ("weight_set", int(v)),
    }
    for section in parts[1:]:
        match = re.fullmatch(r"([a-z]+)(\d.*)", section)
        key, raw = match.groups() if match else (section, "")
        if key not in readers:
            raise ConfigError(
                f"{where}: unknown section {summarize(section)} in {summarize(config_str)}; "
                "valid sections: m<magnitude>, n<layers>, mstd<std>, mmax<max>, inc<0|1>, p<prob>, w0"
            )
        try:
            name, value = readers[key](raw)
        except ValueError:
            raise ConfigError(
                f"{where}: cannot read the value of section {summarize(section)} in {summarize(config_str)}"
            ) from None
        out[name] = value
    if out["magnitude"] < 0 or out["magnitude_std"] < 0 or out["magnitude_max"] <= 0:
        raise ConfigError(f"{where}: m and mstd must be >= 0 and mmax > 0, got {summarize(config_str)}")
    if out["num_layers"] < 0 or not 0.0 <= out["prob"] <= 1.0:
        raise ConfigError(f"{where}: n must be >= 0 and p within [0, 1], got {summarize(config_str)}")
    if out["weight_set"] not in (-1, 0):
        raise ConfigError(
            f"{where}: timm has one op weight set, w0; got w{out['weight_set']} in {summarize(config_str)}"
        )
    return out


@TRANSFORMS.register()
class TimmAutoAugment:
    """timm's RandAugment on a uint8 HWC image; ``prob`` is the chance to augment at all.

    ``mean`` (0..1 floats) gives the fill colour of the geometric ops; ``img_size`` is accepted
    for PaddleClas compatibility (it only sizes timm's absolute translations, which the rand
    policy does not use).
    """

    def __init__(
        self,
        config_str: str = "rand-m9-mstd0.5-inc1",
        interpolation: str = "bicubic",
        img_size: int | list = 224,
        mean: list | None = None,
        prob: float = 1.0,
    ) -> None:
        settings = parse_rand_config(config_str)
        interpolation = str(interpolation).lower()
        if interpolation != "random" and interpolation not in INTERPOLATIONS:
            raise ConfigError(
                f"TimmAutoAugment.interpolation: expected one of {', '.join([*INTERPOLATIONS, 'random'])}, "
                f"got {summarize(interpolation)}"
            )
        sizes = [img_size] if isinstance(img_size, int) else list(img_size)
        if not sizes or not all(isinstance(s, int) and s > 0 for s in sizes):
            raise ConfigError(
                f"TimmAutoAugment.img_size: expected a positive integer or [h, w], got {summarize(img_size)}"
            )
        mean_v = list(mean) if mean is not None else list(IMAGENET_DEFAULT_MEAN)
        if len(mean_v) != 3:
            raise ConfigError(f"TimmAutoAugment.mean: expected three values in [0, 1], got {summarize(mean)}")
        self.fill = tuple(min(255, int(round(255 * parse_number(m, "TimmAutoAugment.mean")))) for m in mean_v)
        self.prob = parse_number(prob, "TimmAutoAugment.prob")
        self.config_str = config_str
        self.num_layers = int(settings["num_layers"])
        names = RAND_INCREASING_TRANSFORMS if settings["increasing"] else RAND_TRANSFORMS
        self.ops = [
            RandAugmentOp(
                name,
                float(settings["prob"]),
                float(settings["magnitude"]),
                float(settings["magnitude_std"]),
                float(settings["magnitude_max"]),
                self.fill,
                interpolation,
            )
            for name in names
        ]
        self.weights: np.ndarray | None = None
        if settings["weight_set"] == 0:
            w = np.array([CHOICE_WEIGHTS_0[n.replace("Increasing", "")] for n in names], dtype=np.float64)
            self.weights = w / w.sum()
            if self.num_layers > int(np.count_nonzero(w)):
                raise ConfigError(
                    f"TimmAutoAugment.config_str: w0 draws ops without replacement, so n must be at most "
                    f"{np.count_nonzero(w)}, got {summarize(config_str)}"
                )

    def __call__(self, img: np.ndarray) -> np.ndarray:
        img = C.as_image(img, "TimmAutoAugment")
        if self.prob < 1.0 and random.random() >= self.prob:
            return img
        picks = np.random.choice(len(self.ops), self.num_layers, replace=self.weights is None, p=self.weights)
        for i in picks:
            img = self.ops[i](img)
        return img
