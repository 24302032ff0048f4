"""Config loading, -o overrides and the errors raised before anything is built."""

from __future__ import annotations

import os

import pytest

from ppcls.utils.config import ConfigError, apply_override, load_config, parse_override
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
        (["Globl.epochs=3"], "unknown section 'Globl'. Did you mean: Global"),
        (["Global.epoch=3"], "unknown key Global.epoch. Did you mean: epochs"),
        (["Global.epochs=three"], "Global.epochs: expected int, got 'three'"),
        (["Arch.name=PPLCNet_x9"], "unknown model name 'PPLCNet_x9'"),
        (["Arch.clas_num=3"], "unknown key Arch(PPLCNet_x0_25).clas_num. Did you mean: class_num"),
        (["Arch.class_num=0"], "Arch.class_num: expected a positive integer"),
        (["Optimizer.name=Momentun"], "unknown optimizer name 'Momentun'. Did you mean: Momentum"),
        (["Optimizer.lr.name=Cosin"], "unknown lr schedule name 'Cosin'. Did you mean: Cosine"),
        (["Optimizer.lr.warmup_epochs=2"], "unknown key Optimizer.lr(Cosine).warmup_epochs"),
        (["Optimizer.momentum=fast"], "Optimizer(Momentum).momentum: expected"),
        (["Loss.Train=[{CELos: {weight: 1.0}}]"], "unknown loss name 'CELos'. Did you mean: CELoss"),
        (["Metric.Eval=[{TopKAcc: {topk: [1]}}]"], "unknown metric name 'TopKAcc'. Did you mean: TopkAcc"),
        (["DataLoader.Train.dataset.transform_ops.1.ResizeImage.sise=3"], "unknown key DataLoader.Train.dataset.transform_ops[1].ResizeImage.sise"),
        (["DataLoader.Train.dataset.transform_ops=[{ResizeImg: {size: 3}}]"], "unknown transform name 'ResizeImg'"),
        (["DataLoader.Train.sampler.batch_size=big"], "batch_size: expected int"),
        (["Infer.PostProcess.name=TopK"], "unknown postprocess name 'TopK'. Did you mean: Topk"),
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
    ("Global.epoch=2", "unknown key Global.epoch"),
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
def test_every_shipped_config_validates(path):
    cfg = load_config(os.path.join(REPO, path))
    assert cfg["Arch"]["name"]
    lr = cfg["Optimizer"]["lr"]
    assert "ImageNet" not in path or lr.get("base_batch_size"), "ImageNet recipes state their total batch"
