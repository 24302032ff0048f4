"""The predictor and the service as a user meets them: unreadable inputs, documented overrides,
user errors against bugs, label lists that do not fit the model (issue 14)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import types

import cv2
import numpy as np
import pytest
import yaml

from deploy.python import predict_cls
from deploy.python.errors import (
    DeployConfigError,
    DeployEnvironmentError,
    DeployUserError,
    ImageInputError,
    format_bug,
    run_cli,
)
from deploy.python.predictor import ClsPredictor
from deploy.python.utils import GLOBAL_KEYS, load_config, load_yaml
from tests.deploy.common import EVAL_OPS, SIZE

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = os.path.join(REPO, "deploy", "configs", "inference_cls.yaml")
PREDICT = os.path.join(REPO, "deploy", "python", "predict_cls.py")
CLASSES = 5
TOPK = 2


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> str:
    from skimage import data

    path = str(tmp_path_factory.mktemp("photo") / "chelsea.jpg")
    cv2.imwrite(path, data.chelsea()[:, :, ::-1])
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, photo) -> str:
    """PPLCNet_x0_25 (random weights that tell images apart, 5 classes) exported with ONNX and quantized to INT8
    (calibrated on the photo), a label list, topk 2."""
    from deploy.python.quantize import QuantOptions, load_calibration, quantize_folder
    from ppcls.engine.export import export_model
    from tests.deploy.test_predictor import build

    root = tmp_path_factory.mktemp("model")
    labels = root / "labels.txt"
    labels.write_text("".join(f"{i} class {i}\n" for i in range(CLASSES)))
    model = build("PPLCNet_x0_25", [photo])
    folder = export_model(model, str(root / "m"), [3, SIZE, SIZE], "PPLCNet_x0_25", CLASSES, transform_ops=EVAL_OPS,
                          topk=TOPK, label_list_file=str(labels), export_type="onnx")
    quantize_folder(folder, load_calibration(folder, [photo], [0], 1, "the photo"), QuantOptions())
    return folder


def run_predict(*overrides: str, cwd: str | None = None, config: str = SHIPPED) -> subprocess.CompletedProcess:
    args = [sys.executable, PREDICT, "-c", config]
    for o in overrides:
        args += ["-o", o]
    return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=cwd)


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


# ----------------------------------------------------------------------------- 1. unreadable inputs


def test_mostly_undecodable_folder_fails_with_a_bounded_summary(model_dir, photo, tmp_path):
    """1 good image and 1,000 empty files: exit 1, one error line naming the key, a count and a few paths."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "good.jpg").write_bytes(open(photo, "rb").read())
    for i in range(1000):
        (folder / f"empty{i:04d}.jpg").write_bytes(b"")
    proc = run_predict(f"Global.inference_model_dir={model_dir}", f"Global.infer_imgs={folder}",
                       "Global.backend=onnxruntime", "Global.batch_size=8")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert len([ln for ln in proc.stdout.splitlines() if "class id(s)" in ln]) == 1  # the good one still printed
    (line,) = error_lines(proc.stderr)
    assert "1000 of 1001 input file(s)" in line and "Global.max_bad_image_ratio=0.01" in line
    assert "empty0000.jpg" in line and "and 995 more" in line and "empty0999.jpg" not in line
    assert len(line) < 800 and len(proc.stderr) < 5000, len(proc.stderr)  # was 179 KB of paths and warnings

    # a looser limit accepts them, with a bounded warning; a bad limit is a config error
    ok = run_predict(f"Global.inference_model_dir={model_dir}", f"Global.infer_imgs={folder}",
                     "Global.backend=onnxruntime", "Global.batch_size=8", "Global.max_bad_image_ratio=1.0")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "warning: 1000 of 1001 input file(s)" in ok.stderr and "and 995 more" in ok.stderr
    bad = run_predict(f"Global.inference_model_dir={model_dir}", f"Global.infer_imgs={folder}",
                      "Global.max_bad_image_ratio=2")
    assert bad.returncode == 2 and "Global.max_bad_image_ratio: expected a fraction in [0, 1]" in bad.stderr


def test_bad_image_ratio_limit(model_dir, photo, tmp_path, capsys):
    files = [f"f{i}.jpg" for i in range(10)]
    predict_cls.check_bad_images([], 10, 0.01)
    predict_cls.check_bad_images(files[:1], 100, 0.01)  # 1 % is not more than 1 %
    assert "warning: 1 of 100 input file(s) (1.0%)" in capsys.readouterr().err
    with pytest.raises(DeployUserError, match=r"2 of 100 input file\(s\) \(2.0%\).*more than Global.max_bad_image_ratio"):
        predict_cls.check_bad_images(files[:2], 100, 0.01)
    with pytest.raises(DeployUserError) as e:
        predict_cls.check_bad_images(files, 10, 1.0)  # nothing readable is a failure whatever the limit
    assert e.value.exit_code == 1 and "f0.jpg, f1.jpg, f2.jpg, f3.jpg, f4.jpg and 5 more" in str(e.value)
    # within the limit: exit 0, the good results printed
    folder = tmp_path / "few"
    folder.mkdir()
    for i in range(3):
        (folder / f"ok{i}.jpg").write_bytes(open(photo, "rb").read())
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    proc = run_predict(f"Global.inference_model_dir={model_dir}", f"Global.infer_imgs={folder}",
                       "Global.backend=onnxruntime", "Global.max_bad_image_ratio=0.3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "warning: 1 of 4 input file(s) (25.0%)" in proc.stderr and "broken.jpg" in proc.stderr


def test_left_out_extensions_are_reported(model_dir, photo, tmp_path, caplog):
    from deploy.python.utils import list_images

    (tmp_path / "a.jpg").write_bytes(open(photo, "rb").read())
    (tmp_path / "imageNotFound.gif").write_bytes(b"GIF89a")
    (tmp_path / ".hidden").write_text("x")
    with caplog.at_level("WARNING", logger="deploy.python.files"):
        assert list_images(str(tmp_path)) == [str(tmp_path / "a.jpg")]
    assert "left out 1 file(s)" in caplog.text and "imageNotFound.gif" in caplog.text and ".hidden" not in caplog.text


# ----------------------------------------------------------------------------- 2. documented overrides

DOCS = ("README.md", os.path.join("deploy", "README.md"))
OVERRIDE = re.compile(r"-o\s+((?:Global|PreProcess|PostProcess)\.[\w.]+)=(\{[^}`]*\}|\[[^\]`]*\]|[^\s`\]]+)")
PATH_KEYS = {"Global.inference_model_dir", "Global.infer_imgs", "Global.save_results",
             "PostProcess.SavePreLabel.save_dir", "Global.trt_shape_range_file", "Global.save_log_path"}
GPU_KEYS = {"Global.use_gpu", "Global.use_tensorrt", "Global.use_fp16"}


def documented_overrides() -> list[tuple[str, str]]:
    """Every ``-o`` of a predictor key (Global keys of deploy, PreProcess, PostProcess) in the two READMEs."""
    found = set()
    for doc in DOCS:
        with open(os.path.join(REPO, doc), encoding="utf-8") as f:
            for key, value in OVERRIDE.findall(f.read()):
                section, _, rest = key.partition(".")
                if section == "Global" and rest not in GLOBAL_KEYS:
                    continue  # a training or export key (Global.epochs, Global.export_type, ...)
                found.add((key, value))
    return sorted(found)


def test_the_docs_document_the_overrides_tested_here():
    keys = {k for k, _ in documented_overrides()}
    for key in ("PreProcess.transform_ops.ResizeImage.resize_short", "PostProcess.Topk.topk", "Global.backend",
                "Global.workers", "PostProcess.SavePreLabel.save_dir", "Global.max_bad_image_ratio"):
        assert key in keys, sorted(keys)


@pytest.mark.parametrize("key, value", documented_overrides())
def test_documented_override_works_with_the_shipped_config(model_dir, photo, tmp_path, key, value):
    """Each documented override, on top of the shipped deploy config and the model's inference.yml."""
    import paddle

    if key in PATH_KEYS:
        value = {"Global.inference_model_dir": model_dir, "Global.infer_imgs": photo}.get(key, str(tmp_path / "out"))
    base = [f"Global.inference_model_dir={model_dir}", f"Global.infer_imgs={photo}"]
    if key == "Global.precision" and value == "int8":  # documented with an ONNX backend (Paddle Inference refuses it)
        base.append("Global.backend=onnxruntime")
    cfg = load_config(SHIPPED, base + [f"{key}={value}"])
    parsed = yaml.safe_load(value)
    if key in GPU_KEYS and parsed is True and not paddle.device.is_compiled_with_cuda():
        with pytest.raises(DeployEnvironmentError, match=f"{key}=True needs a GPU build of Paddle"):
            ClsPredictor(cfg)
        return
    pred = ClsPredictor(cfg)
    (result,) = pred.predict([photo])
    model_ops = load_yaml(os.path.join(model_dir, "inference.yml"))["PreProcess"]["transform_ops"]
    section, _, rest = key.partition(".")
    if section == "Global":
        assert pred.config["Global"][rest] == parsed
        if rest == "backend":
            assert pred.backend.name == parsed
    elif section == "PreProcess":
        _, op, *arg = rest.split(".")
        ops = pred.config["PreProcess"]["transform_ops"]
        index = next(i for i, o in enumerate(ops) if op in o)
        assert ops[:index] + ops[index + 1:] == model_ops[:index] + model_ops[index + 1:]  # the rest from the model
        if not arg:  # the op's arguments replaced
            assert ops[index] == {op: parsed}
        else:  # one argument changed, the others from the model
            assert ops[index][op][arg[0]] == parsed
            assert {k: v for k, v in ops[index][op].items() if k != arg[0]} == \
                {k: v for k, v in model_ops[index][op].items() if k != arg[0]}
    elif key == "PostProcess.Topk.topk":
        assert len(result["class_ids"]) == parsed
        assert result["label_names"] == [f"class {i}" for i in result["class_ids"]]  # the model's label list kept
    elif key == "PostProcess.SavePreLabel.save_dir":
        assert os.path.isfile(os.path.join(value, str(result["class_ids"][0]), os.path.basename(photo)))
    else:
        pytest.fail(f"no check written for the documented override {key}")


def test_resize_short_override_from_the_readme_command_line(model_dir, photo, tmp_path):
    """The exact case of the issue: the shipped config (no PreProcess), the model's transforms, one op's argument."""
    proc = run_predict(f"Global.inference_model_dir={model_dir}", f"Global.infer_imgs={photo}",
                       "PreProcess.transform_ops.ResizeImage.resize_short=256")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "chelsea.jpg:\tclass id(s):" in proc.stdout
    # the override changed the preprocessing (a 256 short side, then the 64 crop): other scores than without it
    plain = run_predict(f"Global.inference_model_dir={model_dir}", f"Global.infer_imgs={photo}")
    assert plain.returncode == 0 and plain.stdout != proc.stdout
    # a wrong op name names the ops that exist and where the list came from
    typo = run_predict(f"Global.inference_model_dir={model_dir}", f"Global.infer_imgs={photo}",
                       "PreProcess.transform_ops.Resize.resize_short=256")
    assert typo.returncode == 2 and "Traceback" not in typo.stderr
    (line,) = error_lines(typo.stderr)
    assert "no item 'Resize' in PreProcess.transform_ops" in line and "ResizeImage" in line and "inference.yml" in line


def test_op_overrides_edit_the_list_in_use(model_dir, photo, tmp_path):
    from deploy.python.predictor import resolve_config

    g = [f"Global.inference_model_dir={model_dir}"]
    # on the model's list, by name and by index; the whole list replaced by a later override wins
    cfg = resolve_config(load_config(SHIPPED, g + ["PreProcess.transform_ops.CropImage.size=48",
                                                   "PreProcess.transform_ops.0.resize_short=100"]))
    ops = cfg["PreProcess"]["transform_ops"]
    assert ops[0] == {"ResizeImage": {"resize_short": 100}} and ops[1] == {"CropImage": {"size": 48}}
    own = [{"ResizeImage": {"size": 80}}, {"NormalizeImage": {"order": "chw"}}]
    cfg = resolve_config(load_config(SHIPPED, g + ["PreProcess.transform_ops.CropImage.size=48",
                                                   f"PreProcess.transform_ops={json.dumps(own)}"]))
    assert cfg["PreProcess"]["transform_ops"] == own
    # on the deploy config's own list, and an op's arguments replaced by name
    path = tmp_path / "with_ops.yaml"
    path.write_text(yaml.safe_dump({"Global": {"inference_model_dir": model_dir},
                                    "PreProcess": {"transform_ops": own}}))
    cfg = resolve_config(load_config(str(path), ["PreProcess.transform_ops.ResizeImage={resize_short: 70}"]))
    assert cfg["PreProcess"]["transform_ops"][0] == {"ResizeImage": {"resize_short": 70}}
    # the model's inference.yml itself is not changed
    assert load_yaml(os.path.join(model_dir, "inference.yml"))["PreProcess"]["transform_ops"][1] == {
        "CropImage": {"size": SIZE}}
    # the service takes the same overrides
    from deploy.serving.server import build_predictors

    (pred,) = build_predictors(model_dir, SHIPPED, ["PreProcess.transform_ops.ResizeImage.resize_short=256"], 1)
    assert pred.config["PreProcess"]["transform_ops"][0] == {"ResizeImage": {"resize_short": 256}}


# ----------------------------------------------------------------------------- 3. user errors and bugs


def test_a_bug_keeps_its_traceback_and_says_so(model_dir, photo, monkeypatch, capsys):
    def broken(*_a, **_k):
        raise KeyError("internal key that a bug looked up")  # was in USER_ERRORS: one line, exit 2

    monkeypatch.setattr(predict_cls, "predict_files", broken)
    with pytest.raises(SystemExit) as e:
        predict_cls.run(["-c", SHIPPED, "-o", f"Global.inference_model_dir={model_dir}",
                         "-o", f"Global.infer_imgs={photo}"])
    err = capsys.readouterr().err
    assert e.value.code == 3
    assert "Traceback (most recent call last)" in err and "KeyError" in err and "this is a bug" in err


@pytest.mark.parametrize("exc, code, one_line", [
    (DeployConfigError("Global.batch_size: expected int"), 2, True),
    (FileNotFoundError(2, "No such file or directory", "/x/y.yaml"), 2, True),
    (PermissionError(13, "Permission denied", "/x/out.jsonl"), 2, True),
    (ValueError("a shape error inside Paddle"), 3, False),
    (RuntimeError("(PreconditionNotMet) an operator failed"), 3, False),
    (TypeError("unsupported operand"), 3, False),
])
def test_run_cli_sorts_user_errors_from_bugs(exc, code, one_line, capsys):
    def main(_argv):
        raise exc

    with pytest.raises(SystemExit) as e:
        run_cli(main, [])
    err = capsys.readouterr().err
    assert e.value.code == code
    assert ("Traceback" not in err and len(err.strip().splitlines()) == 1) if one_line else "this is a bug" in err
    if isinstance(exc, OSError):
        assert err.startswith(f"error: {exc.filename}: {exc.strerror}")


def test_error_text_is_bounded(model_dir, photo, tmp_path):
    # a huge value in an override
    huge = run_predict(f"Global.inference_model_dir={model_dir}", f"Global.infer_imgs={photo}",
                       "Global.batch_size=[" + ",".join(map(str, range(15_000))) + "]")
    assert huge.returncode == 2 and "Global.batch_size: expected int" in huge.stderr
    assert len(error_lines(huge.stderr)[0]) < 300
    # a "billion laughs" config: 9^9 items if expanded
    levels = ["  l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("PostProcess:\n" + "\n".join(levels) + "\nGlobal:\n  infer_imgs: *l8\n  batch_size: *l8\n")
    t0 = time.time()
    proc = run_predict(f"Global.inference_model_dir={model_dir}", config=str(bomb))
    assert time.time() - t0 < 60
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert len(line) < 400 and ("Global.infer_imgs" in line or "Global.batch_size" in line)
    # a bug's traceback is bounded too (a tensor printed into an exception message)
    try:
        raise ValueError("x" * 1_000_000)
    except ValueError as e:
        assert len(format_bug(e)) < 5000


def test_service_answers_a_bug_with_500_and_a_bad_image_with_4xx():
    from deploy.python.preprocess import ImageSizeError
    from deploy.serving.server import create_app

    class Fake:
        """Fails while preparing the image (on the request's thread) or while running it (predictor thread)."""

        config = {"Global": {"model_name": "fake"}}
        backend = types.SimpleNamespace(name="fake")

        def __init__(self, stage, exc):
            self.stage, self.exc = stage, exc

        def prepare_one(self, image):
            if self.stage == "prepare":
                raise self.exc
            return np.zeros((3, 4, 4), np.float32)

        def run_prepared(self, batch, file_names, pre_seconds):
            raise self.exc

    ok, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    for stage, exc, status in [("prepare", ImageSizeError("CropImage: image 8x8 is smaller than the crop 64x64"), 422),
                               ("prepare", ValueError("a bug: operands could not be broadcast"), 500),
                               ("run", RuntimeError("a bug in a backend"), 500)]:
        app = create_app([Fake(stage, exc)])
        client = app.test_client()
        r = client.post("/predict", data={"image": (__import__("io").BytesIO(png.tobytes()), "a.png")},
                        content_type="multipart/form-data")
        assert r.status_code == status, (exc, r.get_json())
        assert app.batcher.waiting() == 0 and app.batcher.coming == 0  # nothing left behind for a batch to wait on
        app.batcher.close()
    assert issubclass(ImageSizeError, ImageInputError)


def test_server_command_line_user_error_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(REPO, "deploy", "serving", "server.py"),
                           "--model_dir", str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert "Global.inference_model_dir: no such folder" in line


# ----------------------------------------------------------------------------- 5. label list against the model


def copy_model(model_dir: str, dst, names: int, class_num_in_yml: bool = True) -> str:
    import shutil

    shutil.copytree(model_dir, dst)
    with open(dst / "label_list.txt", "w") as f:
        f.writelines(f"{i} name {i}\n" for i in range(names))
    if not class_num_in_yml:  # as PaddleClas's exports: no Global.class_num
        info = load_yaml(str(dst / "inference.yml"))
        del info["Global"]["class_num"]
        (dst / "inference.yml").write_text(yaml.safe_dump(info))
    return str(dst)


def test_label_list_longer_than_the_model_is_refused(model_dir, photo, tmp_path):
    folder = copy_model(model_dir, tmp_path / "big", 100_000)
    with pytest.raises(DeployConfigError) as e:
        ClsPredictor({"Global": {"inference_model_dir": folder}})
    msg = str(e.value)
    assert "100000 class names" in msg and f"is {CLASSES}" in msg and os.path.join(folder, "label_list.txt") in msg
    # without class_num in inference.yml: the model's output width decides, on the first batch
    folder = copy_model(model_dir, tmp_path / "big_no_num", 100_000, class_num_in_yml=False)
    pred = ClsPredictor({"Global": {"inference_model_dir": folder}})
    with pytest.raises(DeployConfigError, match=f"100000 class names but the model's output width .* is {CLASSES}"):
        pred.predict([photo])
    # too few names, and the command line: one line, exit 2
    folder = copy_model(model_dir, tmp_path / "small", 3)
    proc = run_predict(f"Global.inference_model_dir={folder}", f"Global.infer_imgs={photo}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "has 3 class names but Global.class_num" in error_lines(proc.stderr)[0]


def test_label_list_ids_must_be_the_model_classes(model_dir, tmp_path):
    folder = copy_model(model_dir, tmp_path / "ids", CLASSES)
    with open(os.path.join(folder, "label_list.txt"), "w") as f:
        f.writelines(f"{i + 1} name {i}\n" for i in range(CLASSES))  # 1..5 for classes 0..4
    with pytest.raises(DeployConfigError, match=r"class ids 5 are outside \[0, 5\)"):
        ClsPredictor({"Global": {"inference_model_dir": folder}})
    with open(os.path.join(folder, "label_list.txt"), "w") as f:
        f.write("0 a\n1 b\n1 c\n2 d\n3 e\n")
    with pytest.raises(DeployConfigError, match="class id 1 is given twice"):
        ClsPredictor({"Global": {"inference_model_dir": folder}})


def test_label_list_delimiter_is_honoured(model_dir, photo, tmp_path):
    folder = copy_model(model_dir, tmp_path / "csv", 0)
    with open(os.path.join(folder, "label_list.txt"), "w") as f:
        f.writelines(f"{i},name with spaces {i}\n" for i in range(CLASSES))
    pred = ClsPredictor({"Global": {"inference_model_dir": folder}, "PostProcess": {"Topk": {"delimiter": ","}}})
    (r,) = pred.predict([photo])
    assert r["label_names"] == [f"name with spaces {i}" for i in r["class_ids"]]
