"""A model built from an ``Arch`` section, counted: parameters and MACs, before and after reparameterization.

It builds models, so it sits at the engine level (``tools/model_summary.py`` uses it); the counting
itself is :mod:`ppcls.utils.flops`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ppcls.arch import build_model
from ppcls.arch.layers.reparam import reparameterize_model
from ppcls.utils.errors import ConfigError
from ppcls.utils.flops import ModelSummary, count_flops, count_params


def summarize_model(arch_cfg: Mapping[str, Any], input_shape: Sequence[int] = (3, 224, 224),
                    deploy: bool = True) -> ModelSummary:
    """Build the model of ``arch_cfg`` (an ``Arch`` section) and count it at ``input_shape`` (C, H, W).

    With ``deploy`` the same model is then reparameterized (BN folded, branches fused) and counted again.
    """
    chw = tuple(int(s) for s in input_shape)
    if len(chw) != 3 or any(s < 1 for s in chw):
        raise ConfigError(f"input shape: expected three positive sizes C,H,W, got {list(input_shape)}")
    model = build_model(arch_cfg)
    summary = ModelSummary(
        name=str(arch_cfg["name"]), input_shape=chw, params=count_params(model),
        trainable_params=count_params(model, trainable_only=True), macs=count_flops(model, (1, *chw)),
    )
    if deploy:
        reparameterize_model(model)
        summary.deploy_params = count_params(model)
        summary.deploy_macs = count_flops(model, (1, *chw))
    return summary
