"""Datasets: PaddleClas file lists (``path label`` lines) and class-folder trees."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deploy.python.files import IMAGE_EXTENSIONS
from ppcls.registry import DATASETS
from ppcls.utils.errors import DataError, MissingFileError  # noqa: F401  (DataError: re-exported)

from .data_dir import class_folder_names
from .label_list import check_label_list, read_label_list
from .transforms import build_transforms
from .transforms.ops import DecodeError, NormalizeImage

logger = logging.getLogger(__name__)

MAX_REPLACEMENT_TRIES = 10
SHOWN_LEFT_OUT = 5  # left-out files named in the warning; the rest are counted


def warn_left_out(left_out: Sequence[str], where: str) -> None:
    """One warning naming the files under ``where`` that are not read (a count and a few names, bounded).

    ``left_out`` holds relative paths; a sub-folder that is not searched ends with ``/``.
    """
    if not left_out:
        return
    exts: dict[str, int] = {}
    for path in left_out:
        ext = "sub-folder" if path.endswith("/") else (os.path.splitext(path)[1].lower() or "no extension")
        exts[ext] = exts.get(ext, 0) + 1
    kinds = ", ".join(f"{e}: {n}" for e, n in sorted(exts.items(), key=lambda kv: (-kv[1], kv[0]))[:8])
    shown = ", ".join(left_out[:SHOWN_LEFT_OUT]) + (
        f" and {len(left_out) - SHOWN_LEFT_OUT} more" if len(left_out) > SHOWN_LEFT_OUT else "")
    logger.warning(
        "%s: left out %d file(s) that are not read: only %s are images here (left out: %s): %s",
        where, len(left_out), " ".join(IMAGE_EXTENSIONS), kinds, shown)


def parse_list_line(line: str, delimiter: str | None) -> tuple[str, str] | None:
    """Split a list line into (path, label); the label is the last field, the path the rest."""
    if delimiter is not None and delimiter != " ":
        parts = line.rsplit(delimiter, 1)
        if len(parts) != 2:
            return None
        return parts[0].strip(), parts[1].strip()
    parts = line.rsplit(None, 1)
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


def read_file_list(
    list_path: str, image_root: str, class_num: int | None, delimiter: str | None = None,
    check_files: bool = True,
) -> tuple[list[str], list[int]]:
    """Read and check a file list; any bad line stops with its file, number and content."""
    if not os.path.isfile(list_path):
        raise MissingFileError(f"data list not found: {list_path}")
    paths: list[str] = []
    labels: list[int] = []
    with open(list_path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            parsed = parse_list_line(line, delimiter)
            where = f"{list_path}:{lineno}: {line!r}"
            if parsed is None:
                raise DataError(f"{where}: expected 'relative/path label'")
            rel, label_text = parsed
            try:
                label = int(label_text)
            except ValueError:
                raise DataError(f"{where}: the label {label_text!r} is not an integer") from None
            if label < 0 or (class_num is not None and label >= class_num):
                raise DataError(
                    f"{where}: label {label} is outside [0, {class_num}) (Arch.class_num={class_num})"
                )
            path = os.path.join(image_root, rel)
            if check_files and not os.path.isfile(path):
                raise DataError(f"{where}: image file not found: {path}")
            paths.append(path)
            labels.append(label)
    if not paths:
        raise DataError(f"{list_path}: the data list is empty")
    return paths, labels


def scan_class_folders(image_root: str) -> tuple[list[str], list[int], list[str]]:
    """(paths, labels, class names) from ``image_root/<class>/<image>``, classes sorted."""
    if not os.path.isdir(image_root):
        raise MissingFileError(f"image_root is not a folder: {image_root}")
    classes = class_folder_names(image_root)  # hidden folders (.ipynb_checkpoints, ...) are not classes
    if not classes:
        raise DataError(f"{image_root}: no class sub-folders found (expected image_root/<class>/*.jpg)")
    paths: list[str] = []
    labels: list[int] = []
    left_out: list[str] = []
    for label, name in enumerate(classes):
        folder = os.path.join(image_root, name)
        entries = sorted(f for f in os.listdir(folder) if not f.startswith("."))
        files = [f for f in entries if f.lower().endswith(IMAGE_EXTENSIONS)
                 and os.path.isfile(os.path.join(folder, f))]
        # sub-folders are not searched (split_dataset.py does search them, and writes a list)
        kept = set(files)
        left_out += [f"{name}/{f}" + ("/" if os.path.isdir(os.path.join(folder, f)) else "")
                     for f in entries if f not in kept]
        if not files:
            raise DataError(f"class folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
        paths.extend(os.path.join(folder, f) for f in files)
        labels.extend([label] * len(files))
    warn_left_out(left_out, image_root)
    return paths, labels, classes


@DATASETS.register()
class ImageNetDataset:
    """Images and integer labels from a file list, or from class folders when no list is given.

    ``__getitem__`` returns ``(image, label, bad_index)``: ``bad_index`` is -1, or the index of an
    undecodable image that was replaced by another sample (counted per epoch by the trainer).
    """

    def __init__(
        self,
        image_root: str,
        cls_label_path: str | None = None,
        transform_ops: list | None = None,
        delimiter: str | None = None,
        relabel: bool = False,
        class_num: int | None = None,
        label_list_path: str | None = None,
    ) -> None:
        self.image_root = image_root
        self.class_names: list[str] | None = None
        self._undecodable_seen = 0  # per process: see _warn_undecodable
        if cls_label_path:
            self.paths, self.labels = read_file_list(cls_label_path, image_root, None if relabel else class_num, delimiter)
            if relabel:
                mapping = {old: new for new, old in enumerate(sorted(set(self.labels)))}
                self.labels = [mapping[x] for x in self.labels]
            source = cls_label_path
        else:
            self.paths, self.labels, self.class_names = scan_class_folders(image_root)
            if class_num is not None and len(self.class_names) > class_num:
                raise DataError(
                    f"{image_root}: {len(self.class_names)} class folders but Arch.class_num={class_num}"
                )
            source = image_root
        if label_list_path:
            names = read_label_list(label_list_path, key="label_list_path")
            if class_num is not None:
                check_label_list(names, int(class_num), label_list_path, "label_list_path", "Arch.class_num")
            self.class_names = [names.get(i, str(i)) for i in range(max(names, default=-1) + 1)]
        self.source = source
        self.transform: Callable[[Any], Any] = build_transforms(transform_ops)
        _fuse_final_transpose(self.transform.ops)
        self.chw_output = self.transform.ends_chw("DataLoader dataset transform_ops")

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, idx: int) -> np.ndarray:
        with open(self.paths[idx], "rb") as f:
            data = f.read()
        return self.transform.to_model_layout(self.transform(data), self.chw_output)

    def __getitem__(self, idx: int) -> tuple[np.ndarray, np.int64, np.int64]:
        bad = -1
        current = idx
        for _ in range(MAX_REPLACEMENT_TRIES):
            try:
                img = self.load(current)
                return img, np.int64(self.labels[current]), np.int64(bad)
            except (DecodeError, OSError) as e:
                if bad < 0:
                    bad = idx
                self._warn_undecodable(self.paths[current], e)
                current = random.randrange(len(self.paths))
        raise DataError(f"{MAX_REPLACEMENT_TRIES} images in a row could not be decoded, last {self.paths[current]}")

    # undecodable images named per process; later ones are only counted (by the trainer, via bad_index)
    shown_undecodable: int = 5

    def _warn_undecodable(self, path: str, error: Exception) -> None:
        """Name the first ``shown_undecodable`` undecodable images, then say once that the rest go unnamed.

        The count lives on this instance, so it is per process: the main process and each DataLoader
        worker (a forked copy of the dataset) name up to ``shown_undecodable`` files, and workers that
        are started again each epoch (``persistent_workers`` off) start counting again. The trainer
        still counts every substituted sample per epoch and stops past ``Global.max_bad_image_ratio``.
        """
        self._undecodable_seen += 1
        seen = self._undecodable_seen
        if seen <= self.shown_undecodable:
            logger.warning("undecodable image %s (%s); using another sample", path, error)
        elif seen == self.shown_undecodable + 1:
            logger.warning("more than %d undecodable images in process %d: further ones are replaced as well and "
                           "counted in the epoch's or evaluation's summary, but not named here",
                           self.shown_undecodable, os.getpid())


def _fuse_final_transpose(ops: Sequence[Any]) -> None:
    """A pipeline ending in an HWC ``NormalizeImage`` gets it switched to ``order: chw``: the same values,
    normalised and transposed in one step instead of a transpose after it (the layout rule is
    :func:`deploy.python.preprocess.ends_chw`; PaddleClas's recipes end that way)."""
    if ops and isinstance(ops[-1], NormalizeImage) and ops[-1].order != "chw":
        ops[-1].order = "chw"
