"""File lists, class folders, bad data and the sampler."""

from __future__ import annotations

import os

import numpy as np
import pytest

from ppcls.data import build_dataloader
from ppcls.data.dataset import DataError, ImageNetDataset
from ppcls.data.sampler import DistributedBatchSampler

OPS = [{"DecodeImage": {"to_rgb": True}}, {"ResizeImage": {"size": 16}}, {"NormalizeImage": {"order": ""}}]


def test_file_list_dataset_outputs_chw(digits_dir):
    ds = ImageNetDataset(digits_dir, os.path.join(digits_dir, "train_list.txt"), OPS, class_num=3)
    img, label, bad = ds[0]
    assert img.shape == (3, 16, 16) and img.dtype == np.float32 and 0 <= label < 3 and bad == -1
    assert len(ds) == 72


def write_list(folder, lines, name="list.txt"):
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("line, message", [
    ("images/0/nothere.png 0", "image file not found"),
    ("justonefield", "expected 'relative/path label'"),
    ("images/0/x.png zero", "the label 'zero' is not an integer"),
    ("images/0/x.png 7", "label 7 is outside [0, 3)"),
])
def test_bad_list_lines_name_file_line_and_content(tmp_path, digits_dir, line, message):
    good = open(os.path.join(digits_dir, "train_list.txt")).readline().strip()
    if "x.png" in line:
        line = line.replace("images/0/x.png", good.rsplit(" ", 1)[0])
    path = write_list(str(tmp_path), [good, line])
    with pytest.raises(DataError) as e:
        ImageNetDataset(digits_dir, path, OPS, class_num=3)
    assert message in str(e.value) and f"{path}:2" in str(e.value) and repr(line) in str(e.value)


def test_empty_list_is_an_error(tmp_path, digits_dir):
    path = write_list(str(tmp_path), [""])
    with pytest.raises(DataError, match="empty"):
        ImageNetDataset(digits_dir, path, OPS, class_num=3)


def test_undecodable_image_is_replaced_and_reported(tmp_path, digits_dir):
    import shutil

    root = str(tmp_path)
    shutil.copytree(os.path.join(digits_dir, "images"), os.path.join(root, "images"))
    bad = os.path.join(root, "images", "0", "broken.png")
    open(bad, "wb").write(b"this is text, not a png")
    path = write_list(root, ["images/0/broken.png 0"] + open(os.path.join(digits_dir, "train_list.txt")).read().split("\n")[:5])
    ds = ImageNetDataset(root, path, OPS, class_num=3)
    img, label, bad_idx = ds[0]
    assert img.shape == (3, 16, 16) and bad_idx == 0


def test_class_folders_sorted(tmp_path):
    import cv2

    for cls in ("zebra", "ant", "mole"):
        os.makedirs(tmp_path / cls)
        cv2.imwrite(str(tmp_path / cls / "a.png"), np.zeros((8, 8, 3), np.uint8))
    ds = ImageNetDataset(str(tmp_path), None, OPS)
    assert ds.class_names == ["ant", "mole", "zebra"] and sorted(ds.labels) == [0, 1, 2]
    os.makedirs(tmp_path / "empty")
    with pytest.raises(DataError, match="holds no images"):
        ImageNetDataset(str(tmp_path), None, OPS)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_sampler_shards_cover_the_set(world):
    data = list(range(10))
    shards = [DistributedBatchSampler(data, 2, shuffle=True, num_replicas=world, rank=r, seed=5) for r in range(world)]
    seen = [i for s in shards for b in s for i in b]
    assert len({len(list(s)) for s in shards}) == 1  # equal step counts for training
    assert set(seen) == set(data)
    evals = [DistributedBatchSampler(data, 2, num_replicas=world, rank=r, pad_to_even=False) for r in range(world)]
    assert sorted(i for s in evals for b in s for i in b) == data  # each sample exactly once


def test_sampler_new_order_each_epoch_and_deterministic():
    s = DistributedBatchSampler(list(range(50)), 50, shuffle=True, seed=1)
    first = list(s)[0]
    s.set_epoch(1)
    second = list(s)[0]
    s2 = DistributedBatchSampler(list(range(50)), 50, shuffle=True, seed=1)
    assert first != second and list(s2)[0] == first


def test_dataloader_with_workers_matches_no_workers(digits_dir):
    split = {"dataset": {"name": "ImageNetDataset", "image_root": digits_dir,
                         "cls_label_path": os.path.join(digits_dir, "val_list.txt"), "transform_ops": OPS},
             "sampler": {"batch_size": 5, "shuffle": False}, "loader": {"num_workers": 0}}
    a = [x[0].numpy() for x in build_dataloader(split, "Eval", 3)]
    split["loader"] = {"num_workers": 2, "use_shared_memory": True}
    b = [x[0].numpy() for x in build_dataloader(split, "Eval", 3)]
    assert len(a) == len(b) == 4
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_workers_start_after_opencv_work_in_the_parent(digits_dir):
    """A parent that used OpenCV's thread pool must not hang the forked workers."""
    import cv2

    cv2.setNumThreads(2)
    big = np.random.RandomState(0).randint(0, 255, (512, 512, 3), dtype=np.uint8)
    for _ in range(5):
        cv2.resize(big, (300, 300))
    split = {"dataset": {"name": "ImageNetDataset", "image_root": digits_dir,
                         "cls_label_path": os.path.join(digits_dir, "val_list.txt"), "transform_ops": OPS},
             "sampler": {"batch_size": 6, "shuffle": False}, "loader": {"num_workers": 2}}
    for _ in range(3):
        assert sum(x[0].shape[0] for x in build_dataloader(split, "Eval", 3)) == 18


def write_mostly_broken_set(root: str, good: int = 20, broken: int = 12) -> tuple[str, int]:
    """A list of ``good`` real PNGs and ``broken`` truncated, garbage or empty files; returns (list, n_broken)."""
    import cv2

    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(good):
        rel = f"images/good{i}.png"
        cv2.imwrite(os.path.join(root, rel), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
        lines.append(f"{rel} {i % 3}")
    png = open(os.path.join(root, "images", "good0.png"), "rb").read()
    for i in range(broken):
        rel = f"images/broken{i}.png"
        content = (png[: len(png) // 3], b"garbage, not an image", b"")[i % 3]
        open(os.path.join(root, rel), "wb").write(content)
        lines.append(f"{rel} {i % 3}")
    return write_list(root, lines), broken


def undecodable_records(records) -> tuple[list[str], list[str]]:
    """(named-file warnings, "not named" notices) among the dataset's log records."""
    msgs = [r.getMessage() for r in records if r.name == "ppcls.data.dataset" and r.levelname == "WARNING"]
    return [m for m in msgs if m.startswith("undecodable image ")], [m for m in msgs if "not named" in m]


def test_undecodable_warnings_are_bounded_per_dataset(tmp_path, caplog):
    """Before: one warning per undecodable image, every epoch; now the first few are named, then one notice."""
    import random

    random.seed(0)
    path, n_broken = write_mostly_broken_set(str(tmp_path))
    ds = ImageNetDataset(str(tmp_path), path, OPS, class_num=3)
    with caplog.at_level("WARNING", logger="ppcls.data.dataset"):
        for _ in range(2):  # two epochs
            served = [ds[i] for i in range(len(ds))]
            assert all(img.shape == (3, 16, 16) for img, _, _ in served)
            assert [int(b) for _, _, b in served] == [-1] * 20 + list(range(20, 20 + n_broken))
    named, notices = undecodable_records(caplog.records)
    assert len(named) == ImageNetDataset.shown_undecodable == 5 and len(notices) == 1
    assert all("broken" in m and "using another sample" in m for m in named)
    assert "more than 5 undecodable images" in notices[0]
    # the count is per instance: a new dataset names its first files again
    caplog.clear()
    with caplog.at_level("WARNING", logger="ppcls.data.dataset"):
        other = ImageNetDataset(str(tmp_path), path, OPS, class_num=3)
        assert int(other[20][2]) == 20
    assert len(undecodable_records(caplog.records)[0]) == 1


def test_undecodable_warnings_are_bounded_per_worker(tmp_path):
    """Forked DataLoader workers each keep their own bounded count; every sample is still served."""
    import logging

    path, n_broken = write_mostly_broken_set(str(tmp_path))
    split = {"dataset": {"name": "ImageNetDataset", "image_root": str(tmp_path), "cls_label_path": path,
                         "transform_ops": OPS},
             "sampler": {"batch_size": 4, "shuffle": False}, "loader": {"num_workers": 2}}
    log_file = str(tmp_path / "workers.log")
    handler = logging.FileHandler(log_file)  # inherited by the forked workers (caplog sees only this process)
    handler.setFormatter(logging.Formatter("%(process)d %(message)s"))
    dataset_logger = logging.getLogger("ppcls.data.dataset")
    dataset_logger.addHandler(handler)
    try:
        loader = build_dataloader(split, "Eval", 3, seed=1)
        for _ in range(2):  # workers are started again each epoch
            bad = np.concatenate([b.numpy().reshape(-1) for _, _, b in loader])
            assert bad.size == 20 + n_broken and sorted(bad[bad >= 0].tolist()) == list(range(20, 20 + n_broken))
    finally:
        dataset_logger.removeHandler(handler)
        handler.close()
    lines = open(log_file).read().splitlines()
    named = [x for x in lines if "undecodable image " in x]
    pids = {x.split()[0] for x in named}
    # at most 5 named and one notice per worker and epoch; without the bound: >= 12 named per epoch
    assert 0 < len(named) <= 5 * 2 * 2 and str(os.getpid()) not in pids
    for pid in pids:
        assert len([x for x in named if x.startswith(pid + " ")]) <= 5
    assert len([x for x in lines if "not named" in x]) <= 2 * 2
