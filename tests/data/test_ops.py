"""Core transforms: shapes, dtypes, value ranges, determinism, decoding odd images."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from ppcls.data.transforms import build_transforms
from ppcls.data.transforms.ops import (
    CropImage,
    DecodeError,
    DecodeImage,
    NormalizeImage,
    RandCropImage,
    RandFlipImage,
    ResizeImage,
    ToCHWImage,
)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.chelsea())  # RGB uint8, 300x451


def encode(img: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def test_decode_rgb_and_bgr(photo):
    data = encode(photo[:, :, ::-1])  # cv2 encodes BGR
    rgb = DecodeImage(to_rgb=True)(data)
    assert rgb.shape == photo.shape and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - photo).mean() < 3
    bgr = DecodeImage(to_rgb=False)(data)
    np.testing.assert_array_equal(bgr, rgb[:, :, ::-1])
    pil = DecodeImage(backend="pil")(data)
    assert pil.shape == photo.shape and np.abs(pil.astype(int) - rgb).mean() < 2
    assert DecodeImage(channel_first=True)(data).shape == (3, *photo.shape[:2])


@pytest.mark.parametrize("make", [
    lambda p: encode(cv2.cvtColor(p, cv2.COLOR_RGB2GRAY), ".png"),
    lambda p: encode(cv2.cvtColor(p, cv2.COLOR_RGB2BGRA), ".png"),
    lambda p: encode((p.astype(np.uint16) * 257), ".png"),
])
def test_grayscale_rgba_16bit_become_three_channel_uint8(photo, make):
    for backend in ("cv2", "pil"):
        img = DecodeImage(backend=backend)(make(photo))
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8


@pytest.mark.parametrize("data", [b"", b"not an image at all", None])
def test_undecodable_raises_decode_error(photo, data):
    if data is None:
        data = encode(photo)[:200]  # truncated JPEG header
    with pytest.raises(DecodeError):
        DecodeImage()(data)


def test_resize_modes(photo):
    assert ResizeImage(size=64)(photo).shape == (64, 64, 3)
    assert ResizeImage(size=[80, 40])(photo).shape == (40, 80, 3)
    out = ResizeImage(resize_short=100)(photo)
    assert min(out.shape[:2]) == 100 and out.shape[1] == round(451 * 100 / 300)
    assert ResizeImage(size=32, backend="pil", interpolation="bicubic")(photo).shape == (32, 32, 3)
    with pytest.raises(ValueError, match="exactly one of size or resize_short"):
        ResizeImage()
    with pytest.raises(ValueError, match="interpolation"):
        ResizeImage(size=3, interpolation="magic")


def test_center_crop(photo):
    out = CropImage(size=100)(photo)
    assert out.shape == (100, 100, 3)
    np.testing.assert_array_equal(out, photo[100:200, 175:275])
    with pytest.raises(ValueError, match="smaller than the crop"):
        CropImage(size=1000)(photo)


def test_random_crop_is_seeded(photo):
    op = RandCropImage(size=48, interpolation="random")
    random.seed(3)
    a = op(photo)
    random.seed(3)
    b = op(photo)
    assert a.shape == (48, 48, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_flip_codes(photo):
    random.seed(0)
    outs = [RandFlipImage(flip_code=1)(photo) for _ in range(20)]
    assert any((o == photo).all() for o in outs) and any((o == photo[:, ::-1]).all() for o in outs)
    with pytest.raises(ValueError):
        RandFlipImage(flip_code=2)


def test_normalize_orders_and_fp16(photo):
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.3, 0.4]
    ref = (photo.astype(np.float32) / 255.0 - np.array(mean)) / np.array(std)
    hwc = NormalizeImage(scale="1.0/255.0", mean=mean, std=std, order="")(photo)
    chw = NormalizeImage(scale=1 / 255.0, mean=mean, std=std, order="chw")(photo)
    assert hwc.dtype == np.float32 and hwc.shape == photo.shape
    np.testing.assert_allclose(hwc, ref, atol=1e-5)
    np.testing.assert_allclose(chw, ref.transpose(2, 0, 1), atol=1e-5)
    np.testing.assert_allclose(ToCHWImage()(hwc), chw, atol=1e-6)
    assert NormalizeImage(output_fp16=True)(photo).dtype == np.float16


def test_build_pipeline_from_config(photo):
    t = build_transforms([{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"resize_short": 40}},
                          {"CropImage": {"size": 32}}, {"NormalizeImage": {"order": "chw"}}])
    out = t(encode(photo))
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    assert -3 < out.min() < out.max() < 3
