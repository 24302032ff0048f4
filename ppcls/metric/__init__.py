"""Metrics; importing registers them in ``METRICS``."""

from collections.abc import Sequence
from typing import Any

from ppcls.registry import METRICS
from ppcls.utils.config import op_list

from .topk import TopkAcc


def build_metrics(metric_cfg: Sequence[Any] | None, class_num: int | None = None) -> list:
    """Build one split's metric list (``Metric.Train`` or ``Metric.Eval``)."""
    out = []
    for name, args in op_list("Metric", metric_cfg):
        out.append(METRICS.build_in_context(name, args, class_num=class_num))
    return out


__all__ = ["TopkAcc", "build_metrics"]
