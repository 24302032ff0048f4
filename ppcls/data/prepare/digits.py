"""The quick-start data set: scikit-learn's 1,797 handwritten digits written as PNG files.

``images/<digit>/<index>.png`` (8x8 grayscale, values 0–16 stretched to 0–255), 20 % of each class
for validation (seed 0 by default); the lists and their layout: :mod:`ppcls.data.prepare.class_set`.
"""

from __future__ import annotations

import numpy as np

from .class_set import write_class_set


def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # optional: only this data set needs scikit-learn

    digits = load_digits()
    images = np.clip(digits.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    return images, digits.target.astype(int)


def prepare_digits(dataset_dir: str = "./dataset/digits/", val_ratio: float = 0.2, seed: int = 0) -> str:
    """Write the digits data set to ``dataset_dir`` once; later calls reuse it."""
    return write_class_set(dataset_dir, _load_digits, [str(c) for c in range(10)],
                           [f"digit_{c}" for c in range(10)], val_ratio, seed, "digits")
