"""Seeing a run: confusion matrix and per-class accuracy, curves, VisualDL scalars, the tools' plots."""

from __future__ import annotations

import csv
import glob
import math
import os

import numpy as np
import paddle
import pytest

from ppcls.engine.evaluate import evaluate
from ppcls.engine.runner import build_callbacks
from ppcls.engine.visual import (
    PlotCallback,
    VisualDLCallback,
    evaluate_with_plots,
    plot_training_curves,
    resolve_class_names,
    write_confusion_outputs,
)
from ppcls.metric.confusion import ConfusionMatrix, confusion_matrix, per_class_accuracy
from tests.conftest import run_tool, tiny_config, write_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# true 0 0 1 1 2 2 2, predicted 0 1 1 1 2 0 2
LABELS = np.array([0, 0, 1, 1, 2, 2, 2])
PREDS = np.array([0, 1, 1, 1, 2, 0, 2])
MATRIX = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 2]])


def is_png(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC and os.path.getsize(path) > 1000


def read_csv(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_confusion_matrix_and_per_class_accuracy():
    m = confusion_matrix(LABELS, PREDS, 4)
    assert m.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    samples, correct, acc = per_class_accuracy(m)
    assert samples.tolist() == [2, 2, 3, 0] and correct.tolist() == [1, 2, 2, 0]
    assert acc[:3].tolist() == pytest.approx([0.5, 1.0, 2 / 3]) and math.isnan(acc[3])
    with pytest.raises(ValueError, match="label 3 is outside 0..2"):
        confusion_matrix([3], [0], 3)
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        confusion_matrix([0, 1], [0], 3)


def test_accumulator_matches_numpy_and_reads_soft_targets():
    cm = ConfusionMatrix()
    logits = paddle.to_tensor(np.eye(3, dtype="float32")[PREDS])
    cm.update(logits[:4], paddle.to_tensor(LABELS[:4]))
    soft = np.eye(3, dtype="float32")[LABELS[4:]] * 0.8 + 0.2 / 3  # label-smoothed targets
    cm.update(logits[4:], paddle.to_tensor(soft))
    assert cm.compute(reduce=True) == {}  # no scalars: the evaluation dict stays the same
    assert cm.matrix.tolist() == MATRIX.tolist()
    with pytest.raises(ValueError, match="gives 4 class scores, expected 3"):
        cm.update(paddle.zeros([1, 4]), paddle.to_tensor([0]))


def test_confusion_outputs_written(tmp_path):
    names = ["zero", "one", "two"]
    write_confusion_outputs(str(tmp_path), MATRIX, names)
    assert is_png(str(tmp_path / "confusion_matrix.png"))
    rows = read_csv(str(tmp_path / "per_class_accuracy.csv"))
    assert [(r["class_id"], r["class_name"], r["samples"], r["correct"]) for r in rows] == [
        ("0", "zero", "2", "1"), ("1", "one", "2", "2"), ("2", "two", "3", "2")]
    assert [float(r["accuracy"]) for r in rows] == pytest.approx([0.5, 1.0, 2 / 3], abs=1e-6)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    # many classes: no tick labels or counts, still a picture
    big = confusion_matrix(np.arange(300) % 60, np.arange(300) % 59, 60)
    write_confusion_outputs(str(tmp_path / "big"), big, [str(i) for i in range(60)])
    assert is_png(str(tmp_path / "big" / "confusion_matrix.png"))


def test_class_names_from_dataset_label_list_or_ids(tmp_path):
    class DS:
        class_names = ["cat", "dog"]

    assert resolve_class_names(3, DS()) == ["cat", "dog", "2"]
    path = tmp_path / "labels.txt"
    path.write_text("0 a cat\n2 a bird\n")
    assert resolve_class_names(3, object(), str(path)) == ["a cat", "1", "a bird"]
    assert resolve_class_names(2) == ["0", "1"]
    with pytest.raises(FileNotFoundError):
        resolve_class_names(2, None, str(tmp_path / "missing.txt"))


HISTORY = [
    {"epoch": 1, "train": {"CELoss": 1.1, "loss": 1.1, "top1": 0.4}, "eval": None},
    {"epoch": 2, "train": {"CELoss": 0.8, "loss": 0.8, "top1": 0.6}, "eval": {"loss": 0.9, "top1": 0.55}},
    {"epoch": 3, "train": {"CELoss": 0.5, "loss": 0.5, "top1": 0.8},
     "eval": {"loss": 0.6, "top1": 0.75, "ema_loss": 0.65, "ema_top1": 0.7}},
]


def test_training_curves_png(tmp_path):
    path = str(tmp_path / "train_curves.png")
    plot_training_curves(path, HISTORY)
    assert is_png(path)
    # a run without top-1 (mixup training without Metric.Train) still plots its loss
    plot_training_curves(path, [{"epoch": 1, "train": {"loss": 1.0}, "eval": None}])
    assert is_png(path)


def test_visualdl_scalars_read_back(tmp_path):
    from visualdl import LogReader

    cb = VisualDLCallback(str(tmp_path / "vdl"))
    cb.on_train_log(2, {"CELoss": 1.5, "loss": 1.5, "top1": 0.25, "lr": 0.1, "ips": 100.0})
    cb.on_train_log(4, {"CELoss": 1.25, "loss": 1.25, "top1": 0.5, "lr": 0.05, "ips": 120.0})
    cb.on_epoch_end(1, {"loss": 1.3, "top1": 0.4, "ips": 110.0}, {"loss": 1.2, "top1": 0.5, "top5": 1.0})
    cb.on_train_end(HISTORY)
    files = glob.glob(str(tmp_path / "vdl" / "vdlrecords.*.log"))
    assert len(files) == 1
    reader = LogReader(file_path=files[0])
    tags = set(reader.get_tags()["scalar"])
    assert {"Train/CELoss", "Train/loss", "Train/top1", "Train/lr", "Train/ips",
            "TrainEpoch/loss", "TrainEpoch/top1", "Eval/top1", "Eval/top5"} <= tags
    lr = [(r.id, r.value) for r in reader.get_data("scalar", "Train/lr")]
    assert lr == [(2, pytest.approx(0.1)), (4, pytest.approx(0.05))]
    assert [(r.id, r.value) for r in reader.get_data("scalar", "Eval/top1")] == [(1, 0.5)]


class TinyNet(paddle.nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.fc = paddle.nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


class ListLoader:
    """Three batches of a fixed 4-feature problem, with the dataset attribute loaders have."""

    def __init__(self, class_names=None) -> None:
        rng = np.random.default_rng(0)
        self.batches = [(paddle.to_tensor(rng.normal(size=(5, 4)).astype("float32")),
                         paddle.to_tensor(rng.integers(0, 3, size=5)), paddle.full([5], -1, "int64"))
                        for _ in range(3)]
        self.dataset = type("DS", (), {"class_names": class_names})()

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def test_evaluate_with_plots_returns_evaluate_dict(tmp_path):
    from ppcls.loss import build_loss
    from ppcls.metric import TopkAcc

    paddle.seed(3)
    net, loader = TinyNet(), ListLoader(["a", "b", "c"])
    loss = build_loss([{"CELoss": {"weight": 1.0}}], 3)
    expected = evaluate(net, loader, loss, [TopkAcc(topk=[1, 2])], 0, 0)
    got = evaluate_with_plots(net, loader, loss, [TopkAcc(topk=[1, 2])], str(tmp_path), 0)
    assert got == pytest.approx(expected)
    rows = read_csv(str(tmp_path / "per_class_accuracy.csv"))
    assert [r["class_name"] for r in rows] == ["a", "b", "c"]
    assert sum(int(r["samples"]) for r in rows) == 15
    assert sum(int(r["correct"]) for r in rows) == round(expected["top1"] * 15)
    assert is_png(str(tmp_path / "confusion_matrix.png"))


def test_plot_callback_uses_the_model_it_is_given(tmp_path):
    cfg = {"Global": {"output_dir": str(tmp_path), "save_plots": True}, "Arch": {"name": "X", "class_num": 3}}
    loader = ListLoader()
    callbacks = build_callbacks(cfg, str(tmp_path / "X"), loader, TinyNet())
    assert [type(cb) for cb in callbacks] == [PlotCallback]
    callbacks[0].on_train_end(HISTORY)
    assert is_png(str(tmp_path / "X" / "train_curves.png"))
    rows = read_csv(str(tmp_path / "X" / "per_class_accuracy.csv"))
    assert [r["class_name"] for r in rows] == ["0", "1", "2"] and sum(int(r["samples"]) for r in rows) == 15
    assert build_callbacks({"Global": {}, "Arch": {"name": "X"}}, str(tmp_path), loader, TinyNet()) == []
    with pytest.raises(ValueError, match="needs the model"):
        PlotCallback(str(tmp_path), eval_loader=loader)


def test_train_and_eval_tools_write_visualdl_and_plots(tmp_path, digits_dir):
    out = str(tmp_path / "out")
    cfg = tiny_config(digits_dir, out, epochs=1, use_visualdl=True, save_plots=True)
    path = write_config(cfg, str(tmp_path / "cfg.yaml"))
    proc = run_tool("train.py", "-c", path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = os.path.join(out, "PPLCNet_x0_25")
    assert glob.glob(os.path.join(out, "vdl", "vdlrecords.*.log"))
    assert is_png(os.path.join(run, "train_curves.png"))
    assert is_png(os.path.join(run, "confusion_matrix.png"))
    rows = read_csv(os.path.join(run, "per_class_accuracy.csv"))
    assert [int(r["samples"]) for r in rows] == [6, 6, 6]  # the validation list: 6 images per class

    for name in ("confusion_matrix.png", "per_class_accuracy.csv"):
        os.remove(os.path.join(run, name))
    proc = run_tool("eval.py", "-c", path, "-o", f"Global.pretrained_model={run}/latest", "-o", "Global.save_plots=True")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert is_png(os.path.join(run, "confusion_matrix.png"))
    rows = read_csv(os.path.join(run, "per_class_accuracy.csv"))
    assert [int(r["samples"]) for r in rows] == [6, 6, 6]


class FlatNet(paddle.nn.Layer):
    """A linear classifier over 3x16x16 images."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = paddle.nn.Linear(3 * 16 * 16, 3)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_confusion_matrix_leaves_out_substitutes_for_undecodable_images(tmp_path, digits_dir):
    """Before: the sample put in place of an undecodable image (another image, another label) was counted
    in the confusion matrix; now, as in the metrics, only the decodable samples are."""
    import shutil

    from ppcls.data import build_dataloader
    from ppcls.metric import TopkAcc

    root = tmp_path / "data"
    shutil.copytree(os.path.join(digits_dir, "images"), root / "images")
    (root / "images" / "1" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")  # a PNG cut short
    listing = root / "val_bad.txt"
    listing.write_text(open(os.path.join(digits_dir, "val_list.txt")).read() + "images/1/broken.png 1\n")
    n_good = 18
    ops = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 16}}, {"NormalizeImage": {"order": ""}}]
    split = {"dataset": {"name": "ImageNetDataset", "image_root": str(root), "cls_label_path": str(listing),
                         "transform_ops": ops},
             "sampler": {"batch_size": 4, "shuffle": False}, "loader": {"num_workers": 0}}
    loader = build_dataloader(split, "Eval", 3, seed=7)
    paddle.seed(3)
    net = FlatNet()

    got = evaluate_with_plots(net, loader, None, [TopkAcc(topk=[1])], str(tmp_path / "eval"), 0,
                              max_bad_image_ratio=0.1)
    rows = read_csv(str(tmp_path / "eval" / "per_class_accuracy.csv"))
    assert [int(r["samples"]) for r in rows] == [6, 6, 6]
    assert sum(int(r["correct"]) for r in rows) == round(got["top1"] * n_good)

    cb = PlotCallback(str(tmp_path / "train"), eval_loader=loader, model=net, num_classes=3)
    cb.on_train_end(HISTORY)
    rows = read_csv(str(tmp_path / "train" / "per_class_accuracy.csv"))
    assert [int(r["samples"]) for r in rows] == [6, 6, 6]  # 19 before: the substitute was counted
    assert sum(int(r["correct"]) for r in rows) == round(got["top1"] * n_good)


def test_confusion_on_a_batch_of_substitutes_only():
    from ppcls.engine.visual import confusion_on

    loader = ListLoader()
    images, labels, _ = loader.batches[1]
    loader.batches[1] = (images, labels, paddle.arange(5, dtype="int64"))  # every row stands in for another
    matrix = confusion_on(TinyNet(), loader, 3)
    assert matrix.sum() == 10
