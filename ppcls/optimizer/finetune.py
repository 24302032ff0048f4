"""Fine-tuning mode: a from-scratch recipe's schedule adapted to start from trained weights.

On when ``Arch.pretrained`` is set (``Global.finetune.enabled`` forces it on or off). The rule
(docs/finetune.md), applied to ``Optimizer.lr`` before the schedule is built:

* learning rate: ``Global.finetune.learning_rate`` when given; otherwise the recipe's rate at a
  total batch of 256 (``learning_rate x 256 / base_batch_size``: PP-LCNet's 0.8 for 2048 gives
  0.1, PaddleX's fine-tuning rate for it), and never scaled to the run's batch: a from-scratch
  rate scaled down to a batch of 16 is about zero. A recipe without ``base_batch_size`` keeps its
  rate. Every rate of the schedule (``values``, ``eta_min``, ...) moves by the same factor.
* warmup: ``Global.finetune.warmup_epoch`` when given; otherwise the recipe's, at most a tenth
  of ``Global.epochs`` (none for runs under 10 epochs).
* ``Global.finetune.head_only_epochs`` (default 0): the backbone is frozen for that many first
  epochs and only the new head learns (:class:`ppcls.engine.callbacks.HeadOnlyEpochs`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from ppcls.utils.errors import ConfigError, summarize
from ppcls.utils.numbers import parse_number

from .lr import _scale_keys

logger = logging.getLogger(__name__)

REFERENCE_BATCH = 256
FINETUNE_KEYS: dict[str, tuple] = {
    "enabled": (bool, type(None)),
    "learning_rate": (int, float, str, type(None)),
    "warmup_epoch": (int, float, type(None)),
    "head_only_epochs": (int,),
}


@dataclass
class FinetunePlan:
    """What fine-tuning mode chose (also written into the config, so the run's log and dump show it)."""

    learning_rate: float
    warmup_epoch: float
    head_only_epochs: int


def finetune_settings(g: Mapping) -> dict[str, Any]:
    """``Global.finetune`` checked: a mapping of :data:`FINETUNE_KEYS`."""
    raw = g.get("finetune")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"Global.finetune: expected a mapping ({', '.join(FINETUNE_KEYS)}), got {summarize(raw)}")
    for key, value in raw.items():
        if key not in FINETUNE_KEYS:
            shown = key if isinstance(key, str) and len(key) <= 60 else summarize(key, 60)
            raise ConfigError(f"Global.finetune.{shown}: unknown key; valid: {', '.join(FINETUNE_KEYS)}")
        if isinstance(value, bool) and bool not in FINETUNE_KEYS[key] or not isinstance(value, FINETUNE_KEYS[key]):
            raise ConfigError(f"Global.finetune.{key}: got {summarize(value)}, expected "
                              + " or ".join("null" if t is type(None) else t.__name__ for t in FINETUNE_KEYS[key]))
    if int(raw.get("head_only_epochs", 0)) < 0:
        raise ConfigError(f"Global.finetune.head_only_epochs: expected 0 or more, got {raw['head_only_epochs']}")
    return dict(raw)


def finetune_active(g: Mapping, arch: Mapping) -> bool:
    enabled = finetune_settings(g).get("enabled")
    return bool(arch.get("pretrained")) if enabled is None else enabled


def adapt_for_finetuning(cfg: MutableMapping) -> FinetunePlan | None:
    """Apply the fine-tuning rule to ``cfg['Optimizer']['lr']`` when the mode is on; logs the choice."""
    g, arch = cfg["Global"], cfg["Arch"]
    settings = finetune_settings(g)
    if not finetune_active(g, arch):
        return None
    opt = cfg.get("Optimizer")
    if not isinstance(opt, MutableMapping) or opt.get("lr") is None:
        return None
    lr = opt["lr"]
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        lr = opt["lr"] = {"name": "Constant", "learning_rate": float(lr)}
    epochs = int(g.get("epochs", 1))
    recipe_rate = _peak(lr)
    base = lr.get("base_batch_size")
    why = []
    if settings.get("learning_rate") is not None:
        target = parse_number(settings["learning_rate"], "Global.finetune.learning_rate")
        why.append("Global.finetune.learning_rate")
    elif base:
        target = recipe_rate * REFERENCE_BATCH / float(base)
        why.append(f"the recipe's {recipe_rate:g} for a batch of {base} at a batch of {REFERENCE_BATCH}")
    else:
        target = recipe_rate
        why.append("the recipe's rate")
    if target <= 0:
        raise ConfigError(f"Global.finetune.learning_rate: expected a positive rate, got {target:g}")
    if recipe_rate > 0 and target != recipe_rate:
        _scale_keys(lr, target / recipe_rate)
    lr["scale_by_batch"] = False  # fine-tuning rates are not scaled to the batch
    recipe_warmup = float(lr.get("warmup_epoch", 0) or 0)
    if settings.get("warmup_epoch") is not None:
        warmup = float(settings["warmup_epoch"])
    else:
        warmup = min(recipe_warmup, float(epochs // 10))
    lr["warmup_epoch"] = warmup
    head_only = int(settings.get("head_only_epochs", 0))
    if head_only >= epochs:
        raise ConfigError(f"Global.finetune.head_only_epochs: {head_only} leaves no epoch of the {epochs} "
                          "(Global.epochs) to train the backbone; use Arch.freeze_backbone: True to train the head only")
    trigger = "Global.finetune.enabled" if settings.get("enabled") else "Arch.pretrained is set"
    logger.info(
        "fine-tuning mode (%s): learning rate %.6g (%s; not scaled to your batch), warmup %g epoch(s) (recipe %g), "
        "%s. To choose: -o Global.finetune.learning_rate=..., -o Global.finetune.warmup_epoch=..., "
        "-o Global.finetune.head_only_epochs=N; -o Global.finetune.enabled=False keeps the recipe's schedule",
        trigger, target, why[0], warmup, recipe_warmup,
        f"head only for the first {head_only} epoch(s)" if head_only else "the whole network from the first epoch",
    )
    return FinetunePlan(target, warmup, head_only)


def _peak(lr: Mapping) -> float:
    if lr.get("learning_rate") is not None:
        return parse_number(lr["learning_rate"], "Optimizer.lr.learning_rate")
    values = lr.get("values")
    if values:
        return parse_number(values[0], "Optimizer.lr.values")
    raise ConfigError("Optimizer.lr.learning_rate: missing; fine-tuning mode needs the recipe's rate")


__all__ = ["FINETUNE_KEYS", "FinetunePlan", "adapt_for_finetuning", "finetune_active", "finetune_settings"]
