"""Parameter and MAC counts (ppcls/utils/flops.py) and tools/model_summary.py."""

from __future__ import annotations

import importlib.util
import logging
import os

import paddle
import paddle.nn as nn
import pytest

import ppcls.arch  # noqa: F401  (registers the models)
from ppcls.arch import build_model
from ppcls.engine.model_summary import summarize_model
from ppcls.registry import MODELS
from ppcls.utils.flops import (
    MARK_END,
    MARK_START,
    count_flops,
    count_params,
    replace_between_markers,
)
from tests.conftest import REPO, run_tool, tiny_config, write_config


def load_tool():
    spec = importlib.util.spec_from_file_location("model_summary", os.path.join(REPO, "tools", "model_summary.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Small(nn.Layer):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2D(3, 8, 3, padding=1, bias_attr=False)
        self.bn = nn.BatchNorm2D(8)
        self.dw = nn.Conv2D(8, 8, 3, stride=2, padding=1, groups=8)
        self.up = nn.Conv2DTranspose(8, 4, 2, stride=2)
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        x = self.up(self.dw(nn.functional.relu(self.bn(self.conv(x)))))
        return self.fc(self.pool(x).flatten(1))


def test_counts_by_hand():
    model = Small()
    # conv 8*8*8 outputs x 27; depthwise 8*4*4 x 9; transpose 8*4*4 inputs x 4*2*2; fc 10 x 4
    macs = 8 * 8 * 8 * 27 + 8 * 4 * 4 * 9 + 8 * 4 * 4 * 16 + 10 * 4
    assert count_flops(model, (1, 3, 8, 8)) == macs
    assert count_flops(model, (2, 3, 8, 8)) == 2 * macs
    assert count_flops(model, (1, 3, 8, 8), bn_ops_per_element=2) == macs + 2 * 8 * 8 * 8
    conv, bn, dw, up, fc = 8 * 27, 4 * 8, 8 * 9 + 8, 8 * 4 * 4 + 4, 4 * 10 + 10
    assert count_params(model) == conv + bn + dw + up + fc  # BN: weight, bias, running mean, variance
    assert count_params(model, trainable_only=True) == conv + bn // 2 + dw + up + fc
    assert model.training  # the count runs in eval mode and restores the mode


def test_uncounted_kernels_are_named(caplog):
    class Custom(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = self.create_parameter([4, 3, 1, 1])

        def forward(self, x):
            return nn.functional.conv2d(x, self.kernel)

    with caplog.at_level(logging.WARNING, logger="ppcls.utils.flops"):
        assert count_flops(Custom(), (1, 3, 4, 4)) == 0
    assert "not counted" in caplog.text and "<model> (Custom)" in caplog.text


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_counts(name):
    model = build_model({"name": name, "class_num": 10})
    macs = count_flops(model, (1, 3, 64, 64))
    assert macs > 0 and count_flops(model, (1, 3, 64, 64)) == macs
    assert count_params(model) >= count_params(model, trainable_only=True) > 0


# published figures: PP-LCNet's come from paddle.flops (BatchNorm counted as 2 ops per element),
# the others are the papers' conv + FC multiply-adds
PUBLISHED = [("PPLCNet_x1_0", 2, 161e6), ("PPLCNet_x0_25", 2, 18e6), ("ShuffleNetV2_x1_0", 0, 146e6),
             ("PeleeNet", 0, 508e6), ("SqueezeNet1_1", 0, 352e6)]


@pytest.mark.parametrize("name, bn_ops, published", PUBLISHED)
def test_published_figures(name, bn_ops, published):
    model = build_model({"name": name})
    assert count_flops(model, (1, 3, 224, 224), bn_ops_per_element=bn_ops) == pytest.approx(published, rel=0.02)
    if name == "PPLCNet_x1_0":
        assert count_flops(model) == 155_700_480  # conv + FC only
        assert count_params(model) == pytest.approx(2.96e6, rel=0.01)


def test_deploy_counts_fold_batchnorm():
    s = summarize_model({"name": "PPLCNet_x0_25", "class_num": 10}, (3, 32, 32))
    assert s.deploy_macs == s.macs and s.deploy_params < s.params and s.input_size == "32x32"


def test_replace_between_markers():
    text = f"intro\n\n{MARK_START}\nold table\n{MARK_END}\n\nafter\n"
    assert replace_between_markers(text, "| new |\n") == f"intro\n\n{MARK_START}\n| new |\n{MARK_END}\n\nafter\n"
    with pytest.raises(ValueError, match="once each"):
        replace_between_markers("no markers", "x", "docs/model_zoo.md")
    with pytest.raises(ValueError, match="comes before"):
        replace_between_markers(f"{MARK_END}\n{MARK_START}", "x")


def _row(stdout: str, name: str) -> list[str]:
    return next(line.split() for line in stdout.splitlines() if line.startswith(name + " "))


def test_cli_model_and_markdown(tmp_path, capsys):
    doc = tmp_path / "zoo.md"
    doc.write_text(f"# Zoo\n\ntext kept\n{MARK_START}\nstale\n{MARK_END}\nfooter kept\n")
    tool = load_tool()
    assert tool.main(["--model", "PPLCNet_x0_25", "--model", "SqueezeNet1_1", "--input_size", "64",
                      "--class_num", "10", "--markdown", str(doc)]) == 0
    out = capsys.readouterr().out
    for name in ("PPLCNet_x0_25", "SqueezeNet1_1"):
        model = build_model({"name": name, "class_num": 10})
        row = _row(out, name)
        assert float(row[1]) == pytest.approx(count_params(model) / 1e6, abs=0.005)
        assert float(row[2]) == pytest.approx(count_params(model, trainable_only=True) / 1e6, abs=0.005)
        assert float(row[3]) == pytest.approx(count_flops(model, (1, 3, 64, 64)) / 1e6, abs=0.05)
        assert row[-1] == "64x64"
    text = doc.read_text()
    assert text.startswith("# Zoo\n\ntext kept\n") and text.endswith(f"{MARK_END}\nfooter kept\n")
    assert "stale" not in text and "| PPLCNet_x0_25 |" in text and "| SqueezeNet1_1 |" in text
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    with pytest.raises(KeyError, match="Did you mean"):
        tool.main(["--model", "PPLCNet_x0_2"])


def test_cli_config_form(tmp_path, digits_dir):
    path = write_config(tiny_config(digits_dir, str(tmp_path), size=48), str(tmp_path / "cfg.yaml"))
    proc = run_tool("model_summary.py", "-c", path, "-o", "Arch.class_num=7", "--no_deploy")
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = _row(proc.stdout, "PPLCNet_x0_25")
    model = build_model({"name": "PPLCNet_x0_25", "class_num": 7})
    assert float(row[3]) == pytest.approx(count_flops(model, (1, 3, 48, 48)) / 1e6, abs=0.05)
    assert float(row[1]) == pytest.approx(count_params(model) / 1e6, abs=0.005)
    assert row[-1] == "48x48" and row[4] == "-"
    with pytest.raises(ValueError, match="pass -c CONFIG"):
        load_tool().main(["--model", "PPLCNet_x0_25", "-o", "Arch.class_num=7"])


def test_paddle_mode_unchanged_after_count():
    model = build_model({"name": "PPLCNet_x0_25", "class_num": 3})
    model.eval()
    count_flops(model, (1, 3, 32, 32))
    assert not model.training
    assert paddle.is_grad_enabled()
