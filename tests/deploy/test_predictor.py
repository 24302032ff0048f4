"""The deploy predictor against the eager ppcls model: backends, flags, layouts, CLI, benchmark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import cv2
import numpy as np
import pytest

import ppcls.arch  # noqa: F401  (registers every model family before the parametrisation below)
from deploy.python import predictor as predictor_mod
from deploy.python.backends.paddle import build_paddle_config
from deploy.python.predictor import ClsPredictor, find_model, resolve_config
from deploy.python.utils import DeployConfigError, check_global
from ppcls.registry import MODELS
from tests.deploy.common import EVAL_OPS, SIZE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASSES = 5
FAMILIES = ["PPLCNet_x0_25", "ShuffleNetV2_x0_5", "SqueezeNet1_1", "MobileNeXt_x0_35", "PeleeNet", "ParNet_S"]
REGISTERED = [n for n in FAMILIES if n in MODELS]


def randomize(model, calibration, seed: int = 0) -> None:
    """Non-trivial weights, so outputs differ between photos and classes.

    BatchNorm affine parameters, biases and the classifier are drawn at random; the BatchNorm
    statistics come from one train-mode pass over ``calibration`` (momentum 0), so that the
    eval-mode network keeps its activations in range instead of collapsing to a constant.
    """
    import paddle
    from paddle.nn.layer.norm import _BatchNormBase

    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        shape = list(p.shape)
        if name.endswith(("_mean", "_variance")) or len(shape) > 2:
            continue  # statistics: calibrated below; convolutions: the model's own init
        if len(shape) == 2:
            v = rng.normal(0, np.sqrt(1.0 / shape[0]), shape)
        elif name.endswith("weight"):
            v = rng.uniform(0.5, 1.5, shape)
        else:
            v = rng.normal(0, 0.2, shape)
        p.set_value(v.astype("float32"))
    norms = [m for m in model.sublayers() if isinstance(m, _BatchNormBase)]
    saved = [m._momentum for m in norms]
    for m in norms:
        m._momentum = 0.0
    model.train()
    with paddle.no_grad():
        model(paddle.to_tensor(calibration))
    for m, momentum in zip(norms, saved, strict=True):
        m._momentum = momentum
        # a near-constant channel (std << |mean|) makes the BN folding of the export ill-conditioned
        # (x * huge - mean * huge in float32); keep |mean| / std below 30
        floor = paddle.maximum(m._mean * m._mean / 900.0, paddle.full_like(m._mean, 1e-3))
        m._variance.set_value(paddle.maximum(m._variance, floor))
    model.eval()


def build(name: str, photos: list[str], seed: int = 0):
    import paddle

    from ppcls.arch import build_model

    paddle.seed(seed)  # the convolutions keep the model's own (seeded) initialisation
    model = build_model({"name": name, "class_num": CLASSES})
    randomize(model, ppcls_inputs(photos), seed)
    return model


def export(model, name: str, folder: str, export_type: str = "paddle", labels: str | None = None) -> str:
    from ppcls.engine.export import export_model

    return export_model(model, folder, [3, SIZE, SIZE], name, CLASSES, transform_ops=EVAL_OPS, topk=3,
                        label_list_file=labels, export_type=export_type)


def ppcls_inputs(files: list[str]) -> np.ndarray:
    from ppcls.data.transforms import build_transforms
    from ppcls.engine.infer import preprocess

    return preprocess(files, build_transforms(EVAL_OPS))


def eager_scores(model, files: list[str]) -> np.ndarray:
    """What tools/infer.py computes: ppcls transforms, the eager model, softmax."""
    import paddle
    import paddle.nn.functional as F

    x = ppcls_inputs(files)
    with paddle.no_grad():
        return F.softmax(model(paddle.to_tensor(x)), axis=-1).numpy()


def make_predictor(folder: str, **global_cfg) -> ClsPredictor:
    return ClsPredictor({"Global": {"inference_model_dir": folder, "cpu_num_threads": 2, **global_cfg}})


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[str]:
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name in ("astronaut", "chelsea", "coffee"):
        path = str(folder / f"{name}.jpg")
        cv2.imwrite(path, getattr(data, name)()[:, :, ::-1])
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def lcnet(tmp_path_factory, photos):
    """PPLCNet_x0_25 (random weights) exported with ONNX and a label list; (model, folder)."""
    root = tmp_path_factory.mktemp("lcnet")
    labels = root / "labels.txt"
    labels.write_text("".join(f"{i} class {i}\n" for i in range(CLASSES)))
    model = build("PPLCNet_x0_25", photos)
    return model, export(model, "PPLCNet_x0_25", str(root / "model"), "onnx", str(labels))


# ----------------------------------------------------------------------------- parity


@pytest.mark.parametrize("name", REGISTERED)
def test_deploy_scores_equal_eager_model(name, photos, tmp_path):
    model = build(name, photos, seed=1)
    expected = eager_scores(model, photos)
    assert expected.std(axis=0).max() > 1e-3, "outputs should differ between photos"
    folder = export(model, name, str(tmp_path / name))
    for mkldnn in (True, False):
        pred = make_predictor(folder, enable_mkldnn=mkldnn, batch_size=len(photos))
        assert pred.backend.config.mkldnn_enabled() is mkldnn
        got = pred.predict_scores(photos)
        assert np.abs(got - expected).max() <= 1e-4, f"{name} oneDNN={mkldnn}: {np.abs(got - expected).max()}"
        top = pred.predict(photos)
        assert [r["class_ids"][0] for r in top] == expected.argmax(axis=1).tolist()


def test_onnxruntime_backend_equals_paddle_inference(lcnet, photos):
    model, folder = lcnet
    paddle_pred = make_predictor(folder, batch_size=3)
    ort_pred = make_predictor(folder, batch_size=3, backend="onnxruntime", cpu_num_threads=1)
    assert ort_pred.backend.name == "onnxruntime"
    assert ort_pred.backend.session.get_session_options().intra_op_num_threads == 1
    a, b = paddle_pred.predict_scores(photos), ort_pred.predict_scores(photos)
    assert np.abs(a - b).max() <= 1e-4
    assert np.abs(b - eager_scores(model, photos)).max() <= 1e-4
    res = ort_pred.predict(photos)
    assert res[0]["label_names"][0] == f"class {res[0]['class_ids'][0]}"


def test_onnx_only_folder_runs_with_onnxruntime(lcnet, photos, tmp_path):
    _, folder = lcnet
    only = tmp_path / "onnx_only"
    only.mkdir()
    for f in ("inference.onnx", "inference.yml", "label_list.txt"):
        (only / f).write_bytes(open(os.path.join(folder, f), "rb").read())
    pred = make_predictor(str(only))
    assert pred.backend.name == "onnxruntime"
    from deploy.python.utils import load_config

    shipped = load_config(os.path.join(REPO, "deploy", "configs", "inference_cls.yaml"),
                          [f"Global.inference_model_dir={only}"])
    assert ClsPredictor(shipped).backend.name == "onnxruntime"
    np.testing.assert_allclose(pred.predict_scores(photos), make_predictor(folder).predict_scores(photos), atol=1e-4)
    with pytest.raises(FileNotFoundError, match="backend=paddle needs inference.json or inference.pdmodel"):
        make_predictor(str(only), backend="paddle")
    with pytest.raises(DeployConfigError, match="Global.backend: expected one of paddle, onnxruntime, openvino, got 'trt'"):
        make_predictor(folder, backend="trt")


def test_paddle2_layout_is_accepted(photos, tmp_path):
    """A model saved with the old (non-PIR) program format: inference.pdmodel."""
    import paddle

    model = build("PPLCNet_x0_25", photos, seed=2)
    weights = str(tmp_path / "w.pdparams")
    paddle.save(model.state_dict(), weights)
    folder = str(tmp_path / "p2")
    script = (
        "import sys, paddle; sys.path.insert(0, sys.argv[1])\n"
        "from ppcls.arch import build_model\n"
        "from ppcls.engine.export import export_model\n"
        f"m = build_model({{'name': 'PPLCNet_x0_25', 'class_num': {CLASSES}}})\n"
        "m.set_state_dict(paddle.load(sys.argv[2]))\n"
        f"export_model(m, sys.argv[3], [3, {SIZE}, {SIZE}], 'PPLCNet_x0_25', {CLASSES}, transform_ops={EVAL_OPS!r})\n"
    )
    env = dict(os.environ, FLAGS_enable_pir_api="0")
    proc = subprocess.run([sys.executable, "-c", script, REPO, weights, folder], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.isfile(os.path.join(folder, "inference.pdmodel"))
    assert not os.path.isfile(os.path.join(folder, "inference.json"))
    assert find_model(folder).layout == "paddle2"
    expected = eager_scores(model, photos)
    for mkldnn in (True, False):
        got = make_predictor(folder, enable_mkldnn=mkldnn, batch_size=3).predict_scores(photos)
        assert np.abs(got - expected).max() <= 1e-4


def test_missing_model_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no inference model in {tmp_path}.*inference.json.*inference.pdmodel"):
        make_predictor(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no such folder"):
        make_predictor(str(tmp_path / "nope"))


# ----------------------------------------------------------------------------- config


def test_config_reflects_every_cpu_flag(lcnet):
    _, folder = lcnet
    files = find_model(folder)
    for mkldnn in (True, False):
        for threads in (1, 3):
            for ir in (True, False):
                g = check_global({"enable_mkldnn": mkldnn, "cpu_num_threads": threads, "ir_optim": ir})
                config = build_paddle_config(files, g, [3, SIZE, SIZE])
                assert config.mkldnn_enabled() is mkldnn
                assert config.cpu_math_library_num_threads() == threads
                assert config.ir_optim() is ir
                assert config.use_gpu() is False
    pred = make_predictor(folder, enable_mkldnn=False, cpu_num_threads=1, ir_optim=False)
    c = pred.backend.config
    assert (c.mkldnn_enabled(), c.cpu_math_library_num_threads(), c.ir_optim()) == (False, 1, False)


def test_precedence_model_yml_then_deploy_config_then_overrides(lcnet):
    _, folder = lcnet
    cfg = resolve_config({"Global": {"inference_model_dir": folder}})
    assert cfg["Global"]["input_shape"] == [3, SIZE, SIZE] and cfg["Global"]["model_name"] == "PPLCNet_x0_25"
    assert cfg["PreProcess"]["transform_ops"][0] == {"ResizeImage": {"resize_short": 72}}
    assert cfg["PostProcess"]["Topk"] == {"topk": 3, "class_id_map_file": os.path.join(folder, "label_list.txt")}
    ops = [{"ResizeImage": {"size": SIZE}}, {"NormalizeImage": {"order": "chw"}}]
    cfg = resolve_config({"Global": {"inference_model_dir": folder, "model_name": "mine"},
                          "PreProcess": {"transform_ops": ops}, "PostProcess": {"Topk": {"topk": 2}}})
    assert cfg["PreProcess"]["transform_ops"] == ops and cfg["Global"]["model_name"] == "mine"
    assert cfg["PostProcess"]["Topk"]["topk"] == 2 and cfg["PostProcess"]["Topk"]["class_id_map_file"]
    bad = make_predictor(folder, input_shape=[3, 32, 32])
    with pytest.raises(ValueError, match=r"preprocessing makes inputs of shape \[3, 64, 64\] but the model expects"):
        bad.predict_scores([np.zeros((80, 80, 3), np.uint8)])


def test_gpu_options_refused_on_cpu_only_build(lcnet):
    import paddle

    _, folder = lcnet
    assert not paddle.device.is_compiled_with_cuda()  # this machine's build; the refusal is what we test
    for key in ("use_gpu", "use_tensorrt", "use_fp16"):
        with pytest.raises(RuntimeError, match=f"Global.{key}=True needs a GPU build of Paddle.*CPU-only"):
            make_predictor(folder, **{key: True})


class RecordingConfig:
    """Stands in for paddle.inference.Config: records every call."""

    def __init__(self, *args):
        self.calls = [("__init__", args, {})]
        self._mkldnn = True

    def __getattr__(self, name):
        def record(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name == "disable_mkldnn":
                self._mkldnn = False
            return self._mkldnn if name == "mkldnn_enabled" else None

        return record

    def names(self):
        return [c[0] for c in self.calls]

    def call(self, name):
        return next(c for c in self.calls if c[0] == name)


def test_gpu_tensorrt_config_calls(lcnet):
    from paddle.inference import PrecisionType

    _, folder = lcnet
    files = find_model(folder)
    g = check_global({"use_gpu": True, "use_tensorrt": True, "use_fp16": True, "batch_size": 4, "gpu_mem": 500})
    cfg = build_paddle_config(files, g, [3, SIZE, SIZE], config_cls=RecordingConfig, compiled_with_cuda=lambda: True)
    assert cfg.call("__init__")[1] == (files.graph, files.params)
    assert cfg.call("enable_use_gpu")[1] == (500, 0, PrecisionType.Float32)
    trt = cfg.call("enable_tensorrt_engine")[2]
    assert trt["precision_mode"] == PrecisionType.Half and trt["use_static"] is True and trt["max_batch_size"] == 4
    assert cfg.call("set_optim_cache_dir")[1] == (os.path.join(folder, "_opt_cache"),)
    assert cfg.call("set_trt_dynamic_shape_info")[1] == (
        {"x": [1, 3, SIZE, SIZE]}, {"x": [4, 3, SIZE, SIZE]}, {"x": [4, 3, SIZE, SIZE]})
    assert "disable_gpu" not in cfg.names() and "enable_mkldnn" not in cfg.names()
    assert "enable_memory_optim" not in cfg.names()  # breaks create_predictor on PIR models in Paddle 3.3

    # fp32 TensorRT with a collected shape file: the tuned dynamic shapes are used instead
    shape_file = os.path.join(folder, "shape_range_info.pbtxt")
    open(shape_file, "w").close()
    try:
        g = check_global({"use_gpu": True, "use_tensorrt": True})
        cfg = build_paddle_config(files, g, None, config_cls=RecordingConfig, compiled_with_cuda=lambda: True)
        assert cfg.call("enable_tensorrt_engine")[2]["precision_mode"] == PrecisionType.Float32
        assert cfg.call("enable_tuned_tensorrt_dynamic_shape")[1] == (shape_file, True)
        assert "set_trt_dynamic_shape_info" not in cfg.names()
    finally:
        os.remove(shape_file)

    # GPU without TensorRT, fp16: mixed precision on the GPU
    g = check_global({"use_gpu": True, "use_fp16": True})
    cfg = build_paddle_config(files, g, None, config_cls=RecordingConfig, compiled_with_cuda=lambda: True)
    assert cfg.call("enable_use_gpu")[1][2] == PrecisionType.Half and "enable_tensorrt_engine" not in cfg.names()
    # TensorRT without use_gpu on a GPU build is an error, not a silent CPU run
    with pytest.raises(DeployConfigError, match="set Global.use_gpu=True"):
        build_paddle_config(files, check_global({"use_tensorrt": True}), None, config_cls=RecordingConfig,
                            compiled_with_cuda=lambda: True)
    # CPU: oneDNN off is said explicitly
    cfg = build_paddle_config(files, check_global({"enable_mkldnn": False}), None, config_cls=RecordingConfig)
    assert "disable_mkldnn" in cfg.names() and "disable_gpu" in cfg.names()


# ----------------------------------------------------------------------------- benchmark


def test_benchmark_report_without_auto_log(lcnet, photos, monkeypatch):
    _, folder = lcnet
    monkeypatch.setitem(sys.modules, "auto_log", None)  # `import auto_log` raises ImportError
    pred = make_predictor(folder, enable_benchmark=True, batch_size=2)
    assert pred._auto_log is None
    pred.warmup(photos[:2], 2)
    assert pred.timer.batches == []  # warm-up is not timed
    pred.predict(photos[:2])
    pred.predict(photos[2:])
    s = pred.benchmark_summary()
    assert s["data_num"] == 3 and s["batches"] == 2 and s["qps"] > 0
    assert s["model_name"] == "PPLCNet_x0_25" and s["backend"] == "paddle" and s["precision"] == "fp32"
    assert s["cpu_math_library_num_threads"] == 2 and s["batch_size"] == 2 and s["enable_mkldnn"] is True
    text = pred.benchmark_report()
    for field in ("preprocess_time(ms)", "inference_time(ms)", "postprocess_time(ms)", "QPS", "batch_size: 2",
                  "model_name: PPLCNet_x0_25", "precision: fp32", "cpu_math_library_num_threads: 2"):
        assert field in text


def test_benchmark_uses_auto_log_when_installed(lcnet, photos, monkeypatch):
    _, folder = lcnet
    events = []

    class Times:
        def start(self):
            events.append("start")

        def stamp(self):
            events.append("stamp")

        def end(self, stamp=False):
            events.append(f"end:{stamp}")

    class AutoLogger:
        def __init__(self, **kwargs):
            events.append(kwargs)
            self.times = Times()

        def report(self):
            events.append("report")

    monkeypatch.setitem(sys.modules, "auto_log", types.SimpleNamespace(AutoLogger=AutoLogger))
    pred = make_predictor(folder, enable_benchmark=True, backend="onnxruntime")
    pred.predict(photos[:1])
    pred.benchmark_report()
    kwargs = events[0]
    assert kwargs["model_name"] == "PPLCNet_x0_25" and kwargs["batch_size"] == 1
    assert kwargs["data_shape"] == [3, SIZE, SIZE] and kwargs["model_precision"] == "fp32"
    assert kwargs["inference_config"]["cpu_math_library_num_threads"] == 2
    assert events[1:] == ["start", "stamp", "stamp", "end:True", "report"]


# ----------------------------------------------------------------------------- the command line


def test_predict_cls_command_line(lcnet, photos, tmp_path):
    _, folder = lcnet
    images = tmp_path / "imgs"
    (images / "sub").mkdir(parents=True)
    for p in photos:
        (images / "sub" / os.path.basename(p)).write_bytes(open(p, "rb").read())
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    results = tmp_path / "out" / "results.jsonl"
    sorted_dir = tmp_path / "sorted"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "deploy", "python", "predict_cls.py"),
         "-c", os.path.join(REPO, "deploy", "configs", "inference_cls.yaml"),
         "-o", f"Global.inference_model_dir={folder}", "-o", f"Global.infer_imgs={images}",
         "-o", "Global.batch_size=2", "-o", "Global.enable_benchmark=True", "-o", "Global.enable_mkldnn=False",
         "-o", "Global.workers=2", "-o", f"Global.save_results={results}", "-o", f"PostProcess.SavePreLabel.save_dir={sorted_dir}",
         "-o", "Global.max_bad_image_ratio=0.5"],  # 1 of 4 is broken: accepted here, reported
        capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "broken.jpg" in proc.stderr  # reported, not silently dropped
    assert "warning: 1 of 4 input file(s) (25.0%) could not be read" in proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if "class id(s)" in ln]
    assert len(lines) == 3
    # named by the path relative to the folder given (base names alone are ambiguous across sub-folders)
    assert all(ln.split(":\t")[0] in {f"sub/{os.path.basename(p)}" for p in photos} for ln in lines)
    assert "score(s): [" in lines[0] and "label_name(s): ['class " in lines[0]
    rows = [json.loads(x) for x in results.read_text().splitlines()]
    pred = make_predictor(folder, batch_size=3, enable_mkldnn=False)
    ordered = sorted(str(images / "sub" / os.path.basename(p)) for p in photos)
    expected = pred.predict(ordered)
    assert [r["class_ids"] for r in rows] == [e["class_ids"] for e in expected]
    assert np.abs(np.array([r["scores"] for r in rows]) - np.array([e["scores"] for e in expected])).max() <= 1e-4
    for field in ("preprocess_time(ms)", "inference_time(ms)", "QPS", "enable_mkldnn: False", "data_num: 3",
                  "workers: 2"):
        assert field in proc.stdout
    copied = sorted(os.path.join(d, f) for d, _, fs in os.walk(sorted_dir) for f in fs)
    assert len(copied) == 3
    for row in rows:
        assert os.path.isfile(sorted_dir / str(row["class_ids"][0]) / os.path.basename(row["file_name"]))

    bad = subprocess.run(
        [sys.executable, os.path.join(REPO, "deploy", "python", "predict_cls.py"),
         "-o", f"Global.inference_model_dir={tmp_path / 'nothing'}", "-o", f"Global.infer_imgs={images}"],
        capture_output=True, text=True, timeout=120,
    )
    assert bad.returncode == 2 and "no such folder" in bad.stderr and "Traceback" not in bad.stderr


def test_predictor_module_has_no_paddle_import_for_onnx(lcnet):
    """The ONNX paths build without touching paddle (deploy can run with onnxruntime or openvino alone)."""
    _, folder = lcnet
    assert not hasattr(predictor_mod, "paddle")
    for backend in ("onnxruntime", "openvino"):
        pred = make_predictor(folder, backend=backend)
        assert pred.backend.describe()["backend"] == backend
    script = (  # a fresh interpreter: this one imported paddle for the export
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from deploy.python.predictor import ClsPredictor\n"
        "for b in ('onnxruntime', 'openvino'):\n"
        "    ClsPredictor({'Global': {'inference_model_dir': sys.argv[2], 'backend': b}})\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'paddle'], 'paddle was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, REPO, folder], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
