"""Prediction on image files with the Infer transforms and post-processing."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import paddle
import paddle.nn.functional as F

from ppcls.data.dataset import IMAGE_EXTENSIONS, warn_left_out
from ppcls.utils.errors import MissingFileError, summarize

logger = logging.getLogger(__name__)


def list_images(path: str | Sequence[str]) -> list[str]:
    """An image file, a folder (searched recursively, sorted) or a list of either."""
    if isinstance(path, (list, tuple)):
        return [p for item in path for p in list_images(item)]
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        found, left_out = [], []
        for root, _, files in os.walk(path):
            for f in files:
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(os.path.join(root, f))
                elif not f.startswith("."):
                    left_out.append(os.path.relpath(os.path.join(root, f), path))
        if not found:
            raise MissingFileError(f"Infer.infer_imgs: no images ({', '.join(IMAGE_EXTENSIONS)}) under {path}")
        warn_left_out(sorted(left_out), f"Infer.infer_imgs {path}")
        return sorted(found)
    raise MissingFileError(f"Infer.infer_imgs: no such file or folder: {summarize(path)}")


def batches(items: list[str], batch_size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), batch_size):
        yield items[i : i + batch_size]


def preprocess(files: Sequence[str], transform: Any) -> np.ndarray:
    arrays = []
    for path in files:
        with open(path, "rb") as f:
            img = transform(f.read())
        if img.ndim == 3 and img.shape[-1] in (1, 3) and img.shape[0] not in (1, 3):
            img = img.transpose(2, 0, 1)  # Infer transforms without ToCHWImage
        arrays.append(np.ascontiguousarray(img, dtype=np.float32))
    return np.stack(arrays)


@paddle.no_grad()
def predict_files(
    model: paddle.nn.Layer, files: Sequence[str], transform: Any, postprocess: Any, batch_size: int = 10
) -> Iterator[list[dict]]:
    """Yield one list of result dicts per batch (softmax scores, top-k from ``postprocess``)."""
    from ppcls.utils.progress import progress

    model.eval()
    with progress(total=len(files), desc="infer", unit="img") as bar:
        for chunk in batches(list(files), batch_size):
            x = paddle.to_tensor(preprocess(chunk, transform))
            probs = F.softmax(model(x), axis=-1).numpy()
            bar.update(len(chunk))
            yield postprocess(probs, chunk)
