"""Your own images in one command: a shipped ImageNet recipe, ``Global.data_dir`` and the model named,
through training, prediction, evaluation with plots, export and the predictor, all naming the folders."""

from __future__ import annotations

import csv
import json
import os

import yaml

from ppcls.data.prepare.photos import photo_class_folders
from tests.conftest import REPO, run_tool

RECIPE = os.path.join(REPO, "configs", "ImageNet", "PPLCNet", "PPLCNet_x0_25.yaml")
CLASSES = ["astronaut", "cat", "coffee"]


def ok(result) -> str:
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    return out


def test_class_folders_of_photos_train_predict_export_and_serve_with_their_names(tmp_path):
    work = str(tmp_path)
    photo_class_folders(os.path.join(work, "photos"), per_class=8, val_per_class=3)
    mine = ["-c", RECIPE, "-o", "Global.data_dir=photos"]

    out = ok(run_tool("train.py", *mine, "-o", "Global.epochs=2", cwd=work))
    assert "Global.device=auto: cpu" in out
    assert "Arch.class_num is 1000 in the config, but the class folders of photos/train names 3 classes" in out
    assert "top5" not in out  # a 3-class model has no top-5
    run = os.path.join(work, "output", "photos", "PPLCNet_x0_25")
    with open(os.path.join(run, "label_list.txt"), encoding="utf-8") as f:
        assert f.read().split() == ["0", "astronaut", "1", "cat", "2", "coffee"]

    again = ok(run_tool("train.py", *mine, "-o", "Global.epochs=1", cwd=work))
    assert "this run goes to ./output/photos/PPLCNet_x0_25-2" in again  # never into the earlier run's folder
    assert os.path.isfile(os.path.join(run + "-2", "best_model.pdparams"))

    # infer: the newest run's best model, the val split, the folder names
    out = ok(run_tool("infer.py", *mine, cwd=work))
    assert "PPLCNet_x0_25-2/best_model (the newest run" in out
    assert "'file_name': 'cat/008.png'" in out
    names = {n for line in out.splitlines() if line.startswith("[{") for n in _label_names(line)}
    assert names == set(CLASSES)

    # without the data folder: the class count and names come with the checkpoint
    out = ok(run_tool("infer.py", "-c", RECIPE, "-o", f"Global.pretrained_model={run}/best_model",
                      "-o", "Infer.infer_imgs=photos/val/cat", cwd=work))
    assert "Arch.class_num is 1000 in the config, but" in out and "was trained for 3 classes: using 3" in out
    assert "imagenet1k_label_list.txt names 1000 classes, the model has 3: using the class names of the weights" in out
    assert {n for line in out.splitlines() if line.startswith("[{") for n in _label_names(line)} == set(CLASSES)

    evaluation = ok(run_tool("eval.py", *mine, "-o", "Global.save_plots=True", cwd=work))
    assert "top1" in evaluation
    with open(os.path.join(run + "-2", "per_class_accuracy.csv"), encoding="utf-8") as f:
        assert [row[1] for row in list(csv.reader(f))[1:]] == CLASSES

    inference = os.path.join(work, "inference", "photos")
    ok(run_tool("export_model.py", *mine, "-o", f"Global.save_inference_dir={inference}", cwd=work))
    with open(os.path.join(inference, "label_list.txt"), encoding="utf-8") as f:
        assert f.read() == "0 astronaut\n1 cat\n2 coffee\n"
    with open(os.path.join(inference, "inference.yml"), encoding="utf-8") as f:
        assert yaml.safe_load(f)["Global"]["class_num"] == 3

    results = os.path.join(work, "predictions.jsonl")
    ok(run_tool(os.path.join("..", "deploy", "python", "predict_cls.py"), "-c",
                os.path.join(REPO, "deploy", "configs", "inference_cls.yaml"),
                "-o", f"Global.inference_model_dir={inference}", "-o", "Global.infer_imgs=photos/val",
                "-o", f"Global.save_results={results}", cwd=work))
    with open(results, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 9 and {r["file_name"] for r in rows} >= {"astronaut/008.png", "coffee/010.png"}
    assert {n for r in rows for n in r["label_names"]} == set(CLASSES)


def _label_names(line: str) -> list[str]:
    import ast

    return [n for item in ast.literal_eval(line) for n in item["label_names"]]
