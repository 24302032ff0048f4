"""train → eval → infer → export → Paddle Inference, through the tools as a user runs them."""

from __future__ import annotations

import ast
import os
import re

import numpy as np
import pytest

from tests.conftest import run_tool, tiny_config, write_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, digits_dir):
    out = str(tmp_path_factory.mktemp("run"))
    cfg = tiny_config(digits_dir, out, epochs=2)
    path = write_config(cfg, os.path.join(out, "cfg.yaml"))
    proc = run_tool("train.py", "-c", path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"cfg": cfg, "path": path, "out": out, "stdout": proc.stdout, "run": os.path.join(out, "PPLCNet_x0_25")}


def test_train_writes_checkpoints_and_log(trained):
    run = trained["run"]
    for name in ("best_model", "latest", "epoch_1", "epoch_2"):
        for ext in (".pdparams", ".pdopt", ".pdstates"):
            assert os.path.isfile(os.path.join(run, name + ext)), name + ext
    assert not [f for f in os.listdir(run) if f.endswith(".tmp")]
    log = open(os.path.join(run, "train.log")).read()
    line = re.search(r"\[Train\]\[Epoch 1/2\]\[Iter: \d+/\d+\]lr\(Cosine\): [\d.]+, CELoss: [\d.]+, loss: [\d.]+, "
                     r"top1: [\d.]+, batch_cost: [\d.]+s, reader_cost: [\d.]+s, ips: [\d.]+ samples/s, eta: [\d:]+", log)
    assert line, log[-2000:]
    # 3 classes: top-5 is dropped (never a meaningless 1.0)
    assert "top5" not in log.split("[Train]", 1)[1]
    assert "[Eval][Epoch 2][Avg]CELoss:" in log


def test_eval_prints_paddleclas_line(trained):
    proc = run_tool("eval.py", "-c", trained["path"], "-o",
                    f"Global.pretrained_model={trained['run']}/best_model")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"\[Eval\]\[Epoch 0\]\[Avg\]CELoss: [\d.]+, loss: [\d.]+, top1: [\d.]+", proc.stdout)


def _infer(trained, target):
    proc = run_tool("infer.py", "-c", trained["path"], "-o", f"Infer.infer_imgs={target}",
                    "-o", f"Global.pretrained_model={trained['run']}/best_model")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [ast.literal_eval(line) for line in proc.stdout.splitlines() if line.startswith("[{")]


def test_infer_on_file_and_folder(trained, digits_dir):
    folder = os.path.join(digits_dir, "images", "1")
    batches = _infer(trained, folder)
    items = [x for b in batches for x in b]
    assert len(items) == len(os.listdir(folder))
    assert all(len(b) <= 4 for b in batches)
    first = items[0]
    assert set(first) == {"class_ids", "scores", "file_name", "label_names"}
    assert len(first["class_ids"]) == 2 and first["label_names"][0].startswith("digit ")
    assert abs(sum(first["scores"]) - 1.0) < 1.0  # top-2 of 3 probabilities
    one = os.path.join(folder, sorted(os.listdir(folder))[0])
    single = _infer(trained, one)
    assert len(single) == 1 and single[0][0]["file_name"] == one


def test_export_and_paddle_inference_parity(trained, digits_dir, tmp_path):
    out_dir = str(tmp_path / "inference")
    proc = run_tool("export_model.py", "-c", trained["path"], "-o", f"Global.pretrained_model={trained['run']}/best_model",
                    "-o", f"Global.save_inference_dir={out_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = set(os.listdir(out_dir))
    assert {"inference.json", "inference.pdiparams", "inference.yml"} <= files or \
        {"inference.pdmodel", "inference.pdiparams", "inference.yml"} <= files
    import paddle.inference as pi

    from ppcls.engine.export import model_file

    folder = os.path.join(digits_dir, "images", "2")
    expected = {x["file_name"]: x for b in _infer(trained, folder) for x in b}
    config = pi.Config(model_file(out_dir), os.path.join(out_dir, "inference.pdiparams"))
    config.disable_gpu()
    predictor = pi.create_predictor(config)
    from ppcls.data.transforms import build_transforms
    from ppcls.engine.infer import preprocess

    transform = build_transforms(trained["cfg"]["Infer"]["transforms"])
    files = sorted(expected)  # named relative to the folder given
    for batch in (files[:1], files[1:4]):  # dynamic batch: 1 then 3
        x = preprocess([os.path.join(folder, name) for name in batch], transform)
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.reshape(list(x.shape))
        handle.copy_from_cpu(x)
        predictor.run()
        probs = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
        assert probs.shape == (len(batch), 3)
        for row, name in zip(probs, batch):
            ref = expected[name]
            assert list(np.argsort(-row)[:2]) == ref["class_ids"]
            np.testing.assert_allclose(row[ref["class_ids"]], ref["scores"], atol=1e-4)


def test_export_onnx_tool_writes_an_onnx_model(trained, tmp_path):
    out_dir = str(tmp_path / "onnx")
    # tools/export_onnx.py = export_model.py with export_type=onnx, even over an explicit -o saying otherwise
    proc = run_tool("export_onnx.py", "-c", trained["path"], "-o", f"Global.pretrained_model={trained['run']}/best_model",
                    "-o", f"Global.save_inference_dir={out_dir}", "-o", "Global.export_type=paddle")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"inference.onnx", "inference.pdiparams", "inference.yml"} <= set(os.listdir(out_dir))
    import onnxruntime as ort

    session = ort.InferenceSession(os.path.join(out_dir, "inference.onnx"), providers=["CPUExecutionProvider"])
    shape = trained["cfg"]["Global"]["image_shape"]
    probs = session.run(None, {session.get_inputs()[0].name: np.zeros([2, *shape], np.float32)})[0]
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
