"""Fast JPEG decoding with libjpeg-turbo (``simplejpeg``), bit-identical to ``cv2.imdecode``.

OpenCV's ``imdecode`` and ``simplejpeg`` both run libjpeg-turbo with its defaults (accurate
integer IDCT, fancy upsampling), so their pixels are the same; ``simplejpeg`` skips OpenCV's
decoder plumbing and writes the model's channel order directly, which saves about 10 % of the
decode time, the largest part of the deploy preprocessing (docs/benchmarks.md).
``tests/deploy/test_jpeg.py`` checks the equality for every chroma subsampling, baseline and
progressive files, grayscale and CMYK files, and EXIF-rotated files.

The fast path is taken only when it gives exactly what OpenCV would: a JPEG without an EXIF
rotation (``cv2.IMREAD_COLOR`` applies the EXIF orientation) that ``simplejpeg`` reads without
error. Everything else returns ``None`` and the caller uses OpenCV (which then also reports a
broken file).
``simplejpeg`` is optional: without it every image goes through OpenCV.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # optional dependency (requirements.txt installs it)
    import simplejpeg
except ImportError:  # pragma: no cover - exercised where the package is missing
    simplejpeg = None

_SOI = b"\xff\xd8"
_EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION_TAG = 0x0112


def available() -> bool:
    """Whether the fast decoder is installed."""
    return simplejpeg is not None


def _tiff_orientation(tiff: bytes) -> int | None:
    """The orientation entry of IFD0 in an EXIF TIFF block; 1 when absent, None when malformed."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    order = "little" if tiff[:2] == b"II" else "big"
    ifd = int.from_bytes(tiff[4:8], order)
    if ifd + 2 > len(tiff):
        return None
    count = int.from_bytes(tiff[ifd:ifd + 2], order)
    for k in range(count):
        entry = ifd + 2 + 12 * k
        if entry + 12 > len(tiff):
            return None
        if int.from_bytes(tiff[entry:entry + 2], order) == _ORIENTATION_TAG:
            return int.from_bytes(tiff[entry + 8:entry + 10], order)  # type SHORT, value left-justified
    return 1


def exif_orientation(data: bytes | bytearray | memoryview) -> int | None:
    """The EXIF orientation of a JPEG: 1 (upright) when it has none, None when unsure."""
    if not isinstance(data, bytes):
        data = bytes(data)
    if not data.startswith(_SOI):
        return None
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no EXIF after this point
            return 1
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2:
            return None
        if marker == 0xE1 and data[i + 4:i + 10] == _EXIF_HEADER:
            return _tiff_orientation(data[i + 10:i + 2 + length])
        i += 2 + length
    return None


def decode(data: Any, rgb: bool) -> np.ndarray | None:
    """HWC uint8 pixels (RGB if ``rgb`` else BGR) equal to OpenCV's, or None to let OpenCV decode."""
    if simplejpeg is None or exif_orientation(data) != 1:
        return None
    try:
        return simplejpeg.decode_jpeg(data, colorspace="RGB" if rgb else "BGR")
    except (ValueError, RuntimeError):  # e.g. CMYK, arithmetic coding, 12-bit, corrupt: OpenCV decides
        return None
