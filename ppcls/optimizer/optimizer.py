"""Optimizers built by name, with weight-decay parameter groups.

Decayed: every trainable parameter except BatchNorm parameters (PaddleClas's models set their
BN decay to 0), names containing an entry of ``no_weight_decay_name`` and, with
``one_dim_param_no_weight_decay``, all 1-D parameters. Frozen parameters are left out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import paddle
import paddle.nn as nn

from ppcls.arch.freeze import head_prefixes
from ppcls.registry import OPTIMIZERS
from ppcls.utils.errors import ConfigError
from ppcls.utils.numbers import parse_number

logger = logging.getLogger(__name__)
_NORM_TYPES = (nn.BatchNorm2D, nn.BatchNorm1D, nn.BatchNorm, nn.LayerNorm, nn.SyncBatchNorm, nn.GroupNorm)


@OPTIMIZERS.register()
def Momentum(parameters, learning_rate, weight_decay=None, grad_clip=None,
             momentum: float = 0.9, use_nesterov: bool = False) -> paddle.optimizer.Optimizer:
    return paddle.optimizer.Momentum(learning_rate=learning_rate, momentum=momentum,
                                     parameters=parameters, use_nesterov=use_nesterov,
                                     weight_decay=weight_decay, grad_clip=grad_clip)


@OPTIMIZERS.register()
def SGD(parameters, learning_rate, weight_decay=None, grad_clip=None) -> paddle.optimizer.Optimizer:
    return paddle.optimizer.SGD(learning_rate=learning_rate, parameters=parameters,
                                weight_decay=weight_decay, grad_clip=grad_clip)


@OPTIMIZERS.register()
def Adam(parameters, learning_rate, weight_decay=None, grad_clip=None, beta1: float = 0.9,
         beta2: float = 0.999, epsilon: float = 1e-8, lazy_mode: bool = False) -> paddle.optimizer.Optimizer:
    return paddle.optimizer.Adam(learning_rate=learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon,
                                 parameters=parameters, weight_decay=weight_decay, grad_clip=grad_clip,
                                 lazy_mode=lazy_mode)


@OPTIMIZERS.register()
def AdamW(parameters, learning_rate, weight_decay=None, grad_clip=None, beta1: float = 0.9,
          beta2: float = 0.999, epsilon: float = 1e-8) -> paddle.optimizer.Optimizer:
    # decoupled decay: a group's weight_decay is its coefficient (0.0 for the no-decay group)
    return paddle.optimizer.AdamW(learning_rate=learning_rate, beta1=beta1, beta2=beta2, epsilon=epsilon,
                                  parameters=parameters, weight_decay=weight_decay or 0.0,
                                  grad_clip=grad_clip)


@OPTIMIZERS.register()
def RMSProp(parameters, learning_rate, weight_decay=None, grad_clip=None, rho: float = 0.95,
            epsilon: float = 1e-6, momentum: float = 0.0, centered: bool = False) -> paddle.optimizer.Optimizer:
    return paddle.optimizer.RMSProp(learning_rate=learning_rate, rho=rho, epsilon=epsilon,
                                    momentum=momentum, centered=centered, parameters=parameters,
                                    weight_decay=weight_decay, grad_clip=grad_clip)


def split_decay_groups(
    model: nn.Layer, no_weight_decay_name: str | list | None, one_dim_no_decay: bool
) -> tuple[list, list]:
    """(decayed, not decayed) trainable parameters of ``model``."""
    if isinstance(no_weight_decay_name, str):
        patterns = no_weight_decay_name.split()
    else:
        patterns = list(no_weight_decay_name or [])
    norm_params = {
        id(p) for layer in model.sublayers(include_self=True) if isinstance(layer, _NORM_TYPES)
        for p in layer.parameters(include_sublayers=False)
    }
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.stop_gradient:
            continue
        if (id(p) in norm_params or any(pat in name for pat in patterns)
                or (one_dim_no_decay and len(p.shape) == 1)):
            no_decay.append(p)
        else:
            decay.append(p)
    return decay, no_decay


def _head_parameter_ids(model: nn.Layer) -> set[int]:
    """Ids of the classifier head's parameters (the network's ``head_names``)."""
    heads = head_prefixes(model)
    return {id(p) for name, p in model.named_parameters()
            if any(name == h or name.startswith(h + ".") for h in heads)}


def build_optimizer(opt_cfg: Mapping[str, Any], model: nn.Layer, lr) -> paddle.optimizer.Optimizer:
    """Build ``Optimizer`` for ``model``'s trainable parameters with learning rate ``lr``."""
    cfg = dict(opt_cfg)
    name = cfg.pop("name")
    cfg.pop("lr", None)
    reg = cfg.pop("regularizer", None)
    coeff = parse_number(reg.get("coeff", 0.0), "Optimizer.regularizer.coeff") if reg else 0.0
    if "weight_decay" in cfg:  # AdamW style key
        coeff = parse_number(cfg.pop("weight_decay"), "Optimizer.weight_decay")
    clip_norm = cfg.pop("clip_norm", None)
    grad_clip = nn.ClipGradByGlobalNorm(float(clip_norm)) if clip_norm else None
    decay, no_decay = split_decay_groups(
        model, cfg.pop("no_weight_decay_name", None), bool(cfg.pop("one_dim_param_no_weight_decay", False))
    )
    cfg.pop("multi_precision", None)
    if not decay and not no_decay:
        raise ConfigError("Arch.freeze_backbone / Arch.freeze_params: every parameter is frozen, so the optimizer has nothing to train")
    backbone_mult = parse_number(cfg.pop("backbone_lr_mult", 1.0), "Optimizer.backbone_lr_mult")
    if backbone_mult < 0:
        raise ConfigError(f"Optimizer.backbone_lr_mult: expected a number >= 0, got {backbone_mult}")
    head = _head_parameter_ids(model) if backbone_mult != 1.0 else set()
    groups = []
    for params, wd in ((decay, coeff), (no_decay, 0.0)):
        in_head = [p for p in params if id(p) in head]
        in_backbone = [p for p in params if id(p) not in head]
        for group, mult in ((in_backbone, backbone_mult), (in_head, 1.0)):
            if group:  # Paddle scales a group's LR by its 'learning_rate' (a multiplier)
                groups.append({"params": group, "weight_decay": wd, "learning_rate": mult})
    logger.info(
        "optimizer %s: %d tensors with weight decay %g, %d without%s",
        name, len(decay), coeff, len(no_decay),
        f"; backbone LR x{backbone_mult:g}, head ({len(head)} tensors) x1" if head else "",
    )
    return OPTIMIZERS.build(name, parameters=groups, learning_rate=lr, weight_decay=coeff or None,
                            grad_clip=grad_clip, **cfg)
