"""Deploy preprocessing: PaddleClas's eval ``transform_ops`` run as one lean pipeline.

The ops keep PaddleClas's names and keys (``ResizeImage``, ``CropImage``, ``NormalizeImage``,
``ToCHWImage``; ``DecodeImage`` optionally first). Their results equal the training-side
eval transforms exactly; only the work is arranged to be cheap:

* decode JPEGs with libjpeg-turbo straight into the model's channel order (``jpeg.py``,
  bit-identical to OpenCV), other files with OpenCV, keeping its BGR order through resize and
  crop (they treat channels alike), so no colour conversion runs on the full-size image;
* resize and crop on ``uint8``;
* one vectorised step at the end does the channel swap, the HWC→CHW transpose and
  ``x * (scale / std) - mean / std`` straight into a reused batch buffer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from . import jpeg
from .config_syntax import parse_number
from .errors import DeployConfigError, ImageInputError, short

# The interpolation names of the ops' ``interpolation`` key and what each means to OpenCV and to PIL.
# One copy for both sides: ppcls/data/transforms/ops.py imports these (deploy/ runs alone, so they
# live here), so training and deploy cannot read a name differently.
CV2_INTERPOLATION = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "linear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "cubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}
PIL_INTERPOLATION_NAMES = ("nearest", "bilinear", "linear", "bicubic", "cubic", "area", "box", "lanczos", "hamming")


def pil_interpolation() -> dict[str, int]:
    """The PIL resampling filter of each of :data:`PIL_INTERPOLATION_NAMES` (PIL is imported only when asked:
    deploy needs it for ``backend: pil`` alone)."""
    from PIL import Image

    return {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "linear": Image.BILINEAR,
            "bicubic": Image.BICUBIC, "cubic": Image.BICUBIC, "area": Image.BOX, "box": Image.BOX,
            "lanczos": Image.LANCZOS, "hamming": Image.HAMMING}


class ImageDecodeError(ImageInputError):
    """The bytes are not an image OpenCV (or PIL) can read."""


class ImageSizeError(ImageInputError):
    """The image is too small for the preprocessing (a crop larger than the resized image)."""


def _check_keys(op: str, args: Mapping, allowed: Sequence[str]) -> None:
    for key in args:
        if key not in allowed:
            raise DeployConfigError(
                f"PreProcess.transform_ops.{op}: unknown key '{key}'; valid keys: {', '.join(allowed)}"
            )


def _backend(op: str, value: Any) -> str:
    name = str(value).lower()
    if name not in ("cv2", "pil"):
        raise DeployConfigError(f"PreProcess.transform_ops.{op}.backend: expected cv2 or pil, got {short(value)}")
    return name


def _interp(op: str, value: Any, backend: str) -> str:
    name = "bilinear" if value is None else str(value).lower()
    valid = PIL_INTERPOLATION_NAMES if backend == "pil" else tuple(CV2_INTERPOLATION)
    if name == "random":
        raise DeployConfigError(
            f"PreProcess.transform_ops.{op}.interpolation: 'random' is a training augmentation; "
            f"inference needs a fixed one of {', '.join(valid)}"
        )
    if name not in valid:
        raise DeployConfigError(
            f"PreProcess.transform_ops.{op}.interpolation: expected one of {', '.join(valid)}, got {short(value)}"
        )
    return name


def _pil_resize(img: np.ndarray, size: tuple[int, int], interpolation: str) -> np.ndarray:
    from PIL import Image  # only for backend: pil (Pillow comes with paddle)

    return np.asarray(Image.fromarray(img).resize(size, pil_interpolation()[interpolation]))


class DecodeImage:
    """How to decode: ``to_rgb`` (the model's channel order) and ``backend`` (cv2 or pil)."""

    def __init__(self, to_rgb: bool = True, to_np: bool = True, channel_first: bool = False,
                 backend: str = "cv2") -> None:
        del to_np  # no effect, as in PaddleClas (see ppcls's DecodeImage): the image is an array either way
        if channel_first:
            raise DeployConfigError(
                "PreProcess.transform_ops.DecodeImage.channel_first: True would hand CHW images to the "
                "resize and crop ops; use ToCHWImage at the end instead"
            )
        self.to_rgb = bool(to_rgb)
        self.backend = _backend("DecodeImage", backend)

    def __call__(self, data: bytes | bytearray | memoryview | np.ndarray) -> tuple[np.ndarray, bool]:
        """(HWC uint8 image, whether its channels are BGR)."""
        if isinstance(data, np.ndarray):
            if data.dtype != np.uint8 or data.ndim not in (2, 3):
                raise ImageDecodeError(f"expected an HWC uint8 RGB array, got {data.dtype} {data.shape}")
            img = data if data.ndim == 3 else data[:, :, None]
            return _three_channels(img), False  # arrays are RGB, as PaddleClas's predict() takes them
        if self.backend == "pil":
            import io

            from PIL import Image

            try:
                with Image.open(io.BytesIO(bytes(data))) as pil:
                    return np.asarray(pil.convert("RGB")), False
            except Exception as e:
                raise ImageDecodeError(f"cannot decode image ({e})") from None
        img = jpeg.decode(data, rgb=self.to_rgb)  # libjpeg-turbo straight into the model's order, when it can
        if img is not None:
            return img, not self.to_rgb
        buf = np.frombuffer(data, dtype=np.uint8)
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
        if img is None:
            raise ImageDecodeError("cannot decode image (empty, truncated or not an image format OpenCV reads)")
        return _three_channels(img), True


def _three_channels(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        return np.repeat(img, 3, axis=2)
    if img.shape[2] == 4:
        return img[:, :, :3]
    return img


def _size_pair(where: str, value: Any, prefix: str = "PreProcess.transform_ops.",
               error: type[Exception] = DeployConfigError) -> tuple[int, int]:
    """(w, h) from a positive integer or a [w, h] pair of them."""
    items = [value, value] if not isinstance(value, (list, tuple)) else list(value)
    if len(items) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items):
        raise error(f"{prefix}{where}: expected a positive integer or [width, height], got {short(value)}")
    return items[0], items[1]


def resize_plan(size: Any, resize_short: Any, return_numpy: bool = True, prefix: str = "PreProcess.transform_ops.",
                error: type[Exception] = DeployConfigError) -> tuple[tuple[int, int] | None, int | None]:
    """``ResizeImage``'s checked arguments, ``(size as (w, h) or None, resize_short or None)``.

    One check for both sides: ppcls's ``ResizeImage`` calls it with ``prefix=""`` and its ``ConfigError``.
    """
    if (size is None) == (resize_short is None):
        raise error(f"{prefix}ResizeImage: give exactly one of size or resize_short")
    if not return_numpy:
        raise error(f"{prefix}ResizeImage.return_numpy: only True is supported: every op here takes and returns numpy "
                    "arrays (PaddleClas's False returns a PIL image); remove the key or set it to True")
    if size is not None:
        return _size_pair("ResizeImage.size", size, prefix, error), None
    if isinstance(resize_short, bool) or not isinstance(resize_short, int) or resize_short <= 0:
        raise error(f"{prefix}ResizeImage.resize_short: expected a positive integer, got {short(resize_short)}")
    return None, resize_short


def resize_target(h: int, w: int, size: tuple[int, int] | None, resize_short: int | None) -> tuple[int, int]:
    """(width, height) after resizing an ``h`` x ``w`` image to ``size``, or its short side to ``resize_short``."""
    if size is not None:
        return size
    scale = resize_short / min(h, w)
    return int(round(w * scale)), int(round(h * scale))


class ResizeImage:
    """Resize to ``size`` ([w, h] or an int) or the short side to ``resize_short``."""

    def __init__(self, size: int | list | None = None, resize_short: int | None = None,
                 interpolation: str | None = None, backend: str = "cv2", return_numpy: bool = True) -> None:
        self.size, self.resize_short = resize_plan(size, resize_short, return_numpy)
        self.backend = _backend("ResizeImage", backend)
        self.interpolation = _interp("ResizeImage", interpolation, self.backend)

    def target(self, h: int, w: int) -> tuple[int, int]:
        """(width, height) after resizing an ``h`` x ``w`` image."""
        return resize_target(h, w, self.size, self.resize_short)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        size = self.target(*img.shape[:2])
        if self.backend == "pil":
            return _pil_resize(img, size, self.interpolation)
        out = cv2.resize(img, size, interpolation=CV2_INTERPOLATION[self.interpolation])
        return out if out.ndim == 3 else out[:, :, None]


def ends_chw(steps: Sequence[tuple[str, str | None]], where: str = "PreProcess.transform_ops",
             error: type[Exception] = DeployConfigError) -> bool:
    """The image-layout rule, one copy for training, ``tools/infer.py`` and deploy: does a pipeline end CHW?

    ``steps``: each op's name and its ``order`` (``NormalizeImage``'s; None for other ops). Images
    decode to HWC. ``ToCHWImage`` and ``NormalizeImage`` with ``order: chw`` each turn HWC into CHW
    (our ``NormalizeImage`` transposes while it normalises); a second such op is an error. The model
    input is always CHW: a pipeline that ends HWC is transposed after its last op, as PaddleClas's
    datasets transpose after their transforms (ppcls's datasets and infer, and :class:`Preprocessor`).
    """
    chw = False
    for i, (name, order) in enumerate(steps):
        if name == "ToCHWImage" or (name == "NormalizeImage" and order == "chw"):
            if chw:
                raise error(f"{where}.{i} ({name}): the image is already CHW here (ToCHWImage or NormalizeImage "
                            "with order chw came before); keep one of them")
            chw = True
    return chw


def center_crop(img: np.ndarray, w: int, h: int, error: type[Exception] = ImageSizeError) -> np.ndarray:
    """The centre ``w`` x ``h`` window of an HWC image (a view); ``error`` when the image is smaller.

    ppcls's ``CropImage`` calls this too (with its ``DataError``): one crop for training and deploy.
    """
    ih, iw = img.shape[:2]
    if iw < w or ih < h:
        raise error(f"CropImage: image {iw}x{ih} is smaller than the crop {w}x{h}")
    x0 = (iw - w) // 2
    y0 = (ih - h) // 2
    return img[y0 : y0 + h, x0 : x0 + w]


class CropImage:
    """Centre crop to ``size`` (an int or [w, h])."""

    def __init__(self, size: int | list) -> None:
        self.w, self.h = _size_pair("CropImage.size", size)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return center_crop(img, self.w, self.h)


class NormalizeImage:
    """``(img * scale - mean) / std`` computed as ``img * (scale/std) - mean/std`` in float32."""

    def __init__(self, scale: float | str | None = None, mean: list | None = None, std: list | None = None,
                 order: str = "chw", output_fp16: bool = False, channel_num: int = 3) -> None:
        scale_v = parse_number(scale, "PreProcess.transform_ops.NormalizeImage.scale") if scale is not None else 1.0 / 255.0
        try:
            mean_v = np.asarray(mean if mean is not None else [0.485, 0.456, 0.406], dtype=np.float32)
            std_v = np.asarray(std if std is not None else [0.229, 0.224, 0.225], dtype=np.float32)
        except (TypeError, ValueError):
            raise DeployConfigError(
                f"PreProcess.transform_ops.NormalizeImage: mean and std need 3 numbers, got {short(mean)}, {short(std)}"
            ) from None
        if mean_v.shape != (3,) or std_v.shape != (3,):
            raise DeployConfigError(f"PreProcess.transform_ops.NormalizeImage: mean and std need 3 values, got {short(mean)}, {short(std)}")
        if np.any(std_v == 0):
            raise DeployConfigError(f"PreProcess.transform_ops.NormalizeImage.std: values must be non-zero, got {short(std)}")
        order = str(order or "hwc").lower()
        if order not in ("chw", "hwc"):
            raise DeployConfigError(f"PreProcess.transform_ops.NormalizeImage.order: expected chw, hwc or '', got {short(order)}")
        if channel_num != 3:
            raise DeployConfigError(f"PreProcess.transform_ops.NormalizeImage.channel_num: only 3 is supported, got {channel_num}")
        self.order = order
        # the same float32 constants as the training transforms, so results are bit-identical
        self.mul = (scale_v / std_v).astype(np.float32)
        self.sub = (mean_v / std_v).astype(np.float32)
        self.dtype = np.dtype(np.float16 if output_fp16 else np.float32)


class ToCHWImage:
    """HWC → CHW (fused into the final normalisation step)."""

    def __init__(self) -> None:
        pass


OPS = {"DecodeImage": DecodeImage, "ResizeImage": ResizeImage, "CropImage": CropImage,
       "NormalizeImage": NormalizeImage, "ToCHWImage": ToCHWImage}
_GEOMETRY = (ResizeImage, CropImage)


def _op_items(transform_ops: Any) -> list[tuple[str, dict]]:
    if transform_ops is None:
        return []
    if not isinstance(transform_ops, (list, tuple)):
        raise DeployConfigError(f"PreProcess.transform_ops: expected a list of {{OpName: {{args}}}}, got {short(transform_ops)}")
    items = []
    for i, op in enumerate(transform_ops):
        if isinstance(op, str):
            name, args = op, {}
        elif isinstance(op, Mapping) and len(op) == 1:
            name, args = next(iter(op.items()))
            if args is not None and not isinstance(args, Mapping):
                raise DeployConfigError(
                    f"PreProcess.transform_ops.{i} ({name}): expected a mapping of arguments, got {short(args)}")
            args = dict(args or {})
        else:
            raise DeployConfigError(f"PreProcess.transform_ops.{i}: expected {{OpName: {{args}}}}, got {short(op)}")
        if name not in OPS:
            import difflib

            close = difflib.get_close_matches(str(name), OPS, n=2)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise DeployConfigError(
                f"PreProcess.transform_ops.{i}: unknown op '{name}'.{hint} Valid ops: {', '.join(OPS)}"
            )
        items.append((name, args))
    return items


def _build(name: str, args: dict) -> Any:
    import inspect

    params = inspect.signature(OPS[name]).parameters
    _check_keys(name, args, list(params))
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in args]
    if missing:
        raise DeployConfigError(f"PreProcess.transform_ops.{name}: missing {', '.join(missing)}")
    return OPS[name](**args)


class Preprocessor:
    """Image bytes (or an RGB array) → the model input, batch by batch into one reused buffer."""

    def __init__(self, transform_ops: Any) -> None:
        items = _op_items(transform_ops)
        self.decode = DecodeImage()
        self.geometry: list[Any] = []
        self.normalize: NormalizeImage | None = None
        seen = False  # NormalizeImage or ToCHWImage met: resize and crop must come before
        steps: list[tuple[str, str | None]] = []
        for i, (name, args) in enumerate(items):
            op = _build(name, args)
            steps.append((name, getattr(op, "order", None)))
            where = f"PreProcess.transform_ops.{i} ({name})"
            if isinstance(op, DecodeImage):
                if i != 0:
                    raise DeployConfigError(f"{where}: DecodeImage can only be the first op")
                self.decode = op
            elif isinstance(op, _GEOMETRY):
                if seen:
                    raise DeployConfigError(f"{where}: resize and crop must come before NormalizeImage and ToCHWImage")
                self.geometry.append(op)
            elif isinstance(op, NormalizeImage):
                if self.normalize is not None:
                    raise DeployConfigError(f"{where}: NormalizeImage must come once")
                self.normalize = op
                seen = True
            elif isinstance(op, ToCHWImage):
                seen = True
        # checked, not branched on: whatever the ops, the model gets CHW (ends_chw's rule), in one pass in finish()
        ends_chw(steps)
        self.dtype = self.normalize.dtype if self.normalize is not None else np.dtype(np.float32)
        if self.normalize is not None:
            self._mul = self.normalize.mul.reshape(-1, 1, 1)
            self._sub = self.normalize.sub.reshape(-1, 1, 1)
        self._buffer: np.ndarray | None = None

    def geometry_only(self, data: Any) -> tuple[np.ndarray, bool]:
        """Decode, resize and crop: (HWC uint8 image, channels are BGR)."""
        img, bgr = self.decode(data)
        for op in self.geometry:
            img = op(img)
        return img, bgr

    def output_shape(self, img: np.ndarray) -> tuple[int, int, int]:
        h, w, c = img.shape
        return c, h, w

    def finish(self, img: np.ndarray, bgr: bool, out: np.ndarray) -> np.ndarray:
        """Channel order, layout and normalisation in one pass, written into ``out``."""
        if bgr == self.decode.to_rgb:  # stored order differs from what the model wants
            img = img[:, :, ::-1]
        src = img.transpose(2, 0, 1)  # HWC -> CHW: the model input, whatever the ops (ends_chw)
        if self.normalize is None:
            out[...] = src
            return out
        if out.dtype == np.float32:
            np.multiply(src, self._mul, out=out)
            out -= self._sub
        else:  # output_fp16: compute in float32 like the training transform, then cast
            out[...] = np.multiply(src, self._mul, dtype=np.float32) - self._sub
        return out

    def __call__(self, data: Any) -> np.ndarray:
        """One image → a new array (CHW float32 for the usual configs)."""
        img, bgr = self.geometry_only(data)
        out = np.empty(self.output_shape(img), dtype=self.dtype)
        return self.finish(img, bgr, out)

    def batch(self, items: Sequence[Any]) -> np.ndarray:
        """Stack images into the reused buffer; the result is valid until the next call."""
        n = len(items)
        if n == 0:
            raise ValueError("Preprocessor.batch: no images")
        first, bgr = self.geometry_only(items[0])
        shape = self.output_shape(first)
        buf = self._buffer
        if buf is None or buf.shape[1:] != shape or buf.shape[0] < n:
            buf = self._buffer = np.empty((max(n, 1), *shape), dtype=self.dtype)
        self.finish(first, bgr, buf[0])
        for i in range(1, n):
            img, bgr = self.geometry_only(items[i])
            if self.output_shape(img) != shape:
                raise DeployConfigError(
                    f"image {i} of the batch is {self.output_shape(img)} after preprocessing but the first is "
                    f"{shape}: use a fixed-size ResizeImage/CropImage or batch_size 1"
                )
            self.finish(img, bgr, buf[i])
        return buf[:n]
