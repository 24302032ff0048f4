"""tools/infer.py (eager model, ppcls's Topk) and deploy/python/predict_cls.py (the export, deploy's Topk)
give the same results: the whole dict, not only the scores.

One model with random weights (nothing is trained) is saved and exported; both tools run on the same
images, with and without a label list. The agreed structure of one result (PaddleClas's):
``{"class_ids": [...], "scores": [...], "file_name": ..., "label_names": [...]}``, with
``label_names`` always present and ``[]`` without a label list.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, run_tool, tiny_config, write_config
from tests.deploy.common import EVAL_OPS, SIZE

NAME = "PPLCNet_x0_25"
CLASSES = 5
TOPK = 3
KEYS = ["class_ids", "scores", "file_name", "label_names"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(images folder, weights prefix, label list, {with_labels: exported folder}, eager probabilities)."""
    import paddle
    import paddle.nn.functional as F

    from ppcls.engine.export import export_model
    from tests.deploy.test_predictor import build, ppcls_inputs

    root = tmp_path_factory.mktemp("infer_vs_predictor")
    from skimage import data

    images = root / "images"
    (images / "more").mkdir(parents=True)
    paths = []
    for i, name in enumerate(("astronaut", "chelsea", "coffee", "rocket")):
        img = getattr(data, name)()
        img = img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)
        sub = images / "more" if i % 2 else images
        path = str(sub / f"{name}.{'png' if i == 2 else 'jpg'}")
        cv2.imwrite(path, img[:, :, ::-1])
        paths.append(path)
    labels = root / "labels.txt"
    labels.write_text("".join(f"{i} class name {i}\n" for i in range(CLASSES)))

    model = build(NAME, paths, seed=4)
    weights = str(root / "weights")
    paddle.save(model.state_dict(), weights + ".pdparams")
    with paddle.no_grad():
        probs = F.softmax(model(paddle.to_tensor(ppcls_inputs(sorted(paths)))), axis=-1).numpy()
    exports = {
        with_labels: export_model(model, str(root / f"export_{with_labels}"), [3, SIZE, SIZE], NAME, CLASSES,
                                  transform_ops=EVAL_OPS, topk=TOPK, label_list_file=str(labels) if with_labels else None)
        for with_labels in (False, True)
    }
    return str(images), weights, str(labels), exports, probs


def infer_results(tmp_path, digits_dir: str, images: str, weights: str, labels: str | None) -> list[dict]:
    cfg = tiny_config(digits_dir, str(tmp_path / "out"), arch=NAME, class_num=CLASSES, size=SIZE)
    cfg["Global"]["pretrained_model"] = weights
    post = {"name": "Topk", "topk": TOPK}
    if labels:
        post["class_id_map_file"] = labels
    cfg["Infer"] = {"infer_imgs": images, "batch_size": 3, "transforms": EVAL_OPS, "PostProcess": post}
    proc = run_tool("infer.py", "-c", write_config(cfg, str(tmp_path / "infer.yaml")), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [item for line in proc.stdout.splitlines() if line.startswith("[{")
            for item in ast.literal_eval(line)]
    assert rows, proc.stdout[-2000:]
    return rows


def predictor_results(tmp_path, folder: str, images: str) -> tuple[list[dict], list[str]]:
    out = tmp_path / "results.jsonl"
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "deploy", "python", "predict_cls.py"),
         "-c", os.path.join(REPO, "deploy", "configs", "inference_cls.yaml"),
         "-o", f"Global.inference_model_dir={folder}", "-o", f"Global.infer_imgs={images}",
         "-o", "Global.batch_size=2", "-o", f"Global.save_results={out}"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if "class id(s)" in ln]
    return [json.loads(x) for x in out.read_text().splitlines()], lines


@pytest.mark.parametrize("with_labels", [False, True], ids=["no_label_list", "label_list"])
def test_infer_and_predictor_agree_on_the_whole_result(setup, digits_dir, tmp_path, with_labels):
    from deploy.python.predict_cls import format_result

    images, weights, labels, exports, probs = setup
    # the ranking must not hinge on float noise: neighbouring scores of the top-k + 1 differ clearly
    top = -np.sort(-probs, axis=1)[:, : TOPK + 1]
    assert np.diff(top, axis=1).max() < -1e-4, top

    ours = infer_results(tmp_path, digits_dir, images, weights, labels if with_labels else None)
    theirs, lines = predictor_results(tmp_path, exports[with_labels], images)

    assert len(ours) == len(theirs) == 4
    for a, b in zip(ours, theirs, strict=True):
        assert list(a) == list(b) == KEYS, (a, b)  # the same keys in the same order: one structure
        assert a["file_name"] == b["file_name"]
        assert a["class_ids"] == b["class_ids"] and len(a["class_ids"]) == TOPK
        assert np.abs(np.array(a["scores"]) - np.array(b["scores"])).max() <= 1e-4
        expected = [f"class name {i}" for i in a["class_ids"]] if with_labels else []
        assert a["label_names"] == b["label_names"] == expected
    assert [r["file_name"] for r in ours] == sorted(r["file_name"] for r in ours)  # both in file order
    # named by the path relative to the folder given (base names alone are ambiguous across sub-folders)
    assert [r["file_name"] for r in ours] == ["astronaut.jpg", "coffee.png", "more/chelsea.jpg", "more/rocket.jpg"]
    # the printed PaddleClas line carries the same ids and names
    for row, line in zip(theirs, lines, strict=True):
        assert line == format_result(row)
        assert line.startswith(f"{row['file_name']}:\t")
        assert f"label_name(s): {row['label_names']}" in line
