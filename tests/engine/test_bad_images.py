"""Undecodable images (issue 15): infer and eval skip, name, count them and fail past
``Global.max_bad_image_ratio`` as training and the predictor do."""

from __future__ import annotations

import ast
import os
import shutil

import numpy as np
import pytest

from tests.conftest import run_tool, tiny_config, write_config, write_digits_subset

TRUNCATED = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"  # a JPEG cut after its first bytes


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A digits set whose class folder 1 holds one truncated JPEG, and random weights for 3 classes."""
    import paddle

    from ppcls.arch import build_model

    root = write_digits_subset(str(tmp_path_factory.mktemp("bad_digits")))
    with open(os.path.join(root, "images", "1", "truncated.jpg"), "wb") as f:
        f.write(TRUNCATED)
    paddle.seed(3)
    weights = os.path.join(root, "weights")
    paddle.save(build_model({"name": "PPLCNet_x0_25", "class_num": 3}).state_dict(), weights + ".pdparams")
    return root, weights


def _infer(tmp_path, root, weights, folder, *overrides):
    cfg = tiny_config(root, str(tmp_path / "out"))
    cfg["Global"]["pretrained_model"] = weights
    path = write_config(cfg, str(tmp_path / "infer.yaml"))
    args = ["-c", path, "-o", f"Infer.infer_imgs={folder}"]
    for o in overrides:
        args += ["-o", o]
    proc = run_tool("infer.py", *args, timeout=300)
    rows = [x for line in proc.stdout.splitlines() if line.startswith("[{") for x in ast.literal_eval(line)]
    return proc, rows


def test_infer_skips_and_names_an_undecodable_file_within_the_ratio(tmp_path, data):
    root, weights = data
    folder = os.path.join(root, "images")
    proc, rows = _infer(tmp_path, root, weights, folder, "Global.max_bad_image_ratio=0.1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_images = sum(len(fs) for _, _, fs in os.walk(folder))
    assert len(rows) == n_images - 1  # every other image has its result
    out = proc.stdout + proc.stderr
    assert "DecodeError" not in out
    bad = os.path.join(folder, "1", "truncated.jpg")
    assert f"skipped {bad}: cannot decode image" in out  # the file and the reason
    assert f"1 of {n_images} input file(s)" in out and "within Global.max_bad_image_ratio=0.1" in out
    # named relative to the folder given, as the predictor names them
    assert rows[0]["file_name"] == "0/0000.png" and all(not os.path.isabs(r["file_name"]) for r in rows)


def test_infer_past_the_ratio_fails_naming_the_key(tmp_path, data):
    root, weights = data
    folder = os.path.join(root, "images", "1")  # 1 bad of 31: 3.2 % > 1 %
    proc, rows = _infer(tmp_path, root, weights, folder)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(rows) == 30  # the others' results are still printed
    err = proc.stdout + proc.stderr
    assert "Traceback" not in err
    assert "truncated.jpg" in err and "1 of 31 input file(s)" in err
    assert "more than Global.max_bad_image_ratio=0.01 allows" in err


def test_infer_on_a_single_undecodable_file_fails_naming_it(tmp_path, data):
    root, weights = data
    bad = os.path.join(root, "images", "1", "truncated.jpg")
    proc, rows = _infer(tmp_path, root, weights, bad)
    assert proc.returncode == 2 and not rows
    err = proc.stdout + proc.stderr
    assert bad in err and "none could be read" in err


def test_infer_check_bad_images_bounds_the_names():
    from ppcls.engine.infer import check_bad_images
    from ppcls.utils.errors import DataError

    check_bad_images([], 10, 0.0)
    with pytest.raises(DataError) as e:
        check_bad_images([f"img{i}.jpg" for i in range(40)], 100, 0.1)
    msg = str(e.value)
    assert "img0.jpg" in msg and "img4.jpg" in msg and "img5.jpg" not in msg and "and 35 more" in msg
    assert "Global.max_bad_image_ratio=0.1" in msg


def _eval_loader(root, with_bad: bool):
    from ppcls.data import build_dataloader

    cfg = tiny_config(root, "/nonexistent")
    listing = os.path.join(root, "val_bad.txt" if with_bad else "val_list.txt")
    if with_bad:
        shutil.copy(os.path.join(root, "val_list.txt"), listing)
        with open(listing, "a") as f:
            f.write("images/1/truncated.jpg 1\n")
    section = cfg["DataLoader"]["Eval"]
    section["dataset"]["cls_label_path"] = listing
    return build_dataloader(section, "Eval", 3, seed=7)


def test_eval_leaves_an_undecodable_image_out_and_names_it(data, caplog):
    """Before: the dataset put a random other sample (with its label) in its place and evaluation counted it,
    silently. Now it is left out of the metrics, counted and named; past the ratio the run stops."""
    import paddle

    from ppcls.arch import build_model
    from ppcls.engine.evaluate import evaluate
    from ppcls.loss import build_loss
    from ppcls.metric import build_metrics
    from ppcls.utils.errors import DataError

    root, weights = data
    net = build_model({"name": "PPLCNet_x0_25", "class_num": 3})
    net.set_state_dict(paddle.load(weights + ".pdparams"))

    def run(loader, ratio):
        loss = build_loss([{"CELoss": {"weight": 1.0}}], 3)
        metrics = build_metrics([{"TopkAcc": {"topk": [1, 2]}}], 3)
        return evaluate(net, loader, loss, metrics, 1, 0, max_bad_image_ratio=ratio)

    clean = run(_eval_loader(root, False), 0.01)
    with caplog.at_level("WARNING"):
        with_bad = run(_eval_loader(root, True), 0.1)
    for key in ("loss", "top1", "top2"):
        assert np.isclose(with_bad[key], clean[key], atol=1e-6), (key, with_bad, clean)
    text = caplog.text
    assert "1 of 19 evaluation images" in text and "truncated.jpg" in text
    assert "within Global.max_bad_image_ratio=0.1" in text
    with pytest.raises(DataError) as e:
        run(_eval_loader(root, True), 0.01)
    assert "truncated.jpg" in str(e.value) and "Global.max_bad_image_ratio (0.01)" in str(e.value)
