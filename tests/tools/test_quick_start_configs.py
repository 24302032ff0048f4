"""Every quick-start config runs as README shows: it builds its data set (digits, faces), then trains."""

from __future__ import annotations

import glob
import os

import pytest

from tests.conftest import REPO, run_tool

CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "quick_start", "*_digits.yaml"))
                 + glob.glob(os.path.join(REPO, "configs", "quick_start", "*_faces.yaml")))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("quick"))


def test_digits_set_is_built_once_with_a_documented_split(workdir):
    from ppcls.data.prepare.digits import prepare_digits

    root = prepare_digits(os.path.join(workdir, "dataset", "digits"))
    train = open(os.path.join(root, "train_list.txt")).read().splitlines()
    val = open(os.path.join(root, "val_list.txt")).read().splitlines()
    assert len(train) + len(val) == 1797 and len(val) == 359
    per_class = [sum(line.endswith(f" {c}") for line in val) for c in range(10)]
    assert all(34 <= n <= 38 for n in per_class)  # 20 % of each class
    stamp = os.path.getmtime(os.path.join(root, "train_list.txt"))
    assert prepare_digits(root) == root and os.path.getmtime(os.path.join(root, "train_list.txt")) == stamp


def test_faces_set_is_the_200_lfw_photos_with_a_fixed_split(workdir):
    from skimage.data import lfw_subset

    from ppcls.data.prepare import prepare_dataset

    root = os.path.join(workdir, "dataset", "faces")
    prepare_dataset({"name": "faces", "dataset_dir": root})
    train = open(os.path.join(root, "train_list.txt")).read().splitlines()
    val = open(os.path.join(root, "val_list.txt")).read().splitlines()
    assert (len(train), len(val)) == (160, 40)
    assert sorted(line.rsplit(" ", 1)[1] for line in val) == ["0"] * 20 + ["1"] * 20
    assert open(os.path.join(root, "label_list.txt")).read() == "0 face\n1 not_face\n"
    import cv2
    import numpy as np

    rel, label = val[0].rsplit(" ", 1)
    index = int(os.path.basename(rel).split(".")[0])
    pixels = cv2.imread(os.path.join(root, rel), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(pixels, np.round(lfw_subset()[index] * 255).astype(np.uint8))  # the real photo
    assert (label == "0") == (index < 100) and rel.startswith("images/face/" if index < 100 else "images/not_face/")


@pytest.mark.parametrize("config", CONFIGS, ids=os.path.basename)
def test_quick_start_config_trains(config, workdir):
    name = os.path.basename(config)
    proc = run_tool("train.py", "-c", config, "-o", "Global.epochs=1", "-o", "Global.max_iters_per_epoch=2",
                    "-o", "Global.eval_during_train=False", "-o", f"Global.output_dir=./out_{name}", cwd=workdir)
    assert proc.returncode == 0, proc.stdout[-2500:] + proc.stderr[-2500:]
    assert "[Train][Epoch 1/1][Iter: 2/2]" in proc.stdout
