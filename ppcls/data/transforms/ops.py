"""Core per-sample image operators with PaddleClas's names and keys.

Images travel as ``uint8`` HWC RGB arrays until ``NormalizeImage``; geometry happens on
uint8 (cheap) and normalisation + HWC→CHW is one vectorised step at the end.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from deploy.python.preprocess import (
    CV2_INTERPOLATION,
    center_crop,
    pil_interpolation,
    resize_plan,
    resize_target,
)
from ppcls.registry import TRANSFORMS
from ppcls.utils.errors import ConfigError, DataError, summarize
from ppcls.utils.numbers import parse_number

# one copy of the interpolation tables for training and deploy (deploy/ runs alone, so they live there)
_CV2_INTERP = CV2_INTERPOLATION
_PIL_INTERP = pil_interpolation()


class DecodeError(DataError):
    """The bytes are not an image this pipeline can read."""


def _check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {summarize(value)}")
    return value


def _interp_name(interpolation: str | None) -> str | None:
    if interpolation is None:
        return None
    key = str(interpolation).lower()
    if key != "random" and key not in _CV2_INTERP and key not in _PIL_INTERP:
        valid = sorted(set(_CV2_INTERP) | set(_PIL_INTERP) | {"random"})
        raise ConfigError(f"interpolation: expected one of {', '.join(valid)}, got {summarize(interpolation)}")
    return key


def resize(img: np.ndarray, size: tuple[int, int], interpolation: str | None, backend: str) -> np.ndarray:
    """Resize HWC uint8 ``img`` to ``size`` = (width, height)."""
    if interpolation == "random":
        table = _PIL_INTERP if backend == "pil" else _CV2_INTERP
        interpolation = random.choice(sorted(table))
    if backend == "pil":
        mode = _PIL_INTERP.get(interpolation or "bilinear", Image.BILINEAR)
        return np.asarray(Image.fromarray(img).resize(size, mode))
    mode = _CV2_INTERP.get(interpolation or "bilinear", cv2.INTER_LINEAR)
    out = cv2.resize(img, size, interpolation=mode)
    if out.ndim == 2:
        out = out[:, :, None]
    return out


def _to_three_channels(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if img.shape[2] == 4:
        return img[:, :, :3]
    return img


@TRANSFORMS.register()
class DecodeImage:
    """Bytes → HWC uint8 image; grayscale, RGBA, CMYK and 16-bit inputs become 3-channel 8-bit.

    ``to_np`` is accepted with either value and has no effect, as in PaddleClas (its recipes write
    ``to_np: False``; its DecodeImage keeps the value and never reads it: the result is a numpy array).
    """

    def __init__(
        self,
        to_rgb: bool = True,
        to_np: bool = True,
        channel_first: bool = False,
        backend: str = "cv2",
    ) -> None:
        del to_np  # PaddleClas's DecodeImage stores it and never reads it: the image is an array either way
        self.to_rgb = to_rgb
        self.channel_first = channel_first
        self.backend = _check_choice("DecodeImage.backend", str(backend).lower(), ("cv2", "pil"))

    def __call__(self, data: bytes | np.ndarray) -> np.ndarray:
        if isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 3:
            img = data  # already decoded
        elif self.backend == "pil":
            try:
                with Image.open(io.BytesIO(data)) as pil:
                    img = np.asarray(pil.convert("RGB"))
            except Exception as e:
                raise DecodeError(f"cannot decode image ({e})") from None
            if not self.to_rgb:
                img = img[:, :, ::-1]
        else:
            buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
            if img is None:
                raise DecodeError("cannot decode image (empty, truncated or not an image)")
            img = _to_three_channels(img)
            if self.to_rgb:
                img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if self.channel_first:
            img = np.ascontiguousarray(img.transpose(2, 0, 1))
        return img


@TRANSFORMS.register()
class ResizeImage:
    """Resize to ``size`` ([w, h] or an int for a square) or the short side to ``resize_short``."""

    def __init__(
        self,
        size: int | list | None = None,
        resize_short: int | None = None,
        interpolation: str | None = None,
        backend: str = "cv2",
        return_numpy: bool = True,
    ) -> None:
        self.size, self.resize_short = resize_plan(size, resize_short, return_numpy, "", ConfigError)
        self.interpolation = _interp_name(interpolation)
        self.backend = _check_choice("ResizeImage.backend", str(backend).lower(), ("cv2", "pil"))

    def __call__(self, img: np.ndarray) -> np.ndarray:
        size = resize_target(*img.shape[:2], self.size, self.resize_short)
        return resize(img, size, self.interpolation, self.backend)


@TRANSFORMS.register()
class CropImage:
    """Centre crop to ``size`` (int or [w, h])."""

    def __init__(self, size: int | list) -> None:
        self.w, self.h = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return center_crop(img, self.w, self.h, DataError)


@TRANSFORMS.register()
class RandCropImage:
    """Random resized crop (area ``scale``, aspect ``ratio``), then resize to ``size``."""

    def __init__(
        self,
        size: int | list,
        scale: list | None = None,
        ratio: list | None = None,
        interpolation: str | None = None,
        use_log_aspect: bool = False,
        backend: str = "cv2",
    ) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.scale = tuple(scale) if scale is not None else (0.08, 1.0)
        self.ratio = tuple(ratio) if ratio is not None else (3.0 / 4.0, 4.0 / 3.0)
        if not (0 < self.scale[0] <= self.scale[1] <= 1.0):
            raise ConfigError(f"RandCropImage.scale: expected 0 < min <= max <= 1, got {summarize(scale)}")
        self.interpolation = _interp_name(interpolation)
        self.use_log_aspect = use_log_aspect
        self.backend = _check_choice("RandCropImage.backend", str(backend).lower(), ("cv2", "pil"))

    def _window(self, h: int, w: int) -> tuple[int, int, int, int]:
        area = h * w
        for _ in range(10):
            target = random.uniform(*self.scale) * area
            if self.use_log_aspect:
                aspect = math.exp(random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            else:
                aspect = random.uniform(*self.ratio)
            cw = int(round(math.sqrt(target * aspect)))
            ch = int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                return random.randint(0, h - ch), random.randint(0, w - cw), ch, cw
        side = min(h, w)  # fall back to the centred largest square
        return (h - side) // 2, (w - side) // 2, side, side

    def __call__(self, img: np.ndarray) -> np.ndarray:
        y, x, ch, cw = self._window(*img.shape[:2])
        return resize(img[y : y + ch, x : x + cw], self.size, self.interpolation, self.backend)


@TRANSFORMS.register()
class RandFlipImage:
    """Flip with probability 0.5; ``flip_code`` 1 horizontal, 0 vertical, -1 both."""

    def __init__(self, flip_code: int = 1) -> None:
        if flip_code not in (-1, 0, 1):
            raise ConfigError(f"RandFlipImage.flip_code: expected -1, 0 or 1, got {flip_code}")
        self.flip_code = flip_code

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if random.random() < 0.5:
            return cv2.flip(img, self.flip_code).reshape(img.shape)
        return img


@TRANSFORMS.register()
class NormalizeImage:
    """``(img * scale - mean) / std`` as float32, in ``order`` 'hwc' ('' too) or 'chw'."""

    def __init__(
        self,
        scale: float | None = None,
        mean: list | None = None,
        std: list | None = None,
        order: str = "chw",
        output_fp16: bool = False,
        channel_num: int = 3,
    ) -> None:
        if channel_num != 3:
            raise ConfigError(
                f"NormalizeImage.channel_num: only 3 is supported (PaddleClas's 4 adds a zero channel for NHWC "
                f"float16 kernels; the models here take 3 channels), got {summarize(channel_num)}")
        scale_v = parse_number(scale, "NormalizeImage.scale") if scale is not None else 1.0 / 255.0
        mean_v = np.asarray(mean if mean is not None else [0.485, 0.456, 0.406], dtype=np.float32)
        std_v = np.asarray(std if std is not None else [0.229, 0.224, 0.225], dtype=np.float32)
        if np.any(std_v == 0):
            raise ConfigError(f"NormalizeImage.std: values must be non-zero, got {summarize(std)}")
        self.order = _check_choice("NormalizeImage.order", str(order).lower(), ("chw", "hwc", ""))
        self.order = self.order or "hwc"
        # x * scale/std - mean/std: one multiply-add per pixel
        self.mul = (scale_v / std_v).astype(np.float32)
        self.sub = (mean_v / std_v).astype(np.float32)
        self.dtype = np.float16 if output_fp16 else np.float32

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.order == "chw":
            chw = np.empty((img.shape[2], img.shape[0], img.shape[1]), dtype=np.float32)
            np.multiply(img.transpose(2, 0, 1), self.mul[:, None, None], out=chw)
            chw -= self.sub[:, None, None]
            out = chw
        else:
            out = np.multiply(img, self.mul, dtype=np.float32)
            out -= self.sub
        return out.astype(self.dtype, copy=False)


@TRANSFORMS.register()
class ToCHWImage:
    """HWC → CHW."""

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(img.transpose(2, 0, 1))
