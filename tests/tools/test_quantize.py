"""tools/quantize.py: export + INT8 quantization of a trained model, its --eval report, and bad input."""

from __future__ import annotations

import argparse
import os
import re

import pytest
import yaml

from deploy.python.errors import DeployConfigError, DeployFileError, ImageInputError, MissingPackageError
from ppcls.utils.errors import ConfigError, DataError
from tests.conftest import run_tool, tiny_config, write_config, write_digits_subset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """PPLCNet_x0_25 trained 30 epochs on 3 digit classes (90 eval images: one image is 1.1 points)."""
    data = write_digits_subset(str(tmp_path_factory.mktemp("qdigits")), classes=3, per_class=40, val_per_class=30)
    out = str(tmp_path_factory.mktemp("qrun"))
    cfg = tiny_config(data, out, epochs=30)
    path = write_config(cfg, os.path.join(out, "cfg.yaml"))
    proc = run_tool("train.py", "-c", path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"cfg": cfg, "path": path, "out": out, "data": data,
            "weights": os.path.join(out, "PPLCNet_x0_25", "best_model")}


def test_quantize_with_eval_keeps_top1(trained):
    target = os.path.join(trained["out"], "int8")
    proc = run_tool("quantize.py", "-c", trained["path"], "-o", f"Global.pretrained_model={trained['weights']}",
                    "-o", f"Global.save_inference_dir={target}", "--calib_num", "60", "--eval")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = re.search(r"eval on (\d+) images: top1 fp32 ([\d.]+), int8 ([\d.]+), difference ([+-][\d.]+) points; "
                  r"same top-1 on ([\d.]+)%", proc.stdout)
    assert m, proc.stdout
    images, fp32, diff, same = int(m[1]), float(m[2]), float(m[4]), float(m[5])
    assert images == 90 and fp32 > 0.6, proc.stdout
    # On the 20-epoch digits quick start the change was 0.00 points (98% same top-1). This small model
    # (about 70% top-1) has many images near a decision boundary that flip either way (measured: -2.22
    # points, 78% same top-1): allow 5 of the 90 images net, and 70% agreement.
    assert abs(diff) <= 5.6 and same >= 70.0, proc.stdout
    assert "per class:" in proc.stdout and len(proc.stdout.splitlines()) < 40
    assert "digit 0" in proc.stdout  # class names from the label list
    files = set(os.listdir(target))
    assert {"inference.onnx", "inference_int8.onnx", "inference.yml", "inference.json"} <= files
    assert not [f for f in os.listdir(trained["out"]) if ".quantize." in f]  # no staging folder left
    info = yaml.safe_load(open(os.path.join(target, "inference.yml")))
    assert info["Global"]["int8_model"] == "inference_int8.onnx" and info["PreProcess"]["transform_ops"]
    q = info["Quantization"]
    assert q["calibration_images"] == 60 and q["calib_method"] == "percentile" and q["per_channel"] is True
    assert q["calibration_source"].startswith("DataLoader.Train list ")


def _args(**kw) -> argparse.Namespace:
    from ppcls.engine.quantize import add_arguments
    from ppcls.utils.cli import parser

    argv = ["-c", "x.yaml"]
    for k, v in kw.items():
        argv += [f"--{k}"] + ([] if v is True else [str(v)])
    return add_arguments(parser("t")).parse_args(argv)


def _cfg(trained, target: str) -> dict:
    import copy

    cfg = copy.deepcopy(trained["cfg"])
    cfg["Global"].update(pretrained_model=trained["weights"], save_inference_dir=target)
    return cfg


def test_bad_input_is_refused_before_writing(trained, tmp_path):
    from ppcls.engine.quantize import quantize_config

    target = str(tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    lst = tmp_path / "calib.txt"
    lst.write_text("".join(f"images/0/nope_{i}.png 0\n" for i in range(8)))
    cases = [
        (dict(calib_num=0), DeployConfigError, "--calib_num: expected a positive integer"),
        (dict(calib_dir=str(empty), calib_list=str(lst)), DeployConfigError, "give one calibration source, not both"),
        (dict(calib_method="kl"), DeployConfigError, "--calib_method: expected one of minmax, entropy, percentile"),
        (dict(calib_dir=str(empty)), DeployFileError, r"--calib_dir: no images \(.jpg"),
        (dict(calib_dir=str(tmp_path / "nowhere")), DeployFileError, "--calib_dir: no such folder"),
        (dict(calib_list=str(tmp_path / "none.txt")), DeployFileError, "--calib_list: no such file"),
        (dict(calib_list=str(lst)), DeployFileError, r"names 8 image\(s\) that do not exist .*nope_0.png \(line 1\).* and 3 more"),
    ]
    for kw, kind, pattern in cases:
        with pytest.raises(kind, match=pattern):
            quantize_config(_cfg(trained, target), _args(**kw))
    lst.write_text("")
    with pytest.raises(DeployFileError, match="lists no images"):
        quantize_config(_cfg(trained, target), _args(calib_list=str(lst)))
    cfg = _cfg(trained, target)
    del cfg["DataLoader"]["Train"]["dataset"]["image_root"]
    with pytest.raises(ConfigError, match="DataLoader.Train.dataset.image_root is not set"):
        quantize_config(cfg, _args())
    cfg = _cfg(trained, target)
    cfg["DataLoader"]["Train"]["dataset"]["cls_label_path"] = str(tmp_path / "list2.txt")
    (tmp_path / "list2.txt").write_text("".join(f"x/{i}.png 0\n" for i in range(7)))
    with pytest.raises(DataError, match=r"names 7 image\(s\) that do not exist .* and 2 more"):
        quantize_config(cfg, _args())
    assert sorted(os.listdir(tmp_path)) == ["calib.txt", "empty", "list2.txt"]  # nothing written


def test_failures_after_export_keep_the_previous_folder(trained, tmp_path, monkeypatch):
    """--keep_fp32 naming nothing, undecodable images only, a crash in quantize_static: the earlier export stays."""
    import sys

    from ppcls.engine.quantize import quantize_config

    target = str(tmp_path / "out")
    os.makedirs(target)
    for name in ("inference.onnx", "inference_int8.onnx", "inference.yml"):
        with open(os.path.join(target, name), "w") as f:
            f.write(f"the earlier {name}")
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"{i}.png").write_bytes(b"not a png")
    with pytest.raises(DeployConfigError, match="--keep_fp32: NoSuchOp is neither an op type nor a node name"):
        quantize_config(_cfg(trained, target), _args(keep_fp32="NoSuchOp", calib_num=4))
    with pytest.raises(ImageInputError, match="none of the 3 image"):
        quantize_config(_cfg(trained, target), _args(calib_dir=str(bad)))

    def crash(*a, **k):
        raise RuntimeError("killed in the middle")

    with pytest.raises(RuntimeError, match="killed"):
        quantize_config(_cfg(trained, target), _args(calib_num=4), quantize=crash)
    assert sorted(os.listdir(tmp_path)) == ["bad", "out"]  # no staging folder left
    for name in os.listdir(target):
        assert open(os.path.join(target, name)).read() == f"the earlier {name}"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingPackageError, match="pip install onnxruntime"):
        quantize_config(_cfg(trained, target), _args())


def test_cli_error_is_one_line(trained, tmp_path):
    proc = run_tool("quantize.py", "-c", trained["path"], "-o", f"Global.pretrained_model={trained['weights']}",
                    "-o", f"Global.save_inference_dir={tmp_path / 'out'}", "--calib_dir", str(tmp_path / "none"))
    assert proc.returncode == 2, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    assert "ERROR: --calib_dir: no such folder" in text and "Traceback" not in text
    assert not os.path.exists(tmp_path / "out")
