"""``Global.data_dir``: point any recipe at a folder of your own images, and the classes a data set names.

A data folder is read in one of two layouts:

* ``DIR/train/<class>/<image>`` and ``DIR/val/<class>/<image>``: class folders, the class names are
  the folder names in sorted order (the same ids in both splits);
* ``DIR/train_list.txt`` and ``DIR/val_list.txt`` (``relative/path label`` lines, paths relative to
  ``DIR``) with ``DIR/label_list.txt`` (``id name`` lines), as ``tools/split_dataset.py`` writes them;
  PaddleX's names for the same files (``train.txt``, ``val.txt``, ``label.txt``) are read too.

:func:`apply_data_dir` writes the folder's paths into ``DataLoader.Train``/``Eval`` (and
``Infer.infer_imgs`` when the recipe's points nowhere); :func:`dataset_class_names` reads the
class names any ``ImageNetDataset`` section defines (class folders, ``label_list_path``, or a
``label_list.txt`` beside its list).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from ppcls.utils.errors import ConfigError, DataError, MissingFileError

from .label_list import check_label_list, read_label_list

logger = logging.getLogger(__name__)

TRAIN_LIST, VAL_LIST, LABEL_LIST = "train_list.txt", "val_list.txt", "label_list.txt"
# (train list, val list, label list) file names: split_dataset.py's (PaddleClas's), then PaddleX's
LIST_NAMES = ((TRAIN_LIST, VAL_LIST, LABEL_LIST), ("train.txt", "val.txt", "label.txt"))
SPLIT_FOLDERS = {"Train": "train", "Eval": "val"}


@dataclass
class DataFolder:
    """A user's data folder: where each split's images are, and the class names."""

    root: str
    layout: str  # "folders" or "lists"
    class_names: list[str] | None
    lists: tuple[str, str, str] = LIST_NAMES[0]  # file names of the lists layout

    @property
    def name(self) -> str:
        """The folder's base name: names the run folder (``output/<name>/<model>``)."""
        return os.path.basename(os.path.normpath(self.root)) or "data"

    def split(self, mode: str) -> dict[str, str | None]:
        """``image_root``, ``cls_label_path`` and ``label_list_path`` of ``mode`` (Train or Eval)."""
        if self.layout == "folders":
            return {"image_root": os.path.join(self.root, SPLIT_FOLDERS[mode]), "cls_label_path": None,
                    "label_list_path": None}
        label_list = os.path.join(self.root, self.lists[2])
        return {"image_root": self.root, "cls_label_path": os.path.join(self.root, self.lists[mode == "Eval"]),
                "label_list_path": label_list if os.path.isfile(label_list) else None}

    @property
    def eval_images(self) -> str:
        """Images to predict when the recipe names none that exist: the validation split."""
        return os.path.join(self.root, "val") if self.layout == "folders" else self.root


def class_folder_names(image_root: str) -> list[str]:
    """Sorted names of the (non-hidden) sub-folders of ``image_root``: the classes of a class-folder tree."""
    return sorted(d for d in os.listdir(image_root)
                  if not d.startswith(".") and os.path.isdir(os.path.join(image_root, d)))


def read_data_dir(path: str) -> DataFolder:
    """Recognise the layout of ``Global.data_dir``; a folder in neither layout says what is expected."""
    key = "Global.data_dir"
    if not os.path.isdir(path):
        raise MissingFileError(f"{key}: no such folder: {path}")
    train, val = os.path.join(path, "train"), os.path.join(path, "val")
    for lists in LIST_NAMES:
        train_list, val_list, label_name = lists
        if not os.path.isfile(os.path.join(path, train_list)):
            continue
        if not os.path.isfile(os.path.join(path, val_list)):
            raise DataError(f"{key}: {path} has {train_list} but no {val_list}: make both with "
                            f"python tools/split_dataset.py --dataset_dir {path} --val_value 0.2")
        label_list = os.path.join(path, label_name)
        names = _names_from_list(label_list) if os.path.isfile(label_list) else None
        if names is None:
            logger.warning("%s: %s has no %s, so classes are known by id only (split_dataset.py writes it)",
                           key, path, label_name)
        return DataFolder(path, "lists", names, lists)
    if os.path.isdir(train):
        if not os.path.isdir(val):
            raise DataError(f"{key}: {path} has train/ but no val/ folder; put a share of each class's images in "
                            f"val/<class>/, or split a folder of class folders with tools/split_dataset.py")
        names = class_folder_names(train)
        if not names:
            raise DataError(f"{key}: {train} has no class sub-folders (expected train/<class name>/<image>)")
        extra = sorted(set(class_folder_names(val)) - set(names))
        if extra:
            raise DataError(f"{key}: {val} has class folders that train/ lacks: {', '.join(extra[:5])}; both splits "
                            "need the same classes")
        return DataFolder(path, "folders", names)
    if class_folder_names(path):
        raise DataError(
            f"{key}: {path} holds class folders but no train/val split: run python tools/split_dataset.py "
            f"--dataset_dir {path} --val_value 0.2 (writes {TRAIN_LIST}, {VAL_LIST}, {LABEL_LIST} there), or "
            "arrange it as train/<class>/ and val/<class>/")
    raise DataError(f"{key}: {path} holds neither train/ and val/ class folders nor {TRAIN_LIST} and {VAL_LIST}")


def _names_from_list(path: str, key: str = "label list") -> list[str]:
    names = read_label_list(path, key=key)
    check_label_list(names, len(names), path, key, "its own line count")  # ids 0..n-1, each once
    return [names[i] for i in range(len(names))]


def apply_data_dir(cfg: MutableMapping, folder: DataFolder) -> None:
    """Point the recipe's data sections at ``folder`` (logged); ``DataLoader.prepare`` no longer applies."""
    dl = cfg.get("DataLoader")
    if not isinstance(dl, MutableMapping) or not isinstance(dl.get("Train"), MutableMapping):
        raise ConfigError("Global.data_dir: the config has no DataLoader.Train section to read the folder with")
    if dl.pop("prepare", None):
        logger.info("Global.data_dir is set: DataLoader.prepare (the recipe's own data set) is not run")
    for mode in ("Train", "Eval"):
        part = dl.get(mode)
        if not isinstance(part, MutableMapping):
            continue
        ds = part.setdefault("dataset", {})
        ds.update(folder.split(mode))
    infer = cfg.get("Infer")
    if isinstance(infer, MutableMapping):
        imgs = infer.get("infer_imgs")
        if not imgs or (isinstance(imgs, str) and not os.path.exists(imgs)):
            infer["infer_imgs"] = folder.eval_images
    logger.info("Global.data_dir: %s (%s), %s", folder.root,
                "train/ and val/ class folders" if folder.layout == "folders" else " and ".join(folder.lists[:2]),
                f"{len(folder.class_names)} classes" if folder.class_names else "classes by id")


def dataset_class_names(ds: MutableMapping, where: str) -> tuple[list[str] | None, str | None]:
    """(class names, where they come from) of an ``ImageNetDataset`` section, or (None, None).

    A list whose ``label_list_path`` is unset but has a ``label_list.txt`` beside it (as
    ``tools/split_dataset.py`` writes) gets that file as its ``label_list_path`` (logged).
    """
    if not isinstance(ds, Mapping):
        return None, None
    if ds.get("label_list_path"):
        path = str(ds["label_list_path"])
        return _names_from_list(path, f"{where}.label_list_path"), path
    list_path = ds.get("cls_label_path")
    root = ds.get("image_root")
    if not list_path:
        if root and os.path.isdir(str(root)):
            names = class_folder_names(str(root))
            return (names, f"the class folders of {root}") if names else (None, None)
        return None, None
    folder = os.path.dirname(str(list_path))
    beside = next((os.path.join(folder, lists[2]) for lists in LIST_NAMES
                   if os.path.isfile(os.path.join(folder, lists[2]))), "")
    if os.path.isfile(str(list_path)) and beside:
        ds["label_list_path"] = beside
        logger.info("%s: class names from %s beside %s", where, beside, list_path)
        return _names_from_list(beside, f"{where}.label_list_path"), beside
    return None, None


__all__ = ["DataFolder", "apply_data_dir", "class_folder_names", "dataset_class_names", "read_data_dir"]
