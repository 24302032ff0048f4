"""Fine-tuning mode: the documented rule applied to the shipped recipes, overrides, and head-only epochs."""

from __future__ import annotations

import logging
import os

import numpy as np
import paddle
import pytest

from ppcls.arch import build_model
from ppcls.engine.callbacks import HeadOnlyEpochs
from ppcls.engine.config import load_config
from ppcls.optimizer import build_lr, build_optimizer
from ppcls.optimizer.finetune import adapt_for_finetuning
from ppcls.utils.errors import ConfigError
from tests.conftest import REPO


def recipe(family: str, name: str, *overrides: str) -> dict:
    return load_config(os.path.join(REPO, "configs", "ImageNet", family, f"{name}.yaml"), list(overrides))


@pytest.mark.parametrize("family, name, rate", [
    ("PPLCNet", "PPLCNet_x1_0", 0.1),  # 0.8 for 2048 -> 0.1, PaddleX's fine-tuning rate
    ("ShuffleNet", "ShuffleNetV2_x1_0", 0.125),
    ("MobileNeXt", "MobileNeXt_x1_0", 0.05),
])
def test_recipe_rate_at_a_batch_of_256_is_not_scaled_to_the_run_batch(family, name, rate, caplog):
    cfg = recipe(family, name, "Arch.pretrained=True", "Global.epochs=10",
                 "DataLoader.Train.sampler.batch_size=16")
    with caplog.at_level(logging.INFO):
        plan = adapt_for_finetuning(cfg)
    assert plan is not None and plan.learning_rate == pytest.approx(rate)
    lr = build_lr(cfg["Optimizer"]["lr"], 10, 5, global_batch_size=16)
    assert lr.base_lr == pytest.approx(rate)  # no linear scaling to batch 16 (that gave 0.8 * 16 / 2048)
    assert lr.warmup_steps == 5  # one epoch: the recipe's warmup, at most a tenth of the epochs
    assert "fine-tuning mode (Arch.pretrained is set)" in caplog.text
    assert "-o Global.finetune.learning_rate=" in caplog.text and "Global.finetune.enabled=False" in caplog.text


def test_short_runs_have_no_warmup_and_settings_override_the_rule():
    cfg = recipe("PPLCNet", "PPLCNet_x0_25", "Arch.pretrained=True", "Global.epochs=5")
    assert adapt_for_finetuning(cfg).warmup_epoch == 0
    cfg = recipe("PPLCNet", "PPLCNet_x0_25", "Arch.pretrained=True", "Global.epochs=20",
                 "Global.finetune.learning_rate=0.01", "Global.finetune.warmup_epoch=3")
    plan = adapt_for_finetuning(cfg)
    assert (plan.learning_rate, plan.warmup_epoch) == (0.01, 3)
    assert cfg["Optimizer"]["lr"]["learning_rate"] == pytest.approx(0.01)


def test_mode_is_off_without_pretrained_weights_or_when_disabled():
    assert adapt_for_finetuning(recipe("PPLCNet", "PPLCNet_x0_25")) is None
    cfg = recipe("PPLCNet", "PPLCNet_x0_25", "Arch.pretrained=True", "Global.finetune.enabled=False")
    assert adapt_for_finetuning(cfg) is None and cfg["Optimizer"]["lr"]["learning_rate"] == 0.8
    forced = recipe("PPLCNet", "PPLCNet_x0_25", "Global.finetune.enabled=True", "Global.epochs=10")
    assert adapt_for_finetuning(forced).learning_rate == pytest.approx(0.1)


def test_every_rate_of_a_piecewise_schedule_moves_together():
    cfg = recipe("PPLCNet", "PPLCNet_x0_25", "Arch.pretrained=True", "Global.epochs=10",
                 "Optimizer.lr={name: Piecewise, decay_epochs: [5], values: [0.8, 0.08], base_batch_size: 2048}")
    adapt_for_finetuning(cfg)
    assert cfg["Optimizer"]["lr"]["values"] == pytest.approx([0.1, 0.01])


@pytest.mark.parametrize("override, message", [
    ("Global.finetune.lr=0.1", "Global.finetune.lr: unknown key"),
    ("Global.finetune.head_only_epochs=-1", "expected 0 or more"),
    ("Global.finetune.enabled=maybe", "Global.finetune.enabled: got 'maybe'"),
])
def test_bad_finetune_settings_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        recipe("PPLCNet", "PPLCNet_x0_25", override)


def test_head_only_epochs_must_leave_backbone_epochs():
    cfg = recipe("PPLCNet", "PPLCNet_x0_25", "Arch.pretrained=True", "Global.epochs=2",
                 "Global.finetune.head_only_epochs=2")
    with pytest.raises(ConfigError, match="head_only_epochs: 2 leaves no epoch"):
        adapt_for_finetuning(cfg)


def test_head_only_epochs_train_the_head_alone_then_everything():
    paddle.seed(0)
    model = build_model({"name": "PPLCNet_x0_25", "class_num": 3})
    opt_cfg = {"name": "Momentum", "momentum": 0.9, "backbone_lr_mult": 0.5,
               "regularizer": {"name": "L2", "coeff": 1e-4}}
    optimizer = build_optimizer(opt_cfg, model, 0.1)
    hook = HeadOnlyEpochs(model, 1)
    x = paddle.to_tensor(np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype("float32"))
    y = paddle.to_tensor(np.array([0, 1, 2, 0], dtype="int64"))

    def step() -> tuple[float, float]:
        """(largest change of a head parameter, largest change of a backbone parameter) in one step."""
        params = [p for p in model.parameters() if not p.stop_gradient]
        before = [p.numpy().copy() for p in params]
        loss = paddle.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        backbone = {id(p) for p in hook.backbone}
        moved = [(id(p) in backbone, float(np.abs(p.numpy() - b).max())) for p, b in zip(params, before)]
        return max(v for bb, v in moved if not bb), max(v for bb, v in moved if bb)

    hook.on_epoch_begin(1)
    head, backbone = step()
    assert head > 0 and backbone == 0.0
    hook.on_epoch_begin(2)
    head, backbone = step()
    assert head > 0 and backbone > 0
    assert all(p.optimize_attr["learning_rate"] == 0.5 for p in hook.backbone)  # backbone_lr_mult restored
