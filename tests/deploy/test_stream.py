"""deploy/python/stream.py: prefetching gives the sequential results, in order, and cleans up after itself."""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np
import pytest

from deploy.python import stream
from deploy.python.predictor import ClsPredictor
from deploy.python.preprocess import Preprocessor

SIZE = 32
OPS = [
    {"DecodeImage": {"to_rgb": True}},
    {"ResizeImage": {"resize_short": 36}},
    {"CropImage": {"size": SIZE}},
    {"NormalizeImage": {"scale": "1.0/255.0", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                        "order": ""}},
    {"ToCHWImage": None},
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    import paddle

    from ppcls.arch import build_model
    from ppcls.engine.export import export_model

    paddle.seed(3)
    model = build_model({"name": "PPLCNet_x0_25", "class_num": 4})
    model.eval()
    return export_model(model, str(tmp_path_factory.mktemp("model") / "m"), [3, SIZE, SIZE], "PPLCNet_x0_25", 4,
                        transform_ops=OPS, export_type="onnx")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[str]:
    """Seven real photo crops (JPEG and PNG) and one broken file in the middle."""
    from skimage import data

    folder = tmp_path_factory.mktemp("imgs")
    paths = []
    for i, name in enumerate(("astronaut", "chelsea", "coffee", "rocket", "astronaut", "chelsea", "coffee")):
        img = getattr(data, name)()[i * 20:i * 20 + 120, i * 10:i * 10 + 150, ::-1]
        path = str(folder / f"{i}_{name}.{'png' if i % 3 == 2 else 'jpg'}")
        cv2.imwrite(path, img)
        paths.append(path)
    broken = str(folder / "3_broken.jpg")
    with open(broken, "wb") as f:
        f.write(b"\xff\xd8 not really a jpeg")
    return paths[:3] + [broken] + paths[3:]


def predictor(model_dir: str, **g) -> ClsPredictor:
    return ClsPredictor({"Global": {"inference_model_dir": model_dir, "backend": "onnxruntime", "cpu_num_threads": 1,
                                    **g}})


@pytest.mark.parametrize("batch_size", [1, 3])
def test_prefetch_equals_sequential(model_dir, files, batch_size, caplog):
    with caplog.at_level(logging.WARNING, logger="deploy.python.stream"):
        seq, seq_skipped = stream.predict_files(predictor(model_dir, batch_size=batch_size), files, prefetch=False)
        pre, pre_skipped = stream.predict_files(predictor(model_dir, batch_size=batch_size), files, prefetch=True)
    assert seq_skipped == pre_skipped == [files[3]]
    assert caplog.text.count("skipped") == 2 and "3_broken.jpg" in caplog.text
    assert [r["file_name"] for r in pre] == [f for f in files if f != files[3]]  # file order kept
    assert pre == seq  # same classes and exactly the same scores
    one_by_one = predictor(model_dir)
    for r in pre:
        assert r == one_by_one.predict([r["file_name"]])[0]


def test_prefetch_prepares_on_the_background_thread(model_dir, files, monkeypatch):
    pred = predictor(model_dir, batch_size=2)
    threads = []
    real = pred.prepare
    monkeypatch.setattr(pred, "prepare", lambda *a, **k: threads.append(threading.current_thread().name) or real(*a, **k))
    stream.predict_files(pred, files)  # Global.prefetch defaults to True
    assert threads and set(threads) == {"deploy-prefetch"}
    threads.clear()
    pred.config["Global"]["prefetch"] = False
    stream.predict_files(pred, files)
    assert threads and set(threads) == {threading.main_thread().name}


def test_held_batches_are_not_overwritten(model_dir, files):
    pred = predictor(model_dir, batch_size=1)
    good = [f for f in files if f != files[3]]
    reference = Preprocessor(OPS)
    for item, path in zip(stream._prefetched(pred, [[f] for f in good]), good, strict=True):
        time.sleep(0.05)  # the producer runs ahead meanwhile
        with open(path, "rb") as f:
            np.testing.assert_array_equal(item.batch, reference.batch([f.read()]))


def test_errors_reach_the_caller_and_the_thread_ends(model_dir, files, tmp_path):
    pred = predictor(model_dir, batch_size=1)
    with pytest.raises(FileNotFoundError):  # raised on the prefetch thread, re-raised here
        stream.predict_files(pred, files[:2] + [str(tmp_path / "missing.jpg")] + files[4:])
    assert not [t for t in threading.enumerate() if t.name == "deploy-prefetch"]


def test_stopping_early_stops_the_producer(model_dir, files):
    pred = predictor(model_dir, batch_size=1)
    good = [f for f in files if f != files[3]]
    gen = stream._prefetched(pred, [[f] for f in good])
    next(gen)
    gen.close()
    assert not [t for t in threading.enumerate() if t.name == "deploy-prefetch"]


def test_benchmark_counts_wall_time_when_stages_overlap(model_dir, files):
    pred = predictor(model_dir, batch_size=2, enable_benchmark=True)
    start = time.perf_counter()
    results, _ = stream.predict_files(pred, files)
    elapsed = time.perf_counter() - start
    s = pred.benchmark_summary()
    assert s["data_num"] == len(results) == 7 and s["batches"] == 4
    stages = sum(b[1] + b[2] + b[3] for b in pred.timer.batches)
    assert 0 < s["total_time_s"] <= elapsed and s["total_time_s"] != pytest.approx(stages, abs=1e-9)
    assert s["qps"] == pytest.approx(7 / s["total_time_s"])
