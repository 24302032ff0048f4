"""``Global.data_dir``: the two layouts, their class names, the class count they give, and the errors."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from ppcls.data.data_dir import apply_data_dir, dataset_class_names, read_data_dir
from ppcls.data.prepare.photos import photo_class_folders
from ppcls.engine.config import load_config
from ppcls.engine.runner import _agree_class_num, _data_classes, run_dir
from ppcls.utils.errors import ConfigError, DataError, MissingFileError
from tests.conftest import REPO

RECIPE = os.path.join(REPO, "configs", "ImageNet", "PPLCNet", "PPLCNet_x0_25.yaml")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """train/ and val/ class folders of crops of scikit-image's photos."""
    root = str(tmp_path_factory.mktemp("photos"))
    photo_class_folders(root, per_class=6, val_per_class=2)
    return root


def test_class_folders_layout_points_the_recipe_at_the_folder(photos):
    folder = read_data_dir(photos)
    assert folder.layout == "folders" and folder.class_names == ["astronaut", "cat", "coffee"]
    cfg = load_config(RECIPE, [f"Global.data_dir={photos}"])
    assert _data_classes(cfg, from_train_data=True) == ["astronaut", "cat", "coffee"]
    train = cfg["DataLoader"]["Train"]["dataset"]
    assert train["image_root"] == os.path.join(photos, "train") and train["cls_label_path"] is None
    assert cfg["DataLoader"]["Eval"]["dataset"]["image_root"] == os.path.join(photos, "val")
    assert cfg["Arch"]["class_num"] == 3
    assert cfg["Infer"]["infer_imgs"] == os.path.join(photos, "val")  # the recipe's ImageNet path does not exist
    assert run_dir(cfg) == os.path.join("./output/", os.path.basename(photos), "PPLCNet_x0_25")


def test_split_dataset_lists_layout_names_classes_from_label_list(tmp_path):
    root = str(tmp_path / "mine")
    photo_class_folders(root, per_class=6, val_per_class=0, split=False)
    done = subprocess.run([sys.executable, os.path.join(REPO, "tools", "split_dataset.py"), "--dataset_dir", root,
                           "--val_value", "0.3"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    folder = read_data_dir(root)
    assert folder.layout == "lists" and folder.class_names == ["astronaut", "cat", "coffee"]
    cfg = load_config(RECIPE, [f"Global.data_dir={root}"])
    _data_classes(cfg, from_train_data=True)
    ds = cfg["DataLoader"]["Eval"]["dataset"]
    assert ds["cls_label_path"] == os.path.join(root, "val_list.txt")
    assert ds["label_list_path"] == os.path.join(root, "label_list.txt")
    assert cfg["Infer"]["infer_imgs"] == root


def test_paddlex_list_names_are_read(tmp_path):
    root = tmp_path / "px"
    (root / "images").mkdir(parents=True)
    (root / "train.txt").write_text("images/a.jpg 0\n")
    (root / "val.txt").write_text("images/b.jpg 1\n")
    (root / "label.txt").write_text("0 daisy\n1 rose\n")
    folder = read_data_dir(str(root))
    assert folder.class_names == ["daisy", "rose"]
    assert folder.split("Eval")["cls_label_path"] == str(root / "val.txt")


def test_label_list_beside_a_list_names_the_classes(tmp_path):
    (tmp_path / "train_list.txt").write_text("a.jpg 0\n")
    (tmp_path / "label_list.txt").write_text("0 ant\n1 bee\n")
    ds = {"name": "ImageNetDataset", "image_root": str(tmp_path), "cls_label_path": str(tmp_path / "train_list.txt")}
    names, source = dataset_class_names(ds, "DataLoader.Train.dataset")
    assert names == ["ant", "bee"] and ds["label_list_path"] == source == str(tmp_path / "label_list.txt")


@pytest.mark.parametrize("make, expected", [
    (lambda p: None, "no such folder"),
    (lambda p: (p / "train" / "x").mkdir(parents=True), "has train/ but no val/"),
    (lambda p: (p / "cats").mkdir(parents=True), "tools/split_dataset.py --dataset_dir"),
    (lambda p: (p / "train_list.txt").parent.mkdir(parents=True) or (p / "train_list.txt").write_text("a 0\n"),
     "no val_list.txt"),
])
def test_a_folder_in_no_known_layout_says_what_is_expected(tmp_path, make, expected):
    root = tmp_path / "data"
    make(root)
    with pytest.raises((DataError, MissingFileError)) as info:
        read_data_dir(str(root))
    assert str(info.value).startswith("Global.data_dir: ") and expected in str(info.value)


def test_data_dir_needs_a_train_section():
    with pytest.raises(ConfigError, match="DataLoader.Train"):
        apply_data_dir({"Global": {}}, read_data_dir.__globals__["DataFolder"]("x", "folders", ["a"]))


def test_class_count_from_the_data_wins_with_a_warning_naming_both(caplog):
    cfg = {"Arch": {"class_num": 1000}, "Global": {"class_num": 1000}}
    with caplog.at_level(logging.WARNING):
        _agree_class_num(cfg, 3, "the class folders of d/train")
    assert cfg["Arch"]["class_num"] == 3 and "class_num" not in cfg["Global"]
    assert "Arch.class_num is 1000 in the config, but the class folders of d/train names 3 classes" in caplog.text
    assert "Global.class_num_from_data=False" in caplog.text


def test_class_num_from_data_false_keeps_a_larger_head_and_refuses_a_smaller_one():
    keep = {"Arch": {"class_num": 10}, "Global": {"class_num_from_data": False}}
    _agree_class_num(keep, 3, "d")
    assert keep["Arch"]["class_num"] == 10
    with pytest.raises(ConfigError, match="Arch.class_num: 2 is kept"):
        _agree_class_num({"Arch": {"class_num": 2}, "Global": {"class_num_from_data": False}}, 3, "d")


def test_an_explicit_override_wins_over_the_data_folder(photos):
    mine = os.path.join(photos, "val", "cat")
    cfg = load_config(RECIPE, [f"DataLoader.Eval.dataset.image_root={mine}", f"Global.data_dir={photos}",
                               "Infer.infer_imgs=somewhere.jpg"])
    assert cfg["DataLoader"]["Eval"]["dataset"]["image_root"] == mine  # -o order does not matter
    assert cfg["DataLoader"]["Train"]["dataset"]["image_root"] == os.path.join(photos, "train")
    assert cfg["Infer"]["infer_imgs"] == "somewhere.jpg"
