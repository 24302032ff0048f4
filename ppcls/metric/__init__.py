"""Metrics; importing registers them in ``METRICS``."""

from collections.abc import Sequence
from typing import Any

from ppcls.registry import METRICS
from ppcls.utils.config import op_list, signature_params

from .topk import TopkAcc


def build_metrics(metric_cfg: Sequence[Any] | None, class_num: int | None = None) -> list:
    """Build one split's metric list (``Metric.Train`` or ``Metric.Eval``)."""
    out = []
    for name, args in op_list("Metric", metric_cfg):
        named, _, _ = signature_params(METRICS.get(name))
        if "class_num" in named and "class_num" not in args:
            args = {**args, "class_num": class_num}
        out.append(METRICS.build(name, **args))
    return out


__all__ = ["TopkAcc", "build_metrics"]
