"""Batch operators: mixing as claimed, soft labels summing to one, OpSampler's choice, training."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from ppcls.data import build_dataloader
from ppcls.data.batch_ops import CutmixOperator, MixupOperator, OpSampler, soft_labels
from ppcls.registry import BATCH_TRANSFORMS
from tests.conftest import run_tool, tiny_config, write_config

SAMPLER_CFG = {"MixupOperator": {"alpha": 0.8, "prob": 0.5}, "CutmixOperator": {"alpha": 1.0, "prob": 0.5}}


def constant_batch(values=(1.0, -2.0, 3.0, 0.5), size=16) -> np.ndarray:
    return np.stack([np.full((3, size, size), v, np.float32) for v in values])


def test_registered():
    assert {"MixupOperator", "CutmixOperator", "OpSampler"} <= set(BATCH_TRANSFORMS.names())


def test_mixup_blends_images_and_labels_by_lam():
    images, labels = constant_batch(), np.array([0, 1, 2, 3])
    np.random.seed(3)
    perm = np.random.permutation(4)
    lam = np.random.beta(0.4, 0.4)
    np.random.seed(3)
    out, soft = MixupOperator(class_num=5, alpha=0.4)(images, labels)
    assert out.shape == images.shape and out.dtype == np.float32
    assert soft.shape == (4, 5) and soft.dtype == np.float32
    np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
    for i in range(4):
        expect = lam * images[i, 0, 0, 0] + (1 - lam) * images[perm[i], 0, 0, 0]
        np.testing.assert_allclose(out[i], expect, rtol=1e-5)  # still a constant image
        want = np.zeros(5, np.float32)
        want[labels[i]] += lam
        want[labels[perm[i]]] += 1 - lam
        np.testing.assert_allclose(soft[i], want, rtol=1e-5)
    np.testing.assert_array_equal(images, constant_batch())  # the input is not modified


def test_cutmix_pastes_a_box_and_weights_labels_by_area():
    images, labels = constant_batch(size=32), np.array([0, 1, 2, 3])
    for seed in range(8):
        np.random.seed(seed)
        out, soft = CutmixOperator(class_num=4, alpha=1.0)(images, labels)
        np.testing.assert_allclose(soft.sum(1), 1.0, rtol=1e-6)
        for i in range(4):
            own = np.isclose(out[i], images[i, 0, 0, 0]).mean()
            assert soft[i, labels[i]] == pytest.approx(own, abs=1e-6) or soft[i].max() == pytest.approx(1.0)
            pasted = ~np.isclose(out[i, 0], images[i, 0, 0, 0])
            if pasted.any():  # one rectangle from one other image
                ys, xs = np.nonzero(pasted)
                assert pasted[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].all()
                assert np.unique(out[i][:, pasted]).size == 1


def test_soft_labels_chain_and_checks():
    images = constant_batch()
    np.random.seed(0)
    _, soft = CutmixOperator(class_num=4, alpha=1.0)(images, np.array([0, 1, 2, 3]))
    out, soft2 = MixupOperator(class_num=4)(images, soft)  # soft labels from an earlier op
    np.testing.assert_allclose(soft2.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(soft_labels(np.array([[2], [0]]), 3, "t"), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"label 4 is outside \[0, 4\)"):
        MixupOperator(class_num=4)(images, np.array([0, 1, 2, 4]))
    with pytest.raises(ValueError, match="soft labels"):
        MixupOperator(class_num=4)(images, np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="NCHW"):
        MixupOperator(class_num=4)(images[0], np.array([0]))
    with pytest.raises(ValueError, match="class_num"):
        MixupOperator(class_num=None)
    with pytest.raises(ValueError, match="alpha"):
        CutmixOperator(class_num=4, alpha=0)


def test_op_sampler_picks_by_probability():
    sampler = OpSampler(
        class_num=3, MixupOperator={"alpha": 0.8, "prob": 0.3}, CutmixOperator={"alpha": 1.0, "prob": 0.5}
    )
    picked = []
    sampler.ops = [lambda x, y, k=k: (picked.append(k), (x, y))[1] for k in ("mixup", "cutmix")]
    images, labels = constant_batch((1.0, 2.0)), np.array([0, 2])
    random.seed(11)
    for _ in range(2000):
        sampler(images, labels)
    n = {k: picked.count(k) for k in ("mixup", "cutmix")}
    assert abs(n["mixup"] - 600) < 80 and abs(n["cutmix"] - 1000) < 90  # ~4 sigma
    assert 2000 - len(picked) > 300  # the remaining 0.2: unchanged batch
    random.seed(11)
    again = []
    sampler.ops = [lambda x, y, k=k: (again.append(k), (x, y))[1] for k in ("mixup", "cutmix")]
    for _ in range(2000):
        sampler(images, labels)
    assert again == picked  # seeded: same choices


def test_op_sampler_passthrough_gives_one_hot():
    sampler = OpSampler(class_num=3, MixupOperator={"alpha": 0.8, "prob": 0.0})
    images = constant_batch((1.0, 2.0))
    out, soft = sampler(images, np.array([0, 2]))
    np.testing.assert_array_equal(out, images)
    np.testing.assert_array_equal(soft, [[1, 0, 0], [0, 0, 1]])
    assert soft.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"MixupOperator": {"alpha": 0.8, "prob": 0.7}, "CutmixOperator": {"alpha": 1.0, "prob": 0.5}},
            "sum to 1.2",
        ),
        ({"MixupOperator": {"alpha": 0.8}}, "prob"),
        ({"FmixOperator": {"prob": 0.5}}, "not a batch operator"),
        ({"OpSampler": {"prob": 0.5}}, "not a batch operator"),
        (
            {"MixupOperator": {"alpha": 0.8, "prob": 0.5, "beta": 1}},
            "OpSampler.MixupOperator.beta: unknown key",
        ),
        ({}, "at least one"),
        ({"MixupOperator": {"alpha": 0.8, "prob": 0.5, "class_num": 7}}, "differs"),
    ],
)
def test_op_sampler_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OpSampler(class_num=3, **kwargs)


def test_loader_injects_class_num_and_gives_soft_labels(digits_dir):
    split = {
        "dataset": {
            "name": "ImageNetDataset",
            "image_root": digits_dir,
            "cls_label_path": os.path.join(digits_dir, "val_list.txt"),
            "transform_ops": [{"DecodeImage": {"to_rgb": True}}, {"NormalizeImage": {"order": ""}}],
            "batch_transform_ops": [{"OpSampler": SAMPLER_CFG}],
        },
        "sampler": {"batch_size": 6, "shuffle": True},
        "loader": {"num_workers": 0},
    }
    batches = list(build_dataloader(split, "Train", 3, seed=1))
    for images, labels, _bad in batches:
        assert list(images.shape) == [6, 3, 16, 16]
        assert list(labels.shape) == [6, 3] and str(labels.dtype).endswith("float32")
        np.testing.assert_allclose(labels.numpy().sum(1), 1.0, rtol=1e-5)


def test_mixup_cutmix_config_trains(digits_dir, tmp_path):
    cfg = tiny_config(digits_dir, str(tmp_path / "out"), epochs=1)
    cfg["DataLoader"]["Train"]["dataset"]["batch_transform_ops"] = [{"OpSampler": SAMPLER_CFG}]
    cfg["Loss"]["Train"] = [{"MixCELoss": {"weight": 1.0}}]
    cfg["Global"]["save_inference_dir"] = str(tmp_path / "inference")
    path = write_config(cfg, str(tmp_path / "mix.yaml"))
    result = run_tool("train.py", "-c", path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "[Train][Epoch 1/1][Avg]" in result.stdout + result.stderr
