"""Writing a small labelled image set as PaddleClas lists: the shared part of the bundled data sets.

Layout under ``dataset_dir``: ``images/<folder>/<index>.png``, ``train_list.txt`` and ``val_list.txt``
(``images/<folder>/0042.png <label>``) and ``label_list.txt``. Split: ``val_ratio`` of each class for
validation, chosen by a NumPy ``RandomState(seed)`` permutation per class, the rest for training.
The set is built in a temporary folder and renamed, so a killed first run leaves nothing half-written;
a ``.complete`` marker makes later calls reuse it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from ppcls.utils.errors import ConfigError, PathError

logger = logging.getLogger(__name__)

MARKER = ".complete"


def write_class_set(dataset_dir: str, load: Callable[[], tuple[np.ndarray, np.ndarray]], folders: Sequence[str],
                    names: Sequence[str], val_ratio: float, seed: int, what: str) -> str:
    """Write the images ``load()`` returns (uint8 N x H x W, integer labels) to ``dataset_dir`` once."""
    dataset_dir = os.path.abspath(dataset_dir)
    if os.path.isfile(os.path.join(dataset_dir, MARKER)):
        logger.info("using the %s data set in %s", what, dataset_dir)
        return dataset_dir
    if not 0.0 < val_ratio < 1.0:
        raise ConfigError(f"DataLoader.prepare.val_ratio: expected a value in (0, 1), got {val_ratio}")
    images, targets = load()
    parent = os.path.dirname(dataset_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{what}.", dir=parent)
    try:
        rng = np.random.RandomState(seed)
        train_lines: list[str] = []
        val_lines: list[str] = []
        for cls, folder in enumerate(folders):
            idx = np.flatnonzero(targets == cls)
            os.makedirs(os.path.join(tmp, "images", folder), exist_ok=True)
            perm = rng.permutation(idx)
            n_val = int(round(len(idx) * val_ratio))
            val_set = set(perm[:n_val].tolist())
            for i in idx:
                rel = f"images/{folder}/{i:04d}.png"
                if not cv2.imwrite(os.path.join(tmp, rel), images[i]):
                    raise PathError(f"{os.path.join(tmp, rel)}: could not write the image (is the disk full or "
                                    "the folder read-only?)")
                (val_lines if i in val_set else train_lines).append(f"{rel} {cls}\n")
        for name, lines in (("train_list.txt", train_lines), ("val_list.txt", val_lines)):
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.writelines(lines)
        with open(os.path.join(tmp, "label_list.txt"), "w", encoding="utf-8") as f:
            f.writelines(f"{i} {n}\n" for i, n in enumerate(names))
        with open(os.path.join(tmp, MARKER), "w", encoding="utf-8") as f:
            f.write(f"seed={seed} val_ratio={val_ratio}\n")
        if os.path.exists(dataset_dir):
            shutil.rmtree(dataset_dir)  # an incomplete earlier attempt (no marker)
        os.replace(tmp, dataset_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info("wrote the %s data set to %s: %d train, %d val images", what, dataset_dir, len(train_lines),
                len(val_lines))
    return dataset_dir
