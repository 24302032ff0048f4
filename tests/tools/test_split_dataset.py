"""tools/split_dataset.py: stratified, deterministic lists that the dataset reader accepts."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from ppcls.data.dataset import read_file_list
from ppcls.data.label_list import read_label_list
from tools.split_dataset import SplitError, main, split_counts, split_dataset, write_split

CLASSES = {"cat": 20, "dog": 10, "red fox": 7}


def make_tree(root, classes=CLASSES) -> str:
    img = np.zeros((4, 4, 3), np.uint8)
    for name, n in classes.items():
        os.makedirs(os.path.join(root, name, "sub"), exist_ok=True)
        for i in range(n):
            # spaces in file names; some images in a nested folder
            rel = os.path.join(name, "sub" if i % 5 == 4 else "", f"photo {i:02d}.png")
            cv2.imwrite(os.path.join(root, rel), img)
    with open(os.path.join(root, next(iter(classes)), "notes.txt"), "w") as f:
        f.write("not an image")
    return str(root)


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def test_split_is_stratified_and_readable(tmp_path):
    root = make_tree(tmp_path)
    written = write_split(root, 0.2, 0.1, seed=3)
    assert written == {"train_list.txt": 26, "val_list.txt": 7, "test_list.txt": 4, "label_list.txt": 3}
    assert read_label_list(os.path.join(root, "label_list.txt")) == {0: "cat", 1: "dog", 2: "red fox"}
    seen = []
    for split in ("train", "val", "test"):
        paths, labels = read_file_list(os.path.join(root, f"{split}_list.txt"), root, class_num=3)
        assert all(os.path.isfile(p) for p in paths)
        for label, (name, n) in enumerate(CLASSES.items()):
            expected = split_counts(n, 0.2, 0.1)[("train", "val", "test").index(split)]
            assert labels.count(label) == expected >= 1  # every class in every split, in proportion
            assert all(
                os.path.relpath(p, root).split(os.sep)[0] == name
                for p, lab in zip(paths, labels, strict=True)
                if lab == label
            )
        seen += paths
    assert len(seen) == len(set(seen)) == sum(CLASSES.values())  # disjoint and complete
    assert split_counts(20, 0.2, 0.1) == (14, 4, 2) and split_counts(7, 0.2, 0.1) == (5, 1, 1)


def test_same_seed_same_lists_other_seed_other_lists(tmp_path):
    root = make_tree(tmp_path)
    a = split_dataset(root, 0.3, 0.1, seed=1)
    assert split_dataset(root, 0.3, 0.1, seed=1) == a
    b = split_dataset(root, 0.3, 0.1, seed=2)
    assert b[0] == a[0] and b[1]["val"] != a[1]["val"]
    write_split(root, 0.3, 0.1, seed=1)
    first = read_lines(os.path.join(root, "val_list.txt"))
    write_split(root, 0.3, 0.1, seed=1)
    assert read_lines(os.path.join(root, "val_list.txt")) == first


def test_zero_test_value_writes_no_test_list(tmp_path, capsys):
    root = make_tree(tmp_path)
    assert main(["--dataset_dir", root, "--val_value", "0.25", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "train_list.txt: 27 images" in out and "label_list.txt: 3 classes" in out
    assert not os.path.exists(os.path.join(root, "test_list.txt"))
    assert not [f for f in os.listdir(root) if f.endswith(".tmp")]  # atomic writes leave nothing behind


@pytest.mark.parametrize(
    "val, test, match",
    [
        (-0.1, 0.1, "--val_value: expected a fraction in"),
        (0.2, 1.0, "--test_value: expected a fraction in"),
        (0.6, 0.4, "sum to less than 1"),
    ],
)
def test_bad_ratios(tmp_path, val, test, match):
    with pytest.raises(SplitError, match=match):
        split_dataset(make_tree(tmp_path), val, test)


def test_folder_errors(tmp_path, capsys):
    with pytest.raises(SplitError, match="is not a folder"):
        split_dataset(str(tmp_path / "missing"), 0.2)
    (tmp_path / "flat").mkdir()
    cv2.imwrite(str(tmp_path / "flat" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(SplitError, match="no class sub-folders"):
        split_dataset(str(tmp_path / "flat"), 0.2)
    root = make_tree(tmp_path / "tree")
    os.makedirs(os.path.join(root, "empty"))
    with pytest.raises(SplitError, match="empty holds no images"):
        split_dataset(root, 0.2)
    assert main(["--dataset_dir", root, "--val_value", "0.2"]) == 2
    assert "holds no images" in capsys.readouterr().err


def test_class_too_small(tmp_path):
    root = make_tree(tmp_path, {"big": 10, "tiny": 2})
    with pytest.raises(SplitError, match="class 'tiny' has 2 image.*at least 3"):
        split_dataset(root, 0.2, 0.1)
    _, lists = split_dataset(root, 0.2, 0.0)  # two images are enough for train + val
    assert [lab for _, lab in lists["val"]].count(1) == 1


def test_files_the_readers_do_not_take_are_named_not_dropped_silently(tmp_path, caplog):
    """hymenoptera's ``ants/imageNotFound.gif``: split_dataset.py and class-folder reading both say so."""
    import subprocess
    import sys

    from ppcls.data.dataset import ImageNetDataset
    from tests.conftest import REPO

    root = make_tree(tmp_path)  # holds cat/notes.txt too
    with open(os.path.join(root, "dog", "imageNotFound.gif"), "wb") as f:
        f.write(b"GIF89a")
    with caplog.at_level("WARNING"):
        split_dataset(root, 0.2)
    (msg,) = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert "left out 2 file(s)" in msg and "cat/notes.txt" in msg and "dog/imageNotFound.gif" in msg
    assert ".gif: 1" in msg and ".txt: 1" in msg and ".jpg" in msg  # what was left out and why

    caplog.clear()
    with caplog.at_level("WARNING"):
        ds = ImageNetDataset(root, None, [{"DecodeImage": {"to_rgb": True}}])
    (msg,) = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert "dog/imageNotFound.gif" in msg and "cat/notes.txt" in msg
    assert "cat/sub/" in msg and "sub-folder: 3" in msg  # class folders are read one level deep: said too
    assert not any(p.endswith(".gif") for p in ds.paths)

    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "split_dataset.py"), "--dataset_dir", root,
                           "--val_value", "0.2"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" in proc.stderr and "dog/imageNotFound.gif" in proc.stderr


def test_many_left_out_files_give_a_bounded_warning(tmp_path, caplog):
    root = make_tree(tmp_path, {"a": 3, "b": 3})
    for i in range(300):
        open(os.path.join(root, "b", f"frame{i:03d}.gif"), "wb").close()
    with caplog.at_level("WARNING"):
        split_dataset(root, 0.3)
    (msg,) = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert "left out 301 file(s)" in msg and "and 296 more" in msg and "frame299" not in msg
    assert len(msg) < 800
