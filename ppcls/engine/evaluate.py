"""Evaluation as a plain function: loss terms and metrics averaged over the whole set."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import paddle

from ppcls.utils import dist
from ppcls.utils.meters import LossMeter, format_metrics
from ppcls.utils.progress import progress

logger = logging.getLogger(__name__)


@paddle.no_grad()
def evaluate(
    model: paddle.nn.Layer,
    loader: Any,
    loss_fn: Any | None,
    metrics: Sequence[Any],
    epoch: int = 0,
    print_batch_step: int = 20,
) -> dict[str, float]:
    """Run ``model`` over ``loader``; returns ``{loss terms..., "loss", "top1", ...}``.

    Sums are all-reduced over ranks, so every rank gets the same figures as one process
    evaluating the whole set.
    """
    was_training = model.training
    model.eval()
    meter = LossMeter()
    for metric in metrics:
        metric.reset()
    n_batches = len(loader)
    start = time.time()
    with progress(total=n_batches, desc=f"eval epoch {epoch}", unit="batch") as bar:
        for it, (images, labels, _bad) in enumerate(loader):
            logits = model(images)
            if loss_fn is not None:
                meter.update(loss_fn(logits, labels), images.shape[0])
            for metric in metrics:
                metric.update(logits, labels)
            bar.update(1)
            if print_batch_step and (it % print_batch_step == 0 or it == n_batches - 1):
                logger.info("[Eval][Epoch %d][Iter: %d/%d]", epoch, it, n_batches)
    results: dict[str, float] = {}
    results.update(meter.averages(reduce=dist.world_size() > 1))
    for metric in metrics:
        results.update(metric.compute(reduce=dist.world_size() > 1))
    logger.info("[Eval][Epoch %d][Avg]%s (%.1fs)", epoch, format_metrics(results), time.time() - start)
    if was_training:
        model.train()
    return results
