"""Config loading, -o overrides and the errors raised before anything is built."""

from __future__ import annotations

import os
import re
import time

import pytest

from ppcls.engine.config import load_config
from ppcls.utils.config import ConfigError, apply_override, parse_override
from ppcls.utils.numbers import parse_number
from tests.conftest import REPO, run_tool, tiny_config, write_config

QUICK = os.path.join(REPO, "configs", "quick_start", "PPLCNet_x0_25_digits.yaml")


def test_quick_start_config_loads():
    cfg = load_config(QUICK)
    assert cfg["Arch"]["name"] == "PPLCNet_x0_25" and cfg["Global"]["epochs"] > 0


def test_overrides_scalars_lists_and_nested():
    cfg = load_config(QUICK, ["Global.epochs=3", "Global.image_shape=[3, 64, 64]", "Arch.class_num=12",
                              "Optimizer.lr.learning_rate=0.5", "Global.checkpoints=null", "Global.device=cpu"])
    assert cfg["Global"]["epochs"] == 3 and cfg["Global"]["image_shape"] == [3, 64, 64]
    assert cfg["Arch"]["class_num"] == 12 and cfg["Optimizer"]["lr"]["learning_rate"] == 0.5
    assert cfg["Global"]["checkpoints"] is None


def test_override_into_transform_list_by_index_and_name():
    cfg = load_config(QUICK, ["DataLoader.Eval.dataset.transform_ops.1.ResizeImage.size=40",
                              "DataLoader.Train.dataset.transform_ops.RandCropImage.size=28"])
    assert cfg["DataLoader"]["Eval"]["dataset"]["transform_ops"][1]["ResizeImage"]["size"] == 40
    assert cfg["DataLoader"]["Train"]["dataset"]["transform_ops"][2]["RandCropImage"]["size"] == 28


def test_parse_override_forms():
    assert parse_override("A.b=1") == (["A", "b"], 1)
    assert parse_override("A.b=[1, 2]") == (["A", "b"], [1, 2])
    assert parse_override("A.b=hello world") == (["A", "b"], "hello world")
    assert parse_override("A.b=") == (["A", "b"], None)
    with pytest.raises(ConfigError, match="Section.key=value"):
        parse_override("Global.epochs")


def test_fraction_parser_never_evals():
    assert parse_number("1.0/255.0") == pytest.approx(1 / 255)
    assert parse_number("0.5") == 0.5 and parse_number(3) == 3.0
    for bad in ("__import__('os')", "1/0", "abc", True):
        with pytest.raises(ValueError):
            parse_number(bad)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["Globl.epochs=3"], "Globl: unknown section (in -o Globl.epochs=...). Did you mean: Global?"),
        (["Global.epoch=3"], "Global.epoch: unknown key. Did you mean: epochs?"),
        (["Global.epochs=three"], "Global.epochs: expected int, got 'three'"),
        (["Arch.name=PPLCNet_x9"], "unknown model name 'PPLCNet_x9'"),
        (["Arch.clas_num=3"], "Arch(PPLCNet_x0_25).clas_num: unknown key. Did you mean: class_num"),
        (["Arch.class_num=0"], "Arch.class_num: expected a positive integer"),
        (["Optimizer.name=Momentun"], "unknown optimizer name 'Momentun'. Did you mean: Momentum"),
        (["Optimizer.lr.name=Cosin"], "unknown lr schedule name 'Cosin'. Did you mean: Cosine"),
        (["Optimizer.lr.warmup_epochs=2"], "Optimizer.lr(Cosine).warmup_epochs: unknown key"),
        (["Optimizer.momentum=fast"], "Optimizer(Momentum).momentum: expected"),
        (["Loss.Train=[{CELos: {weight: 1.0}}]"], "unknown loss name 'CELos'. Did you mean: CELoss"),
        (["Metric.Eval=[{TopKAcc: {topk: [1]}}]"], "unknown metric name 'TopKAcc'. Did you mean: TopkAcc"),
        (["DataLoader.Train.dataset.transform_ops.1.ResizeImage.sise=3"], "DataLoader.Train.dataset.transform_ops[1].ResizeImage.sise: unknown key"),
        (["DataLoader.Train.dataset.transform_ops=[{ResizeImg: {size: 3}}]"], "unknown transform name 'ResizeImg'"),
        (["DataLoader.Train.sampler.batch_size=big"], "batch_size: expected int"),
        (["Infer.PostProcess.name=TopK"], "unknown postprocess name 'TopK'. Did you mean: Topk"),
        (["Global.image_shape=[3, 64]"], "Global.image_shape: expected three positive integers [C, H, W]"),
        (["Global.image_shape=[3, 0, 64]"], "Global.image_shape: expected three positive integers"),
        (["Global.image_shape=[3, 64.5, 64]"], "Global.image_shape: expected three positive integers"),
        (["Global.image_shape=[1, 64, 64]"], "Global.image_shape: the channel count C must be 3"),
    ],
)
def test_errors_name_the_key_and_the_choices(overrides, message):
    with pytest.raises((ConfigError, KeyError)) as e:
        load_config(QUICK, overrides)
    assert message in str(e.value)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found: nope.yaml"):
        load_config("nope.yaml")


def test_override_index_out_of_range():
    cfg = {"DataLoader": {"Train": {"dataset": {"transform_ops": [{"A": {}}]}}}}
    with pytest.raises(ConfigError, match="index out of range"):
        apply_override(cfg, "DataLoader.Train.dataset.transform_ops.5.A.x".split("."), 1)


@pytest.mark.parametrize("override, needle", [
    ("Global.epoch=2", "Global.epoch: unknown key"),
    ("Arch.name=NoSuchNet", "unknown model name 'NoSuchNet'"),
])
def test_tool_exits_nonzero_before_work(tmp_path, digits_dir, override, needle):
    path = write_config(tiny_config(digits_dir, str(tmp_path)), str(tmp_path / "c.yaml"))
    proc = run_tool("train.py", "-c", path, "-o", override)
    assert proc.returncode != 0
    assert needle in proc.stdout + proc.stderr
    assert not os.path.exists(tmp_path / "PPLCNet_x0_25" / "latest.pdparams")


def test_tool_missing_config_exits_nonzero(tmp_path):
    proc = run_tool("train.py", "-c", str(tmp_path / "missing.yaml"))
    assert proc.returncode != 0 and "config file not found" in proc.stdout + proc.stderr


def test_exponent_floats_without_dot_are_numbers():
    from ppcls.utils.config import yaml_load

    assert yaml_load("a: 3e-05\nb: 1E4\nc: 1.0/255.0\nd: 12") == {"a": 3e-05, "b": 1e4, "c": "1.0/255.0", "d": 12}
    cfg = load_config(QUICK, ["Optimizer.regularizer.coeff=1e-4"])
    assert cfg["Optimizer"]["regularizer"]["coeff"] == 1e-4


@pytest.mark.parametrize("path", sorted(
    os.path.relpath(os.path.join(d, f), REPO)
    for d, _, files in os.walk(os.path.join(REPO, "configs")) for f in files if f.endswith(".yaml")))
def test_every_shipped_config_validates(path, tmp_path):
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        own_data = "data_dir:" in f.read()
    overrides = []
    if own_data:  # a recipe for your own folder (it reads the folder's layout when loaded): a tiny one here
        for split in ("train", "val"):
            (tmp_path / split / "a").mkdir(parents=True)
        overrides = [f"Global.data_dir={tmp_path}"]
    cfg = load_config(os.path.join(REPO, path), overrides)
    assert cfg["Arch"]["name"]
    lr = cfg["Optimizer"]["lr"]
    assert "ImageNet" not in path or lr.get("base_batch_size"), "ImageNet recipes state their total batch"


# ----------------------------------------------------------------------------- Global.class_num


def _tiny(tmp_path, digits_dir, **arch) -> dict:
    cfg = tiny_config(digits_dir, str(tmp_path))
    cfg["Arch"] = {"name": "PPLCNet_x0_25", **arch}
    return cfg


def test_global_class_num_is_used_when_arch_has_none(tmp_path, digits_dir):
    cfg = _tiny(tmp_path, digits_dir)
    cfg["Global"]["class_num"] = 3
    cfg = load_config(write_config(cfg, str(tmp_path / "c.yaml")))
    assert cfg["Arch"]["class_num"] == 3
    from ppcls.engine.runner import _class_num

    assert _class_num(cfg) == 3  # what the model, the loss and the metrics are built with


def test_global_and_arch_class_num_must_agree(tmp_path, digits_dir):
    cfg = _tiny(tmp_path, digits_dir, class_num=1000)
    cfg["Global"]["class_num"] = 3
    path = write_config(cfg, str(tmp_path / "c.yaml"))
    with pytest.raises(ConfigError, match=r"^Global.class_num: 3 differs from Arch.class_num: 1000"):
        load_config(path)
    assert load_config(path, ["Arch.class_num=3"])["Arch"]["class_num"] == 3  # equal: fine
    with pytest.raises(ConfigError, match="Global.class_num: expected int"):
        load_config(path, ["Global.class_num=three"])


# ----------------------------------------------------------------------------- accepted = honoured or refused


@pytest.mark.parametrize("overrides, message", [
    (["Global.use_dali=True"], "Global.use_dali: True is not supported: DALI is not supported"),
    (["Global.eval_mode=retrieval"], "Global.eval_mode: 'retrieval' is not supported: only classification"),
    (["Global.distributed=True"], "Global.distributed: not read: the number of training processes comes from"),
    (["Global.distributed=False"], "Global.distributed: not read"),
    (["AMP.use_amp=True", "AMP.level=O2", "AMP.dtype=bfloat16", "AMP.use_fp16_test=True"],
     "AMP.use_fp16_test: True is not supported: evaluation always runs in float32"),
    (["AMP.use_amp=True", "AMP.level=O2", "AMP.dtype=bfloat16", "Optimizer.multi_precision=False"],
     "Optimizer.multi_precision: False is not supported with AMP.level O2"),
    (["Global.accum_steps=2", "Global.update_freq=4"], "Global.update_freq: 4 differs from Global.accum_steps: 2"),
    (["DataLoader.Test={dataset: {name: ImageNetDataset}}"], "DataLoader.Test: not read by any tool here"),
    (["Slim={quant: {name: pact}}"], "Slim: section not supported"),
    (["Distillation={}"], "Distillation: section not supported"),
    (["Export={}"], "Export: section not supported"),
])
def test_paddleclas_keys_that_would_do_nothing_are_refused(overrides, message):
    with pytest.raises(ConfigError) as e:
        load_config(QUICK, overrides)
    assert str(e.value).startswith(message.split(":")[0] + ":"), str(e.value)  # the key comes first
    assert message in str(e.value)


@pytest.mark.parametrize("overrides", [
    ["Global.use_dali=False"],
    ["Global.eval_mode=classification"],
    ["AMP.use_fp16_test=False"],
    ["Optimizer.multi_precision=True"],
    ["Optimizer.multi_precision=False"],  # without AMP O2 every weight is float32 anyway
    ["AMP.use_amp=True", "AMP.level=O2", "AMP.dtype=bfloat16", "Optimizer.multi_precision=True"],
    ["Global.accum_steps=2", "Global.update_freq=2"],
    ["Global.update_freq=2"],
])
def test_paddleclas_keys_with_the_value_this_framework_uses_are_accepted(overrides):
    load_config(QUICK, overrides)


# ----------------------------------------------------------------------------- bounded messages


def _laughs_yaml(levels: int, width: int = 9) -> str:
    """YAML whose alias expansion is ``width ** levels`` strings ("billion laughs")."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines)


def _config_text(extra_global: str) -> str:
    with open(QUICK, encoding="utf-8") as f:
        text = f.read()
    return text.replace("Global:\n", f"Global:\n{extra_global}\n", 1)


def test_billion_laughs_config_is_refused_cheaply(tmp_path):
    # 6 lines of anchors stand for 9^6 = 531,441 strings (small, so that even formatting them all, as
    # before, is quick to fail on; 9^9 took 93 s and 11.5 GB); Global.epochs uses the last one
    laughs = _laughs_yaml(6).splitlines()
    yaml_text = "Anchors:\n" + "\n".join("  " + ln for ln in laughs) + "\n" + _config_text("  epochs: *l5")
    path = tmp_path / "laughs.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    start = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        load_config(str(path))
    took = time.perf_counter() - start
    msg = str(e.value)
    assert took < 5, took
    assert len(msg) < 2000 and "YAML aliases" in msg and "more than 100,000 values" in msg
    assert re.match(r"(Anchors\.l\d|Global\.epochs): ", msg), msg[:100]  # the key comes first


def test_billion_laughs_in_an_override_is_refused_cheaply():
    laughs = _laughs_yaml(6).splitlines()
    # one -o value that holds the whole nest: a list whose last item repeats the anchored ones
    flow = "[" + ", ".join(ln.split(": ", 1)[1] for ln in laughs) + "]"
    start = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        load_config(QUICK, [f"Global.epochs={flow}"])
    assert time.perf_counter() - start < 5
    msg = str(e.value)
    assert len(msg) < 2000 and "YAML aliases" in msg and msg.startswith("Global.epochs: ")


def test_a_wrong_value_of_moderate_expansion_is_summarised(tmp_path):
    # 9^5 = 59,049 strings: under the size limit, so validation reaches the type check, whose
    # message shows a summary rather than the 400 KB expansion
    laughs = _laughs_yaml(5).splitlines()
    flow = "[" + ", ".join(ln.split(": ", 1)[1] for ln in laughs) + "]"
    with pytest.raises(ConfigError) as e:
        load_config(QUICK, [f"Global.epochs={flow}"])
    msg = str(e.value)
    assert msg.startswith("Global.epochs: expected int, got [") and len(msg) < 2000
    assert "(9 items)" in msg or "(5 items)" in msg


def test_count_values_costs_the_file_not_the_expansion():
    from ppcls.utils.config import MAX_CONFIG_VALUES, count_values, yaml_load

    nest = yaml_load(_laughs_yaml(30, width=10))  # 10^30 values
    start = time.perf_counter()
    assert count_values(nest) > MAX_CONFIG_VALUES
    assert time.perf_counter() - start < 1
    assert count_values({"a": [1, 2, {"b": 3}]}) == 6
    loop: list = [1]
    loop.append(loop)  # YAML can build a list that holds itself: counting still ends
    assert count_values(loop) <= MAX_CONFIG_VALUES + 1


def test_huge_user_values_are_summarised_in_messages():
    big = "x" * 200_000
    for overrides in (
        [f"Global.epochs={big}"],  # type error
        [f"Arch.name={big}"],  # unknown registry name
        [f"Global.{big}=1"],  # unknown key
        [f"{big}.a=1"],  # unknown section
        [f"Optimizer.lr.name=[{', '.join(['1'] * 10_000)}]"],
        [f"Arch.pretrained={{a: [{', '.join(['1'] * 10_000)}]}}"],
    ):
        with pytest.raises(ConfigError) as e:
            load_config(QUICK, overrides)
        assert len(str(e.value)) < 2000, (overrides[0][:40], len(str(e.value)))
    with pytest.raises(ConfigError) as e:
        parse_override(big)  # no "="
    assert len(str(e.value)) < 2000


def test_deeply_nested_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("Global: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(str(path))
