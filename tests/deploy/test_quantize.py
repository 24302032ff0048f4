"""INT8 quantization of an exported ONNX model (deploy/python/quantize.py): results, atomic writes, bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from deploy.python import quantize as q
from deploy.python.errors import DeployConfigError, DeployFileError, ImageInputError, MissingPackageError
from deploy.python.predictor import INT8_ONNX_FILE, ClsPredictor
from tests.deploy.test_predictor import build, export

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[str]:
    import cv2
    from skimage import data

    folder = tmp_path_factory.mktemp("qphotos")
    paths = []
    for i, name in enumerate(("astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry", "hubble_deep_field",
                                "coins")):
        sub = folder / f"group{i % 2}"
        sub.mkdir(exist_ok=True)
        path = str(sub / f"{name}.jpg")
        img = getattr(data, name)()
        cv2.imwrite(path, img[:, :, ::-1] if img.ndim == 3 else img)
        paths.append(path)
    return sorted(paths)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, photos) -> str:
    """PPLCNet_x0_25 (random but non-trivial weights) at 64x64, exported with ONNX."""
    model = build("PPLCNet_x0_25", photos)
    return export(model, "PPLCNet_x0_25", str(tmp_path_factory.mktemp("q") / "model"), "onnx")


@pytest.fixture(scope="module")
def quantized(exported, photos, tmp_path_factory) -> str:
    folder = str(tmp_path_factory.mktemp("q8") / "model")
    shutil.copytree(exported, folder)
    paths, groups = q.list_images(os.path.dirname(os.path.dirname(photos[0])))
    calib = q.load_calibration(folder, paths, groups, 256, "photos")
    q.quantize_folder(folder, calib, q.QuantOptions())
    return folder


def _scores(folder: str, model_file: str, photos: list[str]) -> np.ndarray:
    ops = q.read_info(folder)["PreProcess"]["transform_ops"]
    arrays, _, _ = q.preprocess_files(photos, ops, "test")
    return q.predict(q.make_session(os.path.join(folder, model_file)), arrays)


def test_int8_model_written_and_recorded(quantized, exported, photos):
    assert os.path.isfile(os.path.join(quantized, INT8_ONNX_FILE))
    assert not [f for f in os.listdir(quantized) if f.startswith(".")], os.listdir(quantized)
    info = yaml.safe_load(open(os.path.join(quantized, "inference.yml")))
    before = yaml.safe_load(open(os.path.join(exported, "inference.yml")))
    assert info["Global"]["int8_model"] == INT8_ONNX_FILE
    for section in ("PreProcess", "PostProcess"):
        assert info[section] == before[section]
    assert {k: v for k, v in info["Global"].items() if k != "int8_model"} == before["Global"]
    quant = info["Quantization"]
    assert quant["per_channel"] is True and quant["symmetric_activations"] is False
    assert quant["calib_method"] == "percentile" and quant["calibration_images"] == len(photos)
    assert quant["calibration_source"] == "photos" and quant["excluded_nodes"] == []
    import onnxruntime

    assert quant["onnxruntime_version"] == onnxruntime.__version__
    # the deploy predictor still reads the folder (the fp32 model)
    pred = ClsPredictor({"Global": {"inference_model_dir": quantized, "backend": "onnxruntime", "cpu_num_threads": 2}})
    assert len(pred.predict(photos[:2])) == 2


def test_int8_scores_close_to_fp32(quantized, photos):
    fp32 = _scores(quantized, "inference.onnx", photos)
    int8 = _scores(quantized, INT8_ONNX_FILE, photos)
    assert fp32.std(axis=0).max() > 1e-3, "outputs should differ between photos"
    # An untrained (random) network spreads its 5 probabilities by only ~0.1 and is harder to quantize than a
    # trained one, so this checks that the INT8 graph computes the same function, loosely; the accuracy bound
    # on a trained model is tests/tools/test_quantize.py's.
    diff = np.abs(fp32 - int8)
    assert diff.max() < 0.15 and diff.mean() < 0.03, diff
    assert (fp32.argmax(1) == int8.argmax(1)).mean() >= 0.5, (fp32, int8)


def test_failed_quantization_keeps_previous_int8(quantized, photos, tmp_path):
    folder = str(tmp_path / "model")
    shutil.copytree(quantized, folder)
    before = {f: open(os.path.join(folder, f), "rb").read() for f in (INT8_ONNX_FILE, "inference.yml")}

    def broken(src, out, reader, **kwargs):
        with open(out, "wb") as f:
            f.write(b"half a model")
        raise RuntimeError("killed in the middle")

    calib = q.CalibrationSet(np.zeros((2, 3, 64, 64), np.float32), "zeros")
    with pytest.raises(RuntimeError, match="killed"):
        q.quantize_folder(folder, calib, q.QuantOptions(), quantize=broken)
    assert sorted(os.listdir(folder)) == sorted(os.listdir(quantized))  # no temporary file or folder left
    for name, data in before.items():
        assert open(os.path.join(folder, name), "rb").read() == data


def test_keep_fp32_by_op_type_and_name(exported, photos, tmp_path):
    folder = str(tmp_path / "model")
    shutil.copytree(exported, folder)
    calib = q.load_calibration(folder, photos, [0] * len(photos), 4, "photos")
    settings = q.quantize_folder(folder, calib, q.QuantOptions(keep_fp32="Gemm"))
    assert len(settings["excluded_nodes"]) == 1
    import onnx

    graph = onnx.load(os.path.join(folder, INT8_ONNX_FILE)).graph
    gemm = next(n for n in graph.node if n.op_type == "Gemm")
    assert not any(i.endswith("DequantizeLinear_Output") for i in gemm.input[1:]), list(gemm.input)
    with pytest.raises(DeployConfigError, match="MatMul is in the exported model but not after"):
        q.quantize_model(os.path.join(folder, "inference.onnx"), str(tmp_path / "x.onnx"), calib.arrays,
                         q.QuantOptions(keep_fp32="MatMul"))
    with pytest.raises(DeployConfigError, match=r"--keep_fp32: NoSuchNode, Conv2 is neither.*op types are"):
        q.quantize_model(os.path.join(folder, "inference.onnx"), str(tmp_path / "x.onnx"), calib.arrays,
                         q.QuantOptions(keep_fp32="NoSuchNode, Conv2"))
    assert not os.path.exists(tmp_path / "x.onnx")
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]


# ----------------------------------------------------------------------------- choosing the images


def test_spread_selection_is_deterministic_and_spans_classes():
    groups = [0] * 100 + [1] * 10 + [2] * 3
    picked = q.spread_selection(groups, 12)
    assert picked == q.spread_selection(groups, 12) and len(picked) == 12
    counts = np.bincount([groups[i] for i in picked])
    assert counts.tolist() == [5, 4, 3]  # the small class gives all it has, the rest is shared
    assert q.spread_selection(groups, 500) == list(range(len(groups)))
    first = [i for i in picked if groups[i] == 0]
    assert first[0] > 0 and first[-1] < 99  # evenly spaced, not the first few
    with pytest.raises(DeployConfigError, match="--calib_num: expected a positive integer"):
        q.spread_selection(groups, 0)


def test_image_extensions_match_ppcls():
    from deploy.python.utils import IMAGE_EXTENSIONS as DEPLOY_EXTENSIONS
    from ppcls.data.dataset import IMAGE_EXTENSIONS

    assert DEPLOY_EXTENSIONS == IMAGE_EXTENSIONS


def test_bad_calibration_sources(tmp_path, photos):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DeployFileError, match=r"--calib_dir: no images \(.jpg.*\) under .*empty"):
        q.list_images(str(tmp_path / "empty"))
    with pytest.raises(DeployFileError, match="--calib_dir: no such folder"):
        q.list_images(str(tmp_path / "nowhere"))
    lst = tmp_path / "list.txt"
    lst.write_text("\n\n")
    with pytest.raises(DeployFileError, match="lists no images"):
        q.read_image_list(str(lst), [str(tmp_path)])
    lst.write_text("".join(f"img/missing_{i}.jpg {i}\n" for i in range(9)) + f"{photos[0]} 0\n")
    with pytest.raises(DeployFileError) as e:
        q.read_image_list(str(lst), [str(tmp_path)])
    msg = str(e.value)
    assert "names 9 image(s) that do not exist" in msg and "img/missing_0.jpg (line 1)" in msg
    assert "and 4 more" in msg and "missing_8" not in msg
    with pytest.raises(DeployFileError, match="--calib_list: no such file"):
        q.read_image_list(str(tmp_path / "none.txt"), [str(tmp_path)])


def test_undecodable_images_skipped_then_refused(tmp_path, photos, exported, caplog):
    ops = q.read_info(exported)["PreProcess"]["transform_ops"]
    bad = []
    for i in range(7):
        p = tmp_path / f"bad{i}.jpg"
        p.write_bytes(b"not an image")
        bad.append(str(p))
    arrays, kept, skipped = q.preprocess_files(bad + photos[:2], ops, "--calib_dir x")
    assert arrays.shape == (2, 3, 64, 64) and kept == [7, 8] and len(skipped) == 7
    warning = [r.getMessage() for r in caplog.records if "skipped 7 of 9" in r.getMessage()]
    assert warning and "and 2 more" in warning[0] and len(warning[0]) < 1500
    with pytest.raises(ImageInputError, match="none of the 7 image"):
        q.preprocess_files(bad, ops, "--calib_dir x")


def test_bad_options_and_missing_onnxruntime(monkeypatch, exported, tmp_path):
    import argparse

    p = argparse.ArgumentParser()
    q.add_quant_arguments(p)
    with pytest.raises(DeployConfigError, match="--calib_list and --calib_dir: give one"):
        q.options_from_args(p.parse_args(["--calib_list", "a", "--calib_dir", "b"]))
    with pytest.raises(DeployConfigError, match=r"--calib_method: expected one of minmax, entropy, percentile, got 'kl'"):
        q.options_from_args(p.parse_args(["--calib_method", "kl"]))
    with pytest.raises(DeployConfigError, match="--calib_num"):
        q.options_from_args(p.parse_args(["--calib_num", "0"]))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingPackageError, match="pip install onnxruntime"):
        q.quantize_model(os.path.join(exported, "inference.onnx"), str(tmp_path / "x.onnx"),
                         np.zeros((1, 3, 64, 64), np.float32), q.QuantOptions())
    assert not os.listdir(tmp_path)


def test_cli_alone(quantized, photos, tmp_path):
    """deploy/python/quantize.py runs without ppcls: quantize a folder, and refuse bad input in one line."""
    folder = str(tmp_path / "model")
    shutil.copytree(quantized, folder)
    os.remove(os.path.join(folder, INT8_ONNX_FILE))
    lst = tmp_path / "eval.txt"
    lst.write_text("".join(f"{os.path.relpath(p, tmp_path)} {i % 5}\n" for i, p in enumerate(photos)))
    code = ("import runpy, sys; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    script = os.path.join(REPO, "deploy", "python", "quantize.py")
    guard = ("import sys, builtins; real = builtins.__import__\n"
             "def imp(name, *a, **k):\n"
             "    assert not name.startswith(('ppcls', 'paddle')), name\n"
             "    return real(name, *a, **k)\n"
             "builtins.__import__ = imp\n")
    proc = subprocess.run([sys.executable, "-c", guard + code, script, "--model_dir", folder, "--calib_dir",
                           os.path.dirname(os.path.dirname(photos[0])), "--calib_num", "4", "--eval_list", str(lst)],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.isfile(os.path.join(folder, INT8_ONNX_FILE))
    assert "4 calibration images" in proc.stdout and "top1 fp32" in proc.stdout
    proc = subprocess.run([sys.executable, script, "--model_dir", folder, "--calib_dir", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --calib_dir: no such folder"), proc.stderr
    assert "Traceback" not in proc.stderr


def test_calibration_batches_are_equal_for_the_histogram_calibrators():
    """Percentile and Entropy stack every batch's activations: a shorter last batch would fail inside onnxruntime."""
    assert [q.calibration_batch(n) for n in (1, 7, 16, 60, 64, 157, 256)] == [1, 7, 16, 15, 16, 1, 16]


def test_eval_on_openvino_runs_what_the_openvino_backend_runs(quantized, photos):
    """--eval_backend openvino compares the two files as -o Global.backend=openvino runs them (its graph rewrite,
    fp32 precision); the report says which runtime it measured."""
    from deploy.python.predictor import ONNX_FILE

    ops = q.read_info(quantized)["PreProcess"]["transform_ops"]
    arrays, kept, _ = q.preprocess_files(photos, ops, "photos")
    labels = [i % 5 for i in kept]
    fp32, int8 = os.path.join(quantized, ONNX_FILE), os.path.join(quantized, INT8_ONNX_FILE)
    on_ov = q.compare(fp32, int8, arrays, labels, threads=1, backend="openvino")
    on_ort = q.compare(fp32, int8, arrays, labels, threads=1)
    assert on_ov.top1_fp32 == on_ort.top1_fp32  # fp32 agrees across runtimes (1e-4, test_backends)
    ov_int8, ort_int8 = q.model_outputs(int8, arrays, "openvino", 1), q.model_outputs(int8, arrays)
    assert ov_int8.shape == ort_int8.shape and not np.array_equal(ov_int8, q.model_outputs(fp32, arrays, "openvino", 1))
    # the runtimes round differently (random weights, near-uniform scores: a few output steps of 1/255 apart)
    assert np.abs(ov_int8 - ort_int8).mean() < 0.1
    assert q.format_comparison(on_ov, len(kept), backend="openvino").startswith(f"eval on {len(kept)} images with openvino: ")
    assert q.format_comparison(on_ort, len(kept)).startswith(f"eval on {len(kept)} images: top1 fp32")
    with pytest.raises(DeployConfigError, match="--eval_backend: expected one of onnxruntime, openvino, got 'trt'"):
        q.check_eval_backend("trt")
