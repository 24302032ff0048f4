"""The deploy backends behind one interface: OpenVINO parity, the interface itself, Global.precision."""

from __future__ import annotations

import os
import shutil
import sys
import threading

import cv2
import numpy as np
import pytest

from deploy.python.backends import BACKENDS, DESCRIBE_KEYS, Backend, backend_class
from deploy.python.errors import DeployConfigError, DeployFileError, MissingPackageError, ModelLoadError
from deploy.python.predictor import ClsPredictor, find_model
from deploy.python.stream import predict_files
from deploy.python.utils import check_global
from tests.deploy.test_predictor import lcnet, make_predictor  # noqa: F401  (lcnet: a fixture)

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[str]:
    """Six real photos (the first three are test_predictor's): enough for a top-1 agreement count."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in PHOTOS:
        path = str(folder / f"{name}.jpg")
        cv2.imwrite(path, getattr(data, name)()[:, :, ::-1])
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def int8_folder(lcnet, photos, tmp_path_factory) -> str:  # noqa: F811
    """The lcnet export plus an inference_int8.onnx quantized statically by ONNX Runtime (QDQ, the photos as
    calibration arrays), standing in for what tools/quantize.py writes."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    _, folder = lcnet
    out = tmp_path_factory.mktemp("int8") / "model"
    shutil.copytree(folder, out)
    arrays = list(make_predictor(str(out), batch_size=len(photos), backend="onnxruntime").prepare(photos).copy())

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"x": a[None].copy()} for a in arrays])

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(out / "inference.onnx"), str(out / "inference_int8.onnx"), Reader(),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return str(out)


# ----------------------------------------------------------------------------- OpenVINO parity


def test_openvino_scores_equal_paddle_inference(lcnet, photos):  # noqa: F811
    _, folder = lcnet
    paddle_pred = make_predictor(folder, batch_size=3)
    ov_pred = make_predictor(folder, batch_size=3, backend="openvino", cpu_num_threads=1)
    assert ov_pred.backend.name == "openvino" and ov_pred.backend.describe()["cpu_math_library_num_threads"] == 1
    expected = paddle_pred.predict_scores(photos[:3])
    assert expected.std(axis=0).max() > 1e-3, "outputs should differ between photos"
    np.testing.assert_allclose(ov_pred.predict_scores(photos[:3]), expected, rtol=0, atol=1e-4)  # batch 3
    for i, p in enumerate(photos[:3]):  # batch 1 on a model configured for 3: the batch dimension stays free
        np.testing.assert_allclose(ov_pred.predict_scores([p])[0], expected[i], rtol=0, atol=1e-4)
    top = ov_pred.predict(photos[:3])
    assert [r["class_ids"][0] for r in top] == expected.argmax(axis=1).tolist()
    assert top[0]["label_names"][0] == f"class {top[0]['class_ids'][0]}"


def test_openvino_workers_over_a_folder_keep_file_order(lcnet, photos):  # noqa: F811
    _, folder = lcnet
    expected = make_predictor(folder, batch_size=len(photos)).predict(photos)
    pred = make_predictor(folder, backend="openvino", batch_size=2, workers=2, cpu_num_threads=1)
    assert pred.backend.compiled.get_property("NUM_STREAMS") == 2  # the two workers run at once
    results, skipped = predict_files(pred, photos)  # batches of 2, 2, 2 over two worker threads
    assert skipped == []
    assert [r["file_name"] for r in results] == photos
    assert [r["class_ids"] for r in results] == [e["class_ids"] for e in expected]
    np.testing.assert_allclose([r["scores"] for r in results], [e["scores"] for e in expected], atol=1e-4)


# ----------------------------------------------------------------------------- the interface


@pytest.mark.parametrize("name", list(BACKENDS))
def test_every_backend_satisfies_the_interface(name, lcnet, photos):  # noqa: F811
    _, folder = lcnet
    pred = make_predictor(folder, backend=name, cpu_num_threads=1, batch_size=3)
    backend = pred.backend
    assert isinstance(backend, Backend) and isinstance(backend, backend_class(name)) and backend.name == name
    info = backend.describe()
    assert tuple(info) == DESCRIBE_KEYS  # exactly the declared keys, in the declared order
    assert info["backend"] == name and info["precision"] == "fp32" and info["runtime_device"] == "cpu"
    assert info["model_file"] == ("inference.json" if name == "paddle" else "inference.onnx")
    summary = pred.benchmark_summary()
    assert all(summary[k] == info[k] for k in DESCRIBE_KEYS)

    batches = [pred.prepare(photos[i:i + 3]).copy() for i in (0, 3)]
    expected = [backend.run(b) for b in batches]
    clones = [backend.clone(), backend.clone()]
    assert all(isinstance(c, Backend) and tuple(c.describe()) == DESCRIBE_KEYS for c in clones)
    got: list[list[np.ndarray]] = [[], []]
    start = threading.Barrier(2)

    def work(i: int) -> None:
        start.wait()
        for _ in range(10):
            got[i].append(clones[i].run(batches[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in (0, 1):
        assert len(got[i]) == 10
        for out in got[i]:
            np.testing.assert_array_equal(out, expected[i])


def test_the_backend_table_is_the_config_s_list():
    from deploy.python import utils

    assert utils.BACKENDS == tuple(BACKENDS) == ("paddle", "onnxruntime", "openvino")
    with pytest.raises(DeployConfigError, match="Global.backend: expected one of paddle, onnxruntime, openvino, got 'trt'"):
        check_global({"backend": "trt"})


# ----------------------------------------------------------------------------- precision int8


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_int8_runs_the_quantized_model(name, int8_folder, photos):
    fp32 = make_predictor(int8_folder, backend=name, batch_size=len(photos))
    int8 = make_predictor(int8_folder, backend=name, batch_size=len(photos), precision="int8")
    assert fp32.files.onnx_int8 == os.path.join(int8_folder, "inference_int8.onnx")
    info = int8.backend.describe()
    assert info["precision"] == "int8" and info["model_file"] == "inference_int8.onnx"
    assert fp32.backend.describe()["model_file"] == "inference.onnx"
    a, b = fp32.predict_scores(photos), int8.predict_scores(photos)
    assert not np.array_equal(a, b)  # another model ran
    # random weights give near-uniform scores over 5 classes (top-2 margins of a few 0.01), so top-1 may flip
    assert np.abs(a - b).max() < 0.2, np.abs(a - b).max()
    agree = int((a.argmax(1) == b.argmax(1)).sum())
    assert agree >= 4, f"top-1 agrees on {agree} of {len(photos)} photos"
    # PaddleClas's switch means the same; the benchmark report names what ran
    same = make_predictor(int8_folder, backend=name, use_int8=True, enable_benchmark=True)
    same.predict(photos[:1])
    report = same.benchmark_report()
    assert "precision: int8" in report and "(inference_int8.onnx)" in report


# ----------------------------------------------------------------------------- refusals


def test_int8_on_paddle_is_refused_with_the_way_out(int8_folder):
    with pytest.raises(DeployConfigError, match="precision=int8 runs the ONNX model quantized by tools/quantize.py: "
                                                "use -o Global.backend=onnxruntime or openvino"):
        make_predictor(int8_folder, precision="int8")


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_int8_without_the_file_names_path_and_command(name, lcnet):  # noqa: F811
    _, folder = lcnet
    path = os.path.join(folder, "inference_int8.onnx")
    with pytest.raises(DeployFileError) as e:
        make_predictor(folder, backend=name, precision="int8")
    assert path in str(e.value)
    assert ("python tools/quantize.py -c CONFIG -o Global.pretrained_model=... "
            f"-o Global.save_inference_dir={folder}") in str(e.value)


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("how", [{"precision": "fp16"}, {"use_fp16": True}])
def test_fp16_refused_by_the_onnx_backends(name, how, lcnet):  # noqa: F811
    _, folder = lcnet
    with pytest.raises(DeployConfigError, match=f"Global.precision=fp16 .* not .* by the {name} backend"):
        make_predictor(folder, backend=name, **how)


def test_precision_contradictions_and_bad_values():
    with pytest.raises(DeployConfigError, match=r"Global.precision=fp32 contradicts Global.use_int8=True"):
        check_global({"precision": "fp32", "use_int8": True})
    with pytest.raises(DeployConfigError, match=r"Global.precision=int8 contradicts Global.use_fp16=True"):
        check_global({"precision": "int8", "use_fp16": True})
    with pytest.raises(DeployConfigError, match="Global.use_fp16=True and Global.use_int8=True contradict"):
        check_global({"use_fp16": True, "use_int8": True})
    with pytest.raises(DeployConfigError, match="Global.precision: expected one of fp32, fp16, int8, got 'bf16'"):
        check_global({"precision": "bf16"})
    assert check_global({})["precision"] == "fp32"
    g = check_global({"use_int8": True})
    assert (g["precision"], g["use_int8"], g["use_fp16"]) == ("int8", True, False)
    g = check_global({"precision": "FP16"})
    assert (g["precision"], g["use_fp16"]) == ("fp16", True)


def test_openvino_refuses_gpu_and_names_a_bad_model(lcnet, tmp_path):  # noqa: F811
    _, folder = lcnet
    with pytest.raises(RuntimeError, match="Global.use_gpu=True with backend openvino: only OpenVINO's CPU device"):
        make_predictor(folder, backend="openvino", use_gpu=True)
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    (bad / "inference.onnx").write_bytes(b"\x08\x07not a model")
    with pytest.raises(ModelLoadError, match=f"OpenVINO cannot load the model {bad / 'inference.onnx'}"):
        make_predictor(str(bad), backend="openvino")


def test_openvino_missing_names_the_pip_command(lcnet, monkeypatch):  # noqa: F811
    _, folder = lcnet
    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` raises ImportError
    with pytest.raises(MissingPackageError, match="Global.backend=openvino needs the openvino package: "
                                                  "pip install openvino"):
        make_predictor(folder, backend="openvino")


def test_find_model_learns_the_int8_file(int8_folder, tmp_path):
    assert find_model(int8_folder).onnx_int8 == os.path.join(int8_folder, "inference_int8.onnx")
    only = tmp_path / "onnx_only"
    only.mkdir()
    for f in ("inference.onnx", "inference_int8.onnx", "inference.yml", "label_list.txt"):
        shutil.copy(os.path.join(int8_folder, f), only / f)
    pred = ClsPredictor({"Global": {"inference_model_dir": str(only), "precision": "int8"}})
    assert pred.backend.name == "onnxruntime"  # an ONNX-only folder still defaults to ONNX Runtime
    assert pred.backend.describe()["model_file"] == "inference_int8.onnx"


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_openvino_fuses_hardswish_into_the_convolutions(precision, int8_folder):
    """The backend reads the ONNX through onnx_graph.fuse_hardswish: no separate HardSigmoid/Mul layers are left
    but the squeeze-and-excitation gates (PPLCNet_x0_25 has two)."""
    pred = make_predictor(int8_folder, backend="openvino", precision=precision)
    runtime = pred.backend.compiled.get_runtime_model()
    layers = [op.get_rt_info()["layerType"].astype(str) for op in runtime.get_ops()]
    assert layers.count("Convolution") > 10 and layers.count("Math") <= 2, sorted(set(layers))
