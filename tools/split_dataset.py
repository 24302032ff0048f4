"""Split a folder of class sub-folders into train/val/test lists, stratified per class.

    python tools/split_dataset.py --dataset_dir D --val_value 0.2 --test_value 0.1 [--seed 0]

writes, atomically, in D (as PaddleX's ``--split_dataset --format ImageNet`` does):
``train_list.txt``, ``val_list.txt`` (when val_value > 0), ``test_list.txt`` (when
test_value > 0) with lines ``relative/path label``, and ``label_list.txt`` with lines
``id name`` (class folders in sorted order get ids 0, 1, ...).

Files in the class folders whose extension is not read (``.gif``, ``.txt``, ...) are left out
with a warning that counts them and names a few.

Rule per class of n images: val gets round(n * val_value) images and test round(n * test_value),
each at least one when its ratio is above zero; train gets the rest and must keep at least
one, so a class needs at least 1 + (val_value > 0) + (test_value > 0) images. The images of a
class are shuffled with ``--seed`` first, so a seed always gives the same lists.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.data.dataset import IMAGE_EXTENSIONS, warn_left_out  # noqa: E402
from ppcls.utils.errors import DataError  # noqa: E402
from ppcls.utils.io import atomic_write_text  # noqa: E402

logger = logging.getLogger("tools.split_dataset")

SPLITS = ("train", "val", "test")


class SplitError(DataError):
    """The folder or the ratios cannot give a split; the message says why."""


def _check_name(rel: str, root: str) -> None:
    if any(c in rel for c in "\n\r") or rel != rel.strip():
        raise SplitError(
            f"{os.path.join(root, rel)!r}: file and folder names with line breaks or leading/trailing "
            "spaces cannot be written to a 'path label' list; rename them"
        )


def list_class_images(
    dataset_dir: str, left_out: list[str] | None = None
) -> tuple[list[str], dict[str, list[str]]]:
    """(sorted class names, {class: sorted image paths relative to ``dataset_dir``, '/'-separated}).

    Files inside the class folders whose extension is not an image type read here are appended to
    ``left_out`` (relative paths), when given; hidden files and folders are skipped silently.
    """
    if not os.path.isdir(dataset_dir):
        raise SplitError(f"--dataset_dir {dataset_dir!r} is not a folder")
    classes = sorted(
        d
        for d in os.listdir(dataset_dir)
        if not d.startswith(".") and os.path.isdir(os.path.join(dataset_dir, d))
    )
    if not classes:
        raise SplitError(
            f"{dataset_dir}: no class sub-folders found; expected {dataset_dir}/<class name>/<image>"
        )
    images: dict[str, list[str]] = {}
    for name in classes:
        _check_name(name, dataset_dir)
        folder = os.path.join(dataset_dir, name)
        found = []
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for f in sorted(files):
                if f.startswith("."):
                    continue
                rel = os.path.relpath(os.path.join(root, f), dataset_dir).replace(os.sep, "/")
                if not f.lower().endswith(IMAGE_EXTENSIONS):
                    if left_out is not None:
                        left_out.append(rel)
                    continue
                _check_name(rel, dataset_dir)
                found.append(rel)
        if not found:
            raise SplitError(
                f"class folder {folder} holds no images (looked for {', '.join(IMAGE_EXTENSIONS)})"
            )
        images[name] = sorted(found)
    return classes, images


def check_ratios(val_value: float, test_value: float) -> None:
    for flag, value in (("--val_value", val_value), ("--test_value", test_value)):
        if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
            raise SplitError(f"{flag}: expected a fraction in [0, 1), got {value!r}")
    if val_value + test_value >= 1.0:
        raise SplitError(
            f"--val_value {val_value} + --test_value {test_value} = {val_value + test_value:g} leaves no "
            "images for training; the two must sum to less than 1"
        )


def split_counts(n: int, val_value: float, test_value: float) -> tuple[int, int, int]:
    """(train, val, test) sizes for a class of ``n`` images; see the module docstring for the rule."""

    def part(ratio: float) -> int:
        return max(1, int(math.floor(n * ratio + 0.5))) if ratio > 0 else 0

    n_val, n_test = part(val_value), part(test_value)
    return n - n_val - n_test, n_val, n_test


def split_dataset(
    dataset_dir: str, val_value: float, test_value: float = 0.0, seed: int = 0
) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """(class names, {split: [(relative path, label), ...]}) for train/val/test, without writing."""
    check_ratios(val_value, test_value)
    left_out: list[str] = []
    classes, images = list_class_images(dataset_dir, left_out)
    warn_left_out(left_out, dataset_dir)  # e.g. hymenoptera's imageNotFound.gif: said, not dropped silently
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, int]]] = {s: [] for s in SPLITS}
    minimum = 1 + (val_value > 0) + (test_value > 0)
    for label, name in enumerate(classes):
        files = list(images[name])
        n_train, n_val, n_test = split_counts(len(files), val_value, test_value)
        if n_train < 1:
            raise SplitError(
                f"class {name!r} has {len(files)} image(s): with --val_value {val_value} and "
                f"--test_value {test_value} it would give {n_val} to val, {n_test} to test and none to "
                f"train; every class needs at least {minimum} images (one per split), more when "
                "the ratios are large"
            )
        rng.shuffle(files)
        parts = {
            "val": files[:n_val],
            "test": files[n_val : n_val + n_test],
            "train": files[n_val + n_test :],
        }
        for split, chosen in parts.items():
            out[split].extend((rel, label) for rel in sorted(chosen))
    return classes, out


def write_split(dataset_dir: str, val_value: float, test_value: float = 0.0, seed: int = 0) -> dict[str, int]:
    """Split and write the list files in ``dataset_dir``; returns {file name: line count}."""
    classes, result = split_dataset(dataset_dir, val_value, test_value, seed)
    written: dict[str, int] = {}
    ratios = {"train": 1.0, "val": val_value, "test": test_value}
    for split in SPLITS:
        if ratios[split] <= 0:
            continue
        name = f"{split}_list.txt"
        atomic_write_text(
            os.path.join(dataset_dir, name), "".join(f"{p} {lab}\n" for p, lab in result[split])
        )
        written[name] = len(result[split])
    atomic_write_text(
        os.path.join(dataset_dir, "label_list.txt"), "".join(f"{i} {n}\n" for i, n in enumerate(classes))
    )
    written["label_list.txt"] = len(classes)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset_dir", required=True, help="folder holding one sub-folder of images per class")
    p.add_argument("--val_value", type=float, required=True, help="fraction of each class for val_list.txt")
    p.add_argument("--test_value", type=float, default=0.0, help="fraction of each class for test_list.txt")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    args = p.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        written = write_split(args.dataset_dir, args.val_value, args.test_value, args.seed)
    except SplitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for name, count in written.items():
        unit = "classes" if name == "label_list.txt" else "images"
        print(f"{os.path.join(args.dataset_dir, name)}: {count} {unit}")
    for split, ratio in (("val", args.val_value), ("test", args.test_value)):
        stale = os.path.join(args.dataset_dir, f"{split}_list.txt")
        if ratio <= 0 and os.path.exists(stale):
            print(f"note: {stale} is from an earlier split and was left unchanged (--{split}_value is 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
