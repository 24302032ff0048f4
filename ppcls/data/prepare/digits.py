"""The quick-start data set: scikit-learn's 1,797 handwritten digits written as PNG files.

Layout under ``dataset_dir``: ``images/<class>/<index>.png`` (8x8 grayscale, values 0–16
stretched to 0–255), ``train_list.txt`` and ``val_list.txt`` (``images/3/0042.png 3``) and
``label_list.txt``. Split: 20 % of each class for validation, chosen by a NumPy
``RandomState(seed)`` permutation per class (seed 0 by default), the rest for training.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import cv2
import numpy as np

from ppcls.utils.errors import ConfigError, PathError

logger = logging.getLogger(__name__)

MARKER = ".complete"


def prepare_digits(dataset_dir: str = "./dataset/digits/", val_ratio: float = 0.2, seed: int = 0) -> str:
    """Write the digits data set to ``dataset_dir`` once; later calls reuse it."""
    dataset_dir = os.path.abspath(dataset_dir)
    if os.path.isfile(os.path.join(dataset_dir, MARKER)):
        logger.info("using the digits data set in %s", dataset_dir)
        return dataset_dir
    if not 0.0 < val_ratio < 1.0:
        raise ConfigError(f"DataLoader.prepare.val_ratio: expected a value in (0, 1), got {val_ratio}")
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.clip(digits.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    targets = digits.target.astype(int)
    parent = os.path.dirname(dataset_dir)
    os.makedirs(parent, exist_ok=True)
    # build in a temporary folder and rename: a killed first run leaves nothing half-written
    tmp = tempfile.mkdtemp(prefix=".digits.", dir=parent)
    try:
        rng = np.random.RandomState(seed)
        train_lines: list[str] = []
        val_lines: list[str] = []
        for cls in range(10):
            idx = np.flatnonzero(targets == cls)
            os.makedirs(os.path.join(tmp, "images", str(cls)), exist_ok=True)
            perm = rng.permutation(idx)
            n_val = int(round(len(idx) * val_ratio))
            val_set = set(perm[:n_val].tolist())
            for i in idx:
                rel = f"images/{cls}/{i:04d}.png"
                if not cv2.imwrite(os.path.join(tmp, rel), images[i]):
                    raise PathError(f"{os.path.join(tmp, rel)}: could not write the image (is the disk full or the folder read-only?)")
                (val_lines if i in val_set else train_lines).append(f"{rel} {cls}\n")
        for name, lines in (("train_list.txt", train_lines), ("val_list.txt", val_lines)):
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
                f.writelines(lines)
        with open(os.path.join(tmp, "label_list.txt"), "w", encoding="utf-8") as f:
            f.writelines(f"{i} digit_{i}\n" for i in range(10))
        with open(os.path.join(tmp, MARKER), "w", encoding="utf-8") as f:
            f.write(f"seed={seed} val_ratio={val_ratio}\n")
        if os.path.exists(dataset_dir):
            shutil.rmtree(dataset_dir)  # an incomplete earlier attempt (no marker)
        os.replace(tmp, dataset_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    logger.info(
        "wrote the digits data set to %s: %d train, %d val images",
        dataset_dir, len(train_lines), len(val_lines),
    )
    return dataset_dir
