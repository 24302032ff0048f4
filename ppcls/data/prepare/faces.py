"""Faces / non-faces: the 200 real 25x25 grayscale photos scikit-image ships (``skimage.data.lfw_subset()``).

The first 100 are faces cropped from LFW, the other 100 background patches of the same photos.
``images/face/<index>.png`` and ``images/not_face/<index>.png``; a fixed split of 20 % per class for
validation (seed 0 by default: 160 train, 40 val); the lists: :mod:`ppcls.data.prepare.class_set`.
"""

from __future__ import annotations

import numpy as np

from .class_set import write_class_set

CLASSES = ("face", "not_face")


def _load_faces() -> tuple[np.ndarray, np.ndarray]:
    from skimage.data import lfw_subset  # optional: only this data set needs scikit-image

    images = np.clip(np.asarray(lfw_subset(), dtype=np.float64) * 255.0, 0, 255).round().astype(np.uint8)
    return images, np.repeat(np.arange(len(CLASSES)), len(images) // len(CLASSES))


def prepare_faces(dataset_dir: str = "./dataset/faces/", val_ratio: float = 0.2, seed: int = 0) -> str:
    """Write the faces / non-faces data set to ``dataset_dir`` once; later calls reuse it."""
    return write_class_set(dataset_dir, _load_faces, CLASSES, CLASSES, val_ratio, seed, "faces")
