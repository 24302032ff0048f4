"""Build the TIPC data sets locally, without network access (called by test_tipc/prepare.sh).

    python test_tipc/make_data.py lite  --out test_tipc/data/lite_data
    python test_tipc/make_data.py whole --out test_tipc/data/whole_data
    python test_tipc/make_data.py user  --out test_tipc/data/user_data --source /path/to/images

Every data set has the same layout (what the TIPC configs point to):

    <out>/train_list.txt, val_list.txt   "relative/path label" lines
    <out>/label_list.txt                 "id name" lines
    <out>/infer/                         a few images for tools/infer.py and the deploy predictor

* ``lite``: 6 classes of real images, small: digits 0, 1 and 7 from scikit-learn's handwritten
  digits (8x8, upscaled to 32x32, PNG) and random crops of three scikit-image photos (cat,
  coffee, rocket; 40-56 px, JPEG); 8 train + 2 val images per class; ``infer/`` has one val
  image per class.
* ``whole``: all 1,797 digits (10 classes, 32x32 PNG) and 120 crops (64-256 px, JPEG) of each of
  four photos (cat, coffee, rocket, astronaut), 80/20 train/val per class; ``infer/`` has two
  val images per class.
* ``user``: a folder of the user's. Either it already holds ``train_list.txt`` and
  ``val_list.txt`` (PaddleClas layout; ``label_list.txt`` is used when present), or it is a
  folder of class sub-folders, split 80/20 per class with a fixed seed. The folder is only read:
  ``<out>/images`` is a symbolic link to it and the lists are written in ``<out>``.

Images come from fixed seeds, so a data set is the same on every machine. A finished data set is
marked with ``.complete`` (holding its parameters) and reused; it is built in a temporary folder
and renamed, so an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

import cv2
import numpy as np

MARKER = ".complete"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
SEED = 1234


class DataError(ValueError):
    """The source folder cannot give a data set; the message says why."""


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = np.clip(d.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    return images, d.target.astype(int)


def _photo(name: str) -> np.ndarray:
    import skimage.data

    img = getattr(skimage.data, name)()
    return cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)


def _crops(photo: np.ndarray, n: int, lo: int, hi: int, rng: np.random.RandomState) -> list[np.ndarray]:
    """``n`` random square-ish crops of ``photo`` resized to ``lo``..``hi`` px."""
    h, w = photo.shape[:2]
    out = []
    for _ in range(n):
        side = int(rng.randint(min(h, w) // 3, min(h, w) + 1))
        y = int(rng.randint(0, h - side + 1))
        x = int(rng.randint(0, w - side + 1))
        ow = int(rng.randint(lo, hi + 1))
        oh = int(rng.randint(lo, hi + 1))
        out.append(cv2.resize(photo[y : y + side, x : x + side], (ow, oh), interpolation=cv2.INTER_AREA))
    return out


def _write(path: str, img: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, img):
        raise OSError(f"could not write {path}")


def _split(n: int, val_ratio: float, rng: np.random.RandomState) -> tuple[list[int], list[int]]:
    """(train indices, val indices) of ``n`` items; at least one of each when n >= 2."""
    perm = rng.permutation(n).tolist()
    n_val = min(max(1, int(round(n * val_ratio))), n - 1) if n >= 2 else 0
    return sorted(perm[n_val:]), sorted(perm[:n_val])


def _build_synthetic(tmp: str, kind: str) -> None:
    rng = np.random.RandomState(SEED)
    images, targets = _digits()
    if kind == "lite":
        digit_classes, per_class, n_val, photos, sizes, infer_per_class = [0, 1, 7], 10, 2, [
            ("cat", "chelsea"), ("coffee", "coffee"), ("rocket", "rocket")], (40, 56), 1
    else:
        digit_classes, per_class, n_val, photos, sizes, infer_per_class = list(range(10)), None, None, [
            ("cat", "chelsea"), ("coffee", "coffee"), ("rocket", "rocket"), ("astronaut", "astronaut")], (64, 256), 2
    names: list[str] = []
    train: list[str] = []
    val: list[str] = []
    infer_src: list[str] = []

    def add_class(label: int, files: list[str]) -> None:
        if n_val is None:
            tr, va = _split(len(files), 0.2, rng)
        else:
            tr, va = list(range(len(files) - n_val)), list(range(len(files) - n_val, len(files)))
        train.extend(f"{files[i]} {label}\n" for i in tr)
        val.extend(f"{files[i]} {label}\n" for i in va)
        infer_src.extend(files[i] for i in va[:infer_per_class])

    for d in digit_classes:
        idx = np.flatnonzero(targets == d)
        if per_class is not None:
            idx = idx[:per_class]
        label = len(names)
        names.append(f"digit_{d}")
        files = []
        for i in idx:
            rel = f"images/digit_{d}/{int(i):04d}.png"
            _write(os.path.join(tmp, rel), cv2.resize(images[i], (32, 32), interpolation=cv2.INTER_LINEAR))
            files.append(rel)
        add_class(label, files)
    for cls, photo_name in photos:
        label = len(names)
        names.append(cls)
        files = []
        for j, crop in enumerate(_crops(_photo(photo_name), per_class or 120, sizes[0], sizes[1], rng)):
            rel = f"images/{cls}/{j:04d}.jpg"
            _write(os.path.join(tmp, rel), crop)
            files.append(rel)
        add_class(label, files)
    _write_lists(tmp, train, val, names)
    for k, rel in enumerate(infer_src):
        shutil.copyfile(os.path.join(tmp, rel), os.path.join(tmp, "infer", f"{k:03d}_{os.path.basename(rel)}"))


def _write_lists(folder: str, train: list[str], val: list[str], names: list[str]) -> None:
    os.makedirs(os.path.join(folder, "infer"), exist_ok=True)
    for name, lines in (("train_list.txt", train), ("val_list.txt", val)):
        with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
            f.writelines(lines)
    with open(os.path.join(folder, "label_list.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{i} {n}\n" for i, n in enumerate(names))


def _read_list(path: str) -> list[tuple[str, int]]:
    items = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise DataError(f"{path}:{lineno}: expected 'relative/path label', got {line.strip()!r}")
            items.append((parts[0], int(parts[1])))
    if not items:
        raise DataError(f"{path}: the list is empty")
    return items


def _build_user(tmp: str, source: str, infer_per_class: int = 2) -> None:
    source = os.path.abspath(source)
    if not os.path.isdir(source):
        raise DataError(f"TIPC_DATA_DIR={source!r} is not a folder")
    os.symlink(source, os.path.join(tmp, "images"))
    train_list, val_list = os.path.join(source, "train_list.txt"), os.path.join(source, "val_list.txt")
    if os.path.isfile(train_list) and os.path.isfile(val_list):
        train, val = _read_list(train_list), _read_list(val_list)
        labels = sorted({lab for _, lab in train + val})
        names = {i: str(i) for i in range(labels[-1] + 1)}
        label_file = os.path.join(source, "label_list.txt")
        if os.path.isfile(label_file):
            with open(label_file, encoding="utf-8") as f:
                for line in f:
                    parts = line.strip().split(maxsplit=1)
                    if parts and parts[0].isdigit():
                        names[int(parts[0])] = parts[1] if len(parts) > 1 else parts[0]
        name_list = [names[i] for i in range(max(names) + 1)]
    else:
        classes = sorted(d for d in os.listdir(source)
                         if not d.startswith(".") and os.path.isdir(os.path.join(source, d)))
        if not classes:
            raise DataError(
                f"TIPC_DATA_DIR={source}: found neither train_list.txt + val_list.txt nor class "
                f"sub-folders; expected {source}/<class name>/<image files>"
            )
        rng = np.random.RandomState(SEED)
        train, val = [], []
        for label, cls in enumerate(classes):
            files = []
            for root, _, fnames in os.walk(os.path.join(source, cls)):
                files.extend(os.path.relpath(os.path.join(root, f), source).replace(os.sep, "/")
                             for f in fnames if f.lower().endswith(IMAGE_EXTENSIONS))
            files.sort()
            if len(files) < 2:
                raise DataError(f"TIPC_DATA_DIR={source}: class folder {cls!r} needs at least 2 images "
                                f"(one for training, one for validation), found {len(files)}")
            tr, va = _split(len(files), 0.2, rng)
            train.extend((files[i], label) for i in tr)
            val.extend((files[i], label) for i in va)
        name_list = classes
    per_label: dict[int, int] = {}
    infer = []
    for rel, lab in val:
        if per_label.get(lab, 0) < infer_per_class:
            per_label[lab] = per_label.get(lab, 0) + 1
            infer.append(rel)
    _write_lists(tmp, [f"images/{p} {lab}\n" for p, lab in train], [f"images/{p} {lab}\n" for p, lab in val],
                 name_list)
    for k, rel in enumerate(infer):
        src = os.path.join(source, rel)
        if not os.path.isfile(src):
            raise DataError(f"{val_list if os.path.isfile(val_list) else source}: listed image not found: {src}")
        os.symlink(src, os.path.join(tmp, "infer", f"{k:03d}_{os.path.basename(rel)}"))


def build(kind: str, out: str, source: str | None = None) -> str:
    """Build data set ``kind`` in ``out`` unless an identical one is already there."""
    out = os.path.abspath(out)
    params = {"kind": kind, "source": os.path.abspath(source) if source else None, "seed": SEED, "version": 1}
    marker = os.path.join(out, MARKER)
    if os.path.isfile(marker):
        with open(marker, encoding="utf-8") as f:
            try:
                if json.load(f) == params:
                    print(f"data: reusing {out}")
                    return out
            except json.JSONDecodeError:
                pass
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", dir=parent)
    try:
        if kind == "user":
            if not source:
                raise DataError("make_data.py user: --source is required")
            _build_user(tmp, source)
        else:
            _build_synthetic(tmp, kind)
        with open(os.path.join(tmp, MARKER), "w", encoding="utf-8") as f:
            json.dump(params, f)
        if os.path.lexists(out):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old.", dir=parent)
            os.replace(out, os.path.join(old, "d"))
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, out)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(out, "train_list.txt"), encoding="utf-8") as f:
        n_train = sum(1 for _ in f)
    with open(os.path.join(out, "label_list.txt"), encoding="utf-8") as f:
        n_cls = sum(1 for _ in f)
    print(f"data: wrote {out} ({n_cls} classes, {n_train} training images)")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["lite", "whole", "user"])
    p.add_argument("--out", required=True, help="the data set folder to write")
    p.add_argument("--source", help="kind 'user': the user's folder (class sub-folders or PaddleClas lists)")
    args = p.parse_args(argv)
    try:
        build(args.kind, args.out, args.source)
    except (DataError, OSError) as e:
        print(f"make_data.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
