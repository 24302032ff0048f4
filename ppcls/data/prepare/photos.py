"""Class folders of real photos: crops of scikit-image's bundled pictures, one class per picture.

For benchmarks (``tools/benchmark_train.py --make_data``) and tests, where a folder of a user's
own images is needed and nothing may be downloaded.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from ppcls.utils.errors import ConfigError
from ppcls.utils.io import atomic_write_text

PHOTOS = {"astronaut": "astronaut", "cat": "chelsea", "coffee": "coffee"}  # class folder -> skimage.data name


def photo_class_folders(root: str, per_class: int = 8, val_per_class: int = 2, size: tuple[int, int] = (48, 48),
                        seed: int = 0, split: bool = True, ext: str = ".png") -> list[str]:
    """Write ``root/train/<class>/`` and ``root/val/<class>/`` images (``root/<class>/`` when not ``split``):
    random crops (half the picture's side and up) of each photo resized to ``size`` (width, height).
    Returns the class names."""
    try:
        from skimage import data
    except ImportError:
        raise ConfigError("the photo set is cut from scikit-image's pictures: pip install scikit-image") from None
    rng = np.random.default_rng(seed)
    for name, photo in PHOTOS.items():
        img = cv2.cvtColor(getattr(data, photo)(), cv2.COLOR_RGB2BGR)
        h, w = img.shape[:2]
        for i in range(per_class + val_per_class):
            side = int(rng.integers(min(h, w) // 2, min(h, w)))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = cv2.resize(img[y:y + side, x:x + side], size, interpolation=cv2.INTER_AREA)
            sub = ("val" if i >= per_class else "train") if split else ""
            folder = os.path.join(root, sub, name)
            os.makedirs(folder, exist_ok=True)
            cv2.imwrite(os.path.join(folder, f"{i:03d}{ext}"), crop)
    return sorted(PHOTOS)


def write_photo_set(root: str, count: int = 245, size: tuple[int, int] = (500, 375), val_count: int = 153) -> None:
    """``count`` JPEG photos in ``root/<class>/`` listed in ``train_list.txt`` and ``val_count`` more (other crops)
    in ``val_list.txt``, with ``label_list.txt``: the size of the ants/bees set (245 + 153) at its typical
    resolution."""
    per_class = -(-count // len(PHOTOS))
    val_per_class = -(-val_count // len(PHOTOS))
    names = photo_class_folders(root, per_class=per_class, val_per_class=val_per_class, size=size, split=False,
                                ext=".jpg")
    for list_name, first, number, total in (("train_list.txt", 0, per_class, count),
                                            ("val_list.txt", per_class, val_per_class, val_count)):
        lines = [f"{name}/{i:03d}.jpg {label}" for i in range(first, first + number)
                 for label, name in enumerate(names)][:total]
        atomic_write_text(os.path.join(root, list_name), "\n".join(sorted(lines)) + "\n")
    atomic_write_text(os.path.join(root, "label_list.txt"), "".join(f"{i} {n}\n" for i, n in enumerate(names)))
