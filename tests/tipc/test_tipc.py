"""TIPC in CI: prepare.sh + test_train_inference_python.sh (lite_train_lite_infer) for the smallest model
of each family, the scripts' answers to bad input, and the helpers (config generator, result comparison,
data building).

The chain tests run the shipped configs with TIPC_SET narrowing the variants to keep CI short: five
models run one CPU training (fp32) and two predictor settings (oneDNN on/off); PPLCNet_x0_25 also runs
the 2-process CPU training, lists the GPU and float16 AMP variants (skipped on this CPU build, with the
reason) and more inference settings. The whole TIPC is `bash test_tipc/run_all.sh` (test_tipc/README.md).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODE = "lite_train_lite_infer"
CI_MODELS = [
    ("PPLCNet", "PPLCNet_x0_25"),
    ("ShuffleNet", "ShuffleNetV2_x0_25"),
    ("SqueezeNet", "SqueezeNet1_1"),
    ("MobileNeXt", "MobileNeXt_x0_35"),
    ("PeleeNet", "PeleeNet"),
    ("ParNet", "ParNet_S"),
]
WIDE_MODEL = "PPLCNet_x0_25"
NARROW_SET = ("gpu_list:-1;-o Global.auto_cast:fp32;-o Global.use_gpu:False;-o Global.enable_mkldnn:True|False;"
              "-o Global.cpu_num_threads:2;-o Global.batch_size:2")
WIDE_SET = ("gpu_list:-1|cpux2|0;-o Global.auto_cast:fp32|fp16;-o Global.use_gpu:True|False;"
            "-o Global.enable_mkldnn:True|False;-o Global.cpu_num_threads:1|2;-o Global.batch_size:2")
TIPC_ENV_KEYS = ("TIPC_SET", "TIPC_DATA_DIR", "TIPC_WEIGHTS", "TIPC_WEIGHTS_URL", "TIPC_SAVE_RESULTS",
                 "TIPC_DATA_ROOT", "TIPC_OUTPUT_DIR")
# this test's own data and output folders: a person's TIPC run (or another test session) in the same
# checkout keeps its test_tipc/data and test_tipc/output
_ROOTS: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def tipc_roots(tmp_path_factory) -> Iterator[dict[str, str]]:
    base = tmp_path_factory.mktemp("tipc")
    _ROOTS["TIPC_DATA_ROOT"] = str(base / "data")
    _ROOTS["TIPC_OUTPUT_DIR"] = str(base / "output")
    yield _ROOTS
    _ROOTS.clear()


def config_path(family: str, model: str) -> str:
    return os.path.join("test_tipc", "configs", family, f"{model}_train_infer_python.txt")


def run_script(script: str, *args: str, tipc_set: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in TIPC_ENV_KEYS}
    env.update(_ROOTS)
    if tipc_set:
        env["TIPC_SET"] = tipc_set
    return subprocess.run(["bash", os.path.join("test_tipc", script), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def load_module(name: str):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "test_tipc", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------------------ the chain


@pytest.mark.parametrize("family,model", CI_MODELS, ids=[m for _, m in CI_MODELS])
def test_lite_chain(family: str, model: str) -> None:
    config = config_path(family, model)
    tipc_set = WIDE_SET if model == WIDE_MODEL else NARROW_SET
    prep = run_script("prepare.sh", config, MODE, tipc_set=tipc_set, timeout=120)
    assert prep.returncode == 0, prep.stdout + prep.stderr
    run = run_script("test_train_inference_python.sh", config, MODE, tipc_set=tipc_set)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    command_lines = [ln for ln in run.stdout.splitlines() if "with command - " in ln]
    failed = [ln for ln in command_lines if not ln.startswith("Run successfully")]
    assert not failed, "\n".join(failed)

    summary_path = os.path.join(_ROOTS["TIPC_OUTPUT_DIR"], model, MODE, "results_python.log")
    with open(summary_path, encoding="utf-8") as f:
        summary = f.read().splitlines()
    assert [ln for ln in summary if "with command - " in ln] == command_lines
    for line in command_lines:  # every command names its log, and the log is there
        log = line.rsplit(" - ", 1)[1].rstrip(" !")
        assert os.path.isfile(log), line

    def count(pattern: str) -> int:
        return sum(1 for ln in command_lines if re.search(pattern, ln))

    per_chain = {"tools/train.py": 1, "tools/eval.py": 1, "tools/export_model.py": 1, "tools/infer.py": 1}
    if model == WIDE_MODEL:
        chains, predictions = 2, 4  # gpus -1 and cpux2 (fp32); 2 oneDNN x 2 thread settings each
        assert count(r"paddle\.distributed\.launch --nproc_per_node 2") == 1
        skipped = [ln for ln in summary if ln.startswith("Skipped")]
        # fp16 on both CPU variants, gpus 0 in fp32 and fp16, GPU inference after both CPU trainings
        assert len(skipped) == 6, "\n".join(skipped)
        assert all("reason: " in ln for ln in skipped)
        assert sum("no CUDA support" in ln for ln in skipped) == 4
        assert sum("float16 AMP needs a GPU" in ln for ln in skipped) == 2
    else:
        chains, predictions = 1, 2
        assert not [ln for ln in summary if ln.startswith("Skipped")]
    for tool, n in per_chain.items():
        assert count(re.escape(tool) + " ") == n * chains, tool
    assert count(r"deploy/python/predict_cls\.py") == predictions * chains
    assert count(r"compare_results\.py --atol 0\.001 --gt \S+_tools_infer\.log --pred ") == predictions * chains
    assert count(r"compare_results\.py --gt test_tipc/results/") == 1  # the stored expected results


# ------------------------------------------------------------------------------ bad input

CONFIG = config_path("PPLCNet", "PPLCNet_x0_25")


@pytest.mark.parametrize("script", ["prepare.sh", "test_train_inference_python.sh"])
@pytest.mark.parametrize(
    "args,message",
    [
        ((CONFIG, "lite_infer_please"), "unknown mode 'lite_infer_please'; expected one of: lite_train_lite_infer"),
        ((CONFIG, "cpp_infer"), "PaddleClas's mode 'cpp_infer' is not supported"),
        ((CONFIG,), "no MODE given"),
        (("test_tipc/configs/nope.txt", MODE), "config file not found: test_tipc/configs/nope.txt"),
        ((), "no CONFIG given"),
    ],
    ids=["unknown-mode", "paddleclas-only-mode", "no-mode", "missing-config", "no-args"],
)
def test_bad_arguments(script: str, args: tuple, message: str) -> None:
    res = run_script(script, *args, timeout=30)
    assert res.returncode == 2
    assert message in res.stderr


def _broken_config(tmp_path, old: str, new: str) -> tuple[str, int]:
    with open(os.path.join(REPO, CONFIG), encoding="utf-8") as f:
        lines = f.read().splitlines()
    idx = next(i for i, ln in enumerate(lines) if ln.startswith(old))
    if new is None:
        del lines[idx]
    else:
        lines[idx] = new
    path = tmp_path / "broken_train_infer_python.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path), idx + 1


@pytest.mark.parametrize("script", ["prepare.sh", "test_train_inference_python.sh"])
@pytest.mark.parametrize(
    "old,new,message",
    [
        ("train_model_name:", "train_model_name latest", "expected 'key:value', got 'train_model_name latest'"),
        ("infer_py:", "infer_pyy:tools/infer.py", "unknown key 'infer_pyy' in section infer_params"),
        ("gpu_list:", "gpu_list:-1|gpu0", "'gpu0' is not a gpu_list entry"),
        ("-o Global.epochs:", "-o Global.epochs:lite_train_lite_infr=2", "'lite_train_lite_infr=2' is not <mode>=<value>"),
        ("-o Global.auto_cast:", "-o Global.auto_cast:fp32|int8", "'int8' is not an AMP setting"),
        ("===========================eval_params", "=====eval_parms=====", "unknown section 'eval_parms'"),
        ("trainer:", "trainer:norm_train|pact_train", "trainer 'pact_train' (quantization, pruning, distillation) is not supported"),
        ("model_name:", "model_name:PPLCNet_x0_25", "key 'model_name' repeats line"),
    ],
    ids=["no-colon", "unknown-key", "gpu-entry", "mode-name", "auto-cast", "section", "trainer", "repeated"],
)
def test_bad_config_line(tmp_path, script: str, old: str, new: str, message: str) -> None:
    if old == "model_name:":  # a second model_name line after the first one
        with open(os.path.join(REPO, CONFIG), encoding="utf-8") as f:
            lines = f.read().splitlines()
        lines.insert(2, new)
        path = tmp_path / "broken_train_infer_python.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        path, lineno = str(path), 3
    else:
        path, lineno = _broken_config(tmp_path, old, new)
    res = run_script(script, path, MODE, timeout=30)
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"{path}:{lineno}: " in res.stderr
    assert message in res.stderr


def test_missing_required_line_is_named(tmp_path) -> None:
    path, _ = _broken_config(tmp_path, "norm_export:", None)
    res = run_script("test_train_inference_python.sh", path, MODE, timeout=30)
    assert res.returncode == 2
    assert f"{path}: section infer_params has no 'norm_export:...' line" in res.stderr


def test_tipc_set_unknown_key_is_refused() -> None:
    res = run_script("prepare.sh", CONFIG, MODE, tipc_set="gpu_list:-1;no_such_key:1", timeout=30)
    assert res.returncode == 2
    assert "TIPC_SET" in res.stderr and "no line 'no_such_key:...'" in res.stderr


def test_whole_infer_without_weights_says_how(tmp_path) -> None:
    # no weights under TIPC_DATA_ROOT/weights for this model name; the check comes before any data work
    path, _ = _broken_config(tmp_path, "model_name:", "model_name:TIPC_NoWeights")
    res = run_script("prepare.sh", path, "whole_infer", timeout=30)
    assert res.returncode == 2
    assert "whole_infer needs weights for TIPC_NoWeights" in res.stderr and "TIPC_WEIGHTS=random" in res.stderr


# ------------------------------------------------------------------------------ helpers


def test_every_registered_model_has_an_up_to_date_config() -> None:
    res = subprocess.run([sys.executable, "test_tipc/gen_configs.py", "--check"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 config(s) out of date or missing" in res.stdout


def test_ci_models_have_stored_results() -> None:
    for _, model in CI_MODELS:
        with open(os.path.join(REPO, "test_tipc", "results", f"{model}_{MODE}.json"), encoding="utf-8") as f:
            data = json.load(f)
        assert data["model"] == model and data["mode"] == MODE
        assert len(data["results"]) == 6  # one image per class of the lite data


def _write(path, results) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    return str(path)


def test_compare_results_tolerates_ties_and_noise(tmp_path) -> None:
    cr = load_module("compare_results")
    gt = [{"file_name": "a/x.png", "class_ids": [3, 1, 2], "scores": [0.6, 0.2, 0.2]},
          {"file_name": "y.jpg", "class_ids": [0, 4, 5], "scores": [0.9, 0.05, 0.05]}]
    # same within 5e-4, the tie at 0.2 / 0.05 in another order, a different class at the cut-off
    pred = [{"file_name": "other/x.png", "class_ids": [3, 2, 1], "scores": [0.6004, 0.2, 0.1998]},
            {"file_name": "y.jpg", "class_ids": [0, 5, 7], "scores": [0.9, 0.05, 0.0496]}]
    assert cr.compare(_write(tmp_path / "gt.jsonl", gt), _write(tmp_path / "p.jsonl", pred), 1e-3) == []


def test_compare_results_finds_differences(tmp_path) -> None:
    cr = load_module("compare_results")
    gt = [{"file_name": "x.png", "class_ids": [3, 1], "scores": [0.7, 0.3]},
          {"file_name": "z.png", "class_ids": [1, 0], "scores": [0.5, 0.5]}]
    pred = [{"file_name": "x.png", "class_ids": [1, 3], "scores": [0.7, 0.3]}]
    problems = cr.compare(_write(tmp_path / "gt.jsonl", gt), _write(tmp_path / "p.jsonl", pred), 1e-3)
    assert any("top-1 class 1 vs expected 3" in p for p in problems)
    assert any(p.startswith("z.png: in ") for p in problems)
    assert cr.main(["--gt", str(tmp_path / "gt.jsonl"), "--pred", str(tmp_path / "p.jsonl")]) == 1
    assert cr.main(["--gt", str(tmp_path / "missing.jsonl"), "--pred", str(tmp_path / "p.jsonl")]) == 2


def test_compare_results_reads_tools_infer_and_predictor_logs(tmp_path) -> None:
    cr = load_module("compare_results")
    infer_log = tmp_path / "infer.log"
    infer_log.write_text(
        "[2026/01/01 00:00:00] ppcls INFO: loaded\n"
        "[{'class_ids': [2, 0], 'scores': [0.8, 0.2], 'file_name': 'd/a.png', 'label_names': ['c', 'a']}]\n",
        encoding="utf-8")
    pred_log = tmp_path / "pred.log"
    pred_log.write_text("a.png:\tclass id(s): [2, 0], score(s): [0.8, 0.2], label_name(s): ['c', 'a']\n",
                        encoding="utf-8")
    assert cr.compare(str(infer_log), str(pred_log), 1e-3) == []
    out = tmp_path / "expected.json"
    cr.main(["--pred", str(infer_log), "--save_expected", str(out), "--model", "M", "--mode", MODE])
    assert cr.compare(str(out), str(pred_log), 1e-3) == []


def test_make_data_user_folder_is_split_and_left_untouched(tmp_path) -> None:
    import cv2
    import numpy as np

    md = load_module("make_data")
    src = tmp_path / "mine"
    for cls, n in (("cat", 5), ("dog", 3)):
        (src / cls).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(src / cls / f"{i}.jpg"), np.full((10, 12, 3), 20 * i, np.uint8))
    before = sorted(p.name for p in src.rglob("*"))
    out = md.build("user", str(tmp_path / "user_data"), str(src))
    assert sorted(p.name for p in src.rglob("*")) == before
    train = (tmp_path / "user_data" / "train_list.txt").read_text().splitlines()
    val = (tmp_path / "user_data" / "val_list.txt").read_text().splitlines()
    assert len(train) + len(val) == 8 and {ln.split()[1] for ln in val} == {"0", "1"}
    assert (tmp_path / "user_data" / "label_list.txt").read_text() == "0 cat\n1 dog\n"
    assert all(os.path.isfile(os.path.join(out, ln.rsplit(" ", 1)[0])) for ln in train + val)
    assert len(os.listdir(os.path.join(out, "infer"))) == len(val)
    with pytest.raises(md.DataError, match="needs at least 2 images"):
        (src / "bird").mkdir()
        cv2.imwrite(str(src / "bird" / "0.png"), np.zeros((4, 4, 3), np.uint8))
        md.build("user", str(tmp_path / "user_data2"), str(src))
