"""Prediction on image files with the Infer transforms and post-processing."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import paddle
import paddle.nn.functional as F

from deploy.python.files import check_bad_images as _check_bad_images
from deploy.python.files import list_named_images as _list_named_images
from ppcls.data.dataset import warn_left_out
from ppcls.data.transforms.ops import DecodeError
from ppcls.utils.errors import PPCLS_ERRORS, DataError
from ppcls.utils.progress import progress

logger = logging.getLogger(__name__)

LOGGED_SKIPS = 5  # skipped files logged one by one (with the reason); the rest are counted


def list_images(path: str | Sequence[str]) -> list[str]:
    """An image file, a folder (searched recursively, sorted) or a list of either."""
    return [p for p, _ in list_named_images(path)]


def _warn_left_out(left_out: list[str], folder: str, where: str) -> None:
    warn_left_out(left_out, f"{where} {folder}")


def list_named_images(path: str | Sequence[str]) -> list[tuple[str, str]]:
    """``(path, name)`` of every image :func:`list_images` finds; the name is the path relative to the
    folder given (``cat/001.jpg``), or the path as given for a file. The listing is deploy's
    (``deploy/python/files.py``, one copy for both sides), so the predictor names its results the same way."""
    return _list_named_images(path, "Infer.infer_imgs", PPCLS_ERRORS, _warn_left_out)


def batches(items: list[str], batch_size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), batch_size):
        yield items[i : i + batch_size]


def preprocess(files: Sequence[str], transform: Any) -> np.ndarray:
    """One batch array of ``files``; raises on a file that cannot be read or decoded."""
    arrays, kept, skipped = prepare(files, transform)
    if skipped:
        raise skipped[0][2]
    return arrays


def _load(path: str, transform: Any, chw: bool) -> np.ndarray:
    with open(path, "rb") as f:
        img = transform.to_model_layout(transform(f.read()), chw)  # Infer transforms without ToCHWImage too
    return np.ascontiguousarray(img, dtype=np.float32)


def prepare(files: Sequence[str], transform: Any) -> tuple[np.ndarray | None, list[int], list[tuple]]:
    """The batch of the files that can be read and decoded, their positions in ``files``, and
    ``(position, reason, error)`` of the others (skipped, as training and the predictor skip them)."""
    arrays, kept, skipped = [], [], []
    chw = transform.ends_chw("Infer.transforms")
    for i, path in enumerate(files):
        try:
            arrays.append(_load(path, transform, chw))
        except (DecodeError, OSError) as e:
            reason = f"cannot read the file ({e.strerror or e})" if isinstance(e, OSError) else str(e)
            skipped.append((i, reason, e))
            continue
        kept.append(i)
    return (np.stack(arrays) if arrays else None), kept, skipped


@paddle.no_grad()
def predict_files(
    model: paddle.nn.Layer, files: Sequence[str], transform: Any, postprocess: Any, batch_size: int = 10,
    names: Sequence[str] | None = None, skipped: list[str] | None = None,
) -> Iterator[list[dict]]:
    """Yield one list of result dicts per batch (softmax scores, top-k from ``postprocess``).

    ``names``: the ``file_name`` of each file's result (default: its path). A file that cannot be read or
    decoded is skipped (the first few logged with the reason) and its path appended to ``skipped``; the
    caller judges their share with :func:`check_bad_images`.
    """
    files = list(files)
    names = list(names) if names is not None else files
    skipped = skipped if skipped is not None else []
    model.eval()
    with progress(total=len(files), desc="infer", unit="img") as bar:
        for start in range(0, len(files), batch_size):
            chunk = files[start : start + batch_size]
            x, kept, bad = prepare(chunk, transform)
            for i, reason, _ in bad:
                if len(skipped) < LOGGED_SKIPS:
                    logger.warning("skipped %s: %s", chunk[i], reason)
                elif len(skipped) == LOGGED_SKIPS:
                    logger.warning("more unreadable files: counted, not logged one by one")
                skipped.append(chunk[i])
            bar.update(len(chunk))
            if x is None:
                continue
            probs = F.softmax(model(paddle.to_tensor(x)), axis=-1).numpy()
            yield postprocess(probs, [names[start + i] for i in kept])


def check_bad_images(skipped: Sequence[str], total: int, max_ratio: float) -> None:
    """Name a few of the unreadable files and count them; more than ``max_ratio`` of ``total`` (or all
    of them) raises :class:`DataError` naming ``Global.max_bad_image_ratio``; fewer is a warning.
    The rule is the predictor's (``deploy/python/files.py``), with this tool's wording."""
    _check_bad_images(skipped, total, max_ratio, error=DataError, where="Infer.infer_imgs: ",
                      advice="the results of the others were printed; fix or remove the files, or pass "
                             "-o Global.max_bad_image_ratio=<fraction> to accept more",
                      warn=lambda text: logger.warning("%s", text))
