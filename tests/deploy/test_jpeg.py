"""deploy/python/jpeg.py: the fast JPEG path gives OpenCV's pixels exactly, or steps aside."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from deploy.python import jpeg
from deploy.python.preprocess import DecodeImage, ImageDecodeError

SAMPLING = {
    "411": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_411,
    "420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
    "440": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_440,
    "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
}


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo (BGR), cropped to odd sizes so partial MCUs are exercised."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:301, :257, ::-1])


def encode(img: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, list(params))
    assert ok
    return buf.tobytes()


def opencv(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def with_exif_orientation(data: bytes, orientation: int, order: str) -> bytes:
    """``data`` with an EXIF APP1 segment (IFD0 holding only the orientation) after the SOI marker."""
    bo = "big" if order == "MM" else "little"
    tiff = (order.encode() + (42).to_bytes(2, bo) + (8).to_bytes(4, bo) + (1).to_bytes(2, bo)
            + (0x0112).to_bytes(2, bo) + (3).to_bytes(2, bo) + (1).to_bytes(4, bo)
            + orientation.to_bytes(2, bo) + b"\0\0" + (0).to_bytes(4, bo))
    payload = b"Exif\0\0" + tiff
    return data[:2] + b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload + data[2:]


def test_the_fast_decoder_is_installed():
    # requirements.txt installs simplejpeg: without it the tests below would only exercise OpenCV
    assert jpeg.available()


@pytest.mark.parametrize("progressive", [0, 1])
@pytest.mark.parametrize("sampling", sorted(SAMPLING))
@pytest.mark.parametrize("quality", [40, 95])
def test_pixels_equal_opencv(photo, quality, sampling, progressive):
    data = encode(photo, cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, SAMPLING[sampling],
                  cv2.IMWRITE_JPEG_PROGRESSIVE, progressive)
    ref = opencv(data)
    bgr = jpeg.decode(data, rgb=False)
    rgb = jpeg.decode(memoryview(data), rgb=True)
    assert bgr is not None and rgb is not None  # the fast path was taken
    np.testing.assert_array_equal(bgr, ref)
    np.testing.assert_array_equal(rgb, ref[:, :, ::-1])


def test_grayscale_and_cmyk_files_equal_opencv(photo):
    from PIL import Image

    gray = encode(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    buf = io.BytesIO()
    Image.fromarray(photo[:, :, ::-1]).convert("CMYK").save(buf, "JPEG")
    for data in (gray, buf.getvalue()):
        out = jpeg.decode(data, rgb=False)
        assert out is not None
        np.testing.assert_array_equal(out, opencv(data))


@pytest.mark.parametrize("order", ["MM", "II"])
def test_exif_rotation_is_left_to_opencv(photo, order):
    plain = encode(photo)
    assert jpeg.exif_orientation(plain) == 1
    upright = with_exif_orientation(plain, 1, order)
    assert jpeg.exif_orientation(upright) == 1
    np.testing.assert_array_equal(jpeg.decode(upright, rgb=False), opencv(plain))

    rotated = with_exif_orientation(plain, 6, order)
    assert jpeg.exif_orientation(rotated) == 6
    assert jpeg.decode(rotated, rgb=False) is None
    ref = opencv(rotated)
    assert ref.shape[:2] == photo.shape[1::-1]  # OpenCV applies the rotation
    img, is_bgr = DecodeImage(to_rgb=True)(rotated)
    np.testing.assert_array_equal(img if is_bgr else img[:, :, ::-1], ref)


def test_other_formats_and_broken_files_fall_back(photo):
    ok, png = cv2.imencode(".png", photo)
    assert jpeg.exif_orientation(png.tobytes()) is None and jpeg.decode(png.tobytes(), rgb=True) is None
    truncated = encode(photo)[:2000]
    assert jpeg.decode(truncated, rgb=True) is None
    bad_exif = b"\xff\xd8\xff\xe1\x00\x10Exif\0\0XX" + b"\0" * 6 + b"\xff\xd9"
    assert jpeg.exif_orientation(bad_exif) is None  # malformed TIFF header: unsure, so OpenCV decides
    with pytest.raises(ImageDecodeError):
        DecodeImage()(truncated)


def test_decode_image_uses_the_fast_path_and_matches_without_it(photo, monkeypatch):
    data = encode(photo)
    calls = []
    real = jpeg.simplejpeg.decode_jpeg
    monkeypatch.setattr(jpeg.simplejpeg, "decode_jpeg", lambda *a, **k: calls.append(k) or real(*a, **k))
    fast_rgb, bgr_flag = DecodeImage(to_rgb=True)(data)
    assert calls == [{"colorspace": "RGB"}] and not bgr_flag  # decoded straight into the model's order
    monkeypatch.setattr(jpeg, "simplejpeg", None)
    slow, slow_bgr = DecodeImage(to_rgb=True)(data)
    assert slow_bgr
    np.testing.assert_array_equal(fast_rgb, slow[:, :, ::-1])
