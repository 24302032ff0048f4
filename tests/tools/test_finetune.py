"""The fine-tuning quick start, as docs/finetune.md runs it: published weights from the cache
(no network here), train, evaluate, export, predict."""

from __future__ import annotations

import os
import shutil

from tests.arch.weights.fixture_utils import input_batch
from tests.conftest import REPO, run_tool
from tests.reference import paddleclas_ref

CONFIG = os.path.join(REPO, "configs", "quick_start", "PPLCNet_x0_25_digits_finetune.yaml")


def test_finetune_recipe_from_published_weights(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    # the published file's stand-in: PaddleClas's own model with random weights, in PaddleClas's layout
    paddleclas_ref.random_checkpoint("PPLCNet_x0_25", str(cache / "PPLCNet_x0_25_pretrained.pdparams"), 0,
                                     input_batch(0, (2, 3, 64, 64)))
    monkeypatch.setenv("PPCLS_CACHE_DIR", str(cache))
    work = str(tmp_path)
    short = ["-o", "Global.epochs=2", "-o", "Global.max_iters_per_epoch=3"]
    train = run_tool("train.py", "-c", CONFIG, *short, cwd=work)
    out = train.stdout + train.stderr
    assert train.returncode == 0, out[-3000:]
    assert "published imagenet weights (paddleclas) from " + str(cache / "PPLCNet_x0_25_pretrained.pdparams") in out
    assert "loaded 144/146 tensors" in out and "fc.weight keeps its fresh initialisation" in out
    assert "model options set for the weights' publisher (paddleclas): {'dropout_mode': 'downscale_in_infer'}" in out
    assert "backbone LR x0.1, head (3 tensors) x1" in out
    assert "No ccache found" not in out  # Paddle's import-time warning is filtered by the tools
    run = os.path.join(work, "output", "finetune", "PPLCNet_x0_25")
    best = os.path.join(run, "best_model")
    shutil.rmtree(cache)  # eval/export/infer use the checkpoint alone: nothing is downloaded again
    evaluation = run_tool("eval.py", "-c", CONFIG, "-o", f"Global.pretrained_model={best}", cwd=work)
    assert evaluation.returncode == 0, (evaluation.stdout + evaluation.stderr)[-3000:]
    assert "Arch.pretrained (True) is not read" in evaluation.stdout + evaluation.stderr
    assert "'dropout_mode': 'downscale_in_infer'" in evaluation.stdout + evaluation.stderr
    inference = os.path.join(work, "inference")
    export = run_tool("export_model.py", "-c", CONFIG, "-o", f"Global.pretrained_model={best}",
                      "-o", f"Global.save_inference_dir={inference}", cwd=work)
    assert export.returncode == 0, (export.stdout + export.stderr)[-3000:]
    image = os.path.join(work, "dataset", "digits", "images", "3")
    predict = run_tool(os.path.join("..", "deploy", "python", "predict_cls.py"), "-c",
                       os.path.join(REPO, "deploy", "configs", "inference_cls.yaml"),
                       "-o", f"Global.inference_model_dir={inference}", "-o", f"Global.infer_imgs={image}", cwd=work)
    assert predict.returncode == 0, (predict.stdout + predict.stderr)[-3000:]
    assert "class id(s)" in predict.stdout
    assert "No ccache found" not in predict.stdout + predict.stderr
