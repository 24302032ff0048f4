"""deploy/python/stream.py: prefetch and workers give the sequential results, in order, and clean up after themselves."""

from __future__ import annotations

import logging
import sys
import threading
import time
import types

import cv2
import numpy as np
import pytest

from deploy.python import stream
from deploy.python.predictor import ClsPredictor
from deploy.python.preprocess import Preprocessor
from deploy.python.utils import DeployConfigError

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


def failing_read(real_read, name: str):
    """``stream._read`` that fails unexpectedly (not an OSError, which is a skipped file) on ``name``."""

    def read(path: str) -> bytes:
        if path.endswith(name):
            raise RuntimeError(f"unexpected failure on {path}")
        return real_read(path)

    return read


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


@pytest.mark.parametrize("backend", ["onnxruntime", "paddle"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_workers_equal_sequential(model_dir, files, batch_size, backend, caplog):
    seq, seq_skipped = stream.predict_files(predictor(model_dir, batch_size=batch_size, backend=backend), files,
                                            prefetch=False)
    pred = predictor(model_dir, batch_size=batch_size, backend=backend, workers=2)
    with caplog.at_level(logging.WARNING, logger="deploy.python.stream"):
        par, par_skipped = stream.predict_files(pred, files)  # Global.workers=2
    assert par_skipped == seq_skipped == [files[3]] and "3_broken.jpg" in caplog.text
    assert ("holds the GIL" in caplog.text) == (backend == "paddle")  # workers take turns there: said
    assert [r["file_name"] for r in par] == [f for f in files if f != files[3]]  # file order kept
    for a, b in zip(par, seq, strict=True):
        assert a["class_ids"] == b["class_ids"] and a["label_names"] == b["label_names"]
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-6)  # clones: same weights
    assert len(pred._clones) == 2
    stream.predict_files(pred, files)
    assert len(pred._clones) == 2  # kept for the next folder, not rebuilt


def test_workers_run_whole_batches_on_their_threads(model_dir, files, monkeypatch):
    pred = predictor(model_dir, batch_size=1, workers=2)
    seen: dict[str, set] = {"prepare": set(), "run": set()}
    clones = pred.worker_clones(2)
    assert clones[0].backend.session is pred.backend.session  # ONNX Runtime: one session, one copy of the weights
    for clone in clones:
        real_prepare, real_run = clone.prepare, clone.backend.run
        monkeypatch.setattr(clone, "prepare", lambda *a, real=real_prepare, **k: seen["prepare"].add(
            threading.current_thread().name) or real(*a, **k))
        monkeypatch.setattr(clone.backend, "run", lambda *a, real=real_run: seen["run"].add(
            threading.current_thread().name) or real(*a))
    slow = clones[0].backend.run
    monkeypatch.setattr(clones[0].backend, "run", lambda *a: time.sleep(0.02) or slow(*a))  # both workers get work
    results, _ = stream.predict_files(pred, files)
    assert len(results) == 7
    assert seen["prepare"] == seen["run"] == {"deploy-worker-0", "deploy-worker-1"}
    assert not [t for t in threading.enumerate() if t.name.startswith("deploy-worker")]


def test_worker_errors_reach_the_caller_and_the_threads_end(model_dir, files, tmp_path, monkeypatch):
    pred = predictor(model_dir, batch_size=1, workers=2)
    monkeypatch.setattr(stream, "_read", failing_read(stream._read, "boom.jpg"))
    with pytest.raises(RuntimeError, match="boom.jpg"):  # raised on a worker, re-raised here
        stream.predict_files(pred, files[:2] + [str(tmp_path / "boom.jpg")] + files[4:])
    assert not [t for t in threading.enumerate() if t.name.startswith("deploy-worker")]


@pytest.mark.parametrize("workers, prefetch", [(1, False), (1, True), (2, False)])
def test_unreadable_files_are_skipped_not_fatal(model_dir, files, tmp_path, workers, prefetch):
    """A file removed since the listing, an empty file, a text file: skipped with their reasons, in every mode."""
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    pred = predictor(model_dir, batch_size=2, workers=workers, prefetch=prefetch)
    order = [files[0], str(tmp_path / "gone.jpg"), str(empty), files[1], str(text), files[2]]
    results, skipped = stream.predict_files(pred, order)
    assert [r["file_name"] for r in results] == [files[0], files[1], files[2]]
    assert skipped == [str(tmp_path / "gone.jpg"), str(empty), str(text)]


def test_skipped_files_are_logged_a_few_times_only(model_dir, files, tmp_path, caplog):
    bad = []
    for i in range(40):
        bad.append(tmp_path / f"empty{i:02d}.jpg")
        bad[-1].write_bytes(b"")
    pred = predictor(model_dir, batch_size=4)
    with caplog.at_level("WARNING", logger="deploy.python.stream"):
        results, skipped = stream.predict_files(pred, [files[0]] + [str(p) for p in bad])
    assert len(results) == 1 and len(skipped) == 40
    lines = [r.getMessage() for r in caplog.records if r.name == "deploy.python.stream"]
    assert len(lines) == stream.LOGGED_SKIPS + 1, lines
    assert "empty00.jpg" in lines[0] and "cannot decode image" in lines[0]


def test_stopping_early_stops_the_workers(model_dir, files):
    pred = predictor(model_dir, batch_size=1)
    good = [f for f in files if f != files[3]]
    gen = stream._in_workers(pred, pred.worker_clones(2), [[f] for f in good])
    first = next(gen)
    assert first.results[0]["file_name"] == good[0]
    gen.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("deploy-worker")]


@pytest.mark.parametrize("value", [0, -2, "two", 1.5])
def test_bad_workers_value_names_the_key(model_dir, value):
    with pytest.raises(DeployConfigError, match="Global.workers"):
        predictor(model_dir, workers=value)


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


def test_errors_reach_the_caller_and_the_thread_ends(model_dir, files, tmp_path, monkeypatch):
    pred = predictor(model_dir, batch_size=1)
    monkeypatch.setattr(stream, "_read", failing_read(stream._read, "boom.jpg"))
    with pytest.raises(RuntimeError, match="boom.jpg"):  # raised on the prefetch thread, re-raised here
        stream.predict_files(pred, files[:2] + [str(tmp_path / "boom.jpg")] + files[4:])
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


def test_benchmark_with_workers_counts_every_batch_and_leaves_auto_log(model_dir, files, monkeypatch, caplog):
    stamps = []

    class AutoLogger:
        def __init__(self, **kwargs):
            self.times = types.SimpleNamespace(start=lambda: stamps.append("start"))

        def report(self):
            stamps.append("report")

    monkeypatch.setitem(sys.modules, "auto_log", types.SimpleNamespace(AutoLogger=AutoLogger))
    pred = predictor(model_dir, batch_size=2, enable_benchmark=True, workers=2)
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        results, _ = stream.predict_files(pred, files)
    elapsed = time.perf_counter() - start
    assert "Global.workers=2" in caplog.text and stamps == []  # auto_log cannot time overlapping batches
    s = pred.benchmark_summary()
    assert s["data_num"] == len(results) == 7 and s["batches"] == 4 and s["workers"] == 2
    assert 0 < s["total_time_s"] <= elapsed and s["qps"] == pytest.approx(7 / s["total_time_s"])
    text = pred.benchmark_report()
    assert "workers: 2" in text and "QPS" in text and stamps == []
    monkeypatch.setitem(sys.modules, "auto_log", None)
    single = predictor(model_dir, enable_benchmark=True, workers=2)
    stream.predict_files(single, files[:1])  # one batch: nothing to run at once
    assert single.benchmark_summary()["workers"] == 1
