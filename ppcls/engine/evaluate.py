"""Evaluation as a plain function: loss terms and metrics averaged over the whole set."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import paddle

from ppcls.utils import dist
from ppcls.utils.errors import DataError
from ppcls.utils.meters import LossMeter, format_metrics
from ppcls.utils.progress import progress

logger = logging.getLogger(__name__)

SHOWN_PATHS = 5  # undecodable images named in a message; the rest are counted


@paddle.no_grad()
def evaluate(
    model: paddle.nn.Layer,
    loader: Any,
    loss_fn: Any | None,
    metrics: Sequence[Any],
    epoch: int = 0,
    print_batch_step: int = 20,
    max_bad_image_ratio: float = 0.01,
    bad_image_paths: Callable[[np.ndarray], list[str]] | None = None,
) -> dict[str, float]:
    """Run ``model`` over ``loader``; returns ``{loss terms..., "loss", "top1", ...}``.

    Sums are all-reduced over ranks, so every rank gets the same figures as one process
    evaluating the whole set.

    An image that cannot be decoded is left out of the loss and the metrics (the dataset puts another
    sample in its place, which training uses and evaluation must not count twice); the images left out
    are counted and named, and more than ``max_bad_image_ratio`` of the set (``Global.max_bad_image_ratio``,
    as in training) raises :class:`DataError`. ``bad_image_paths`` maps dataset indices to file paths
    (default: the loader's ``dataset.paths``).
    """
    was_training = model.training
    model.eval()
    meter = LossMeter()
    for metric in metrics:
        metric.reset()
    n_batches = len(loader)
    samples = 0
    bad_idx: list[int] = []
    start = time.time()
    with progress(total=n_batches, desc=f"eval epoch {epoch}", unit="batch") as bar:
        for it, (images, labels, bad) in enumerate(loader):
            samples += images.shape[0]
            logits, labels, replaced = decoded_rows(model(images), labels, bad)
            bad_idx.extend(int(i) for i in replaced)
            n = int(labels.shape[0])
            if n:
                if loss_fn is not None:
                    meter.update(loss_fn(logits, labels), n)
                for metric in metrics:
                    metric.update(logits, labels)
            bar.update(1)
            if print_batch_step and (it % print_batch_step == 0 or it == n_batches - 1):
                logger.info("[Eval][Epoch %d][Iter: %d/%d]", epoch, it, n_batches)
    _check_bad_images(bad_idx, samples, epoch, max_bad_image_ratio, bad_image_paths, loader)
    results: dict[str, float] = {}
    results.update(meter.averages(reduce=dist.world_size() > 1))
    for metric in metrics:
        results.update(metric.compute(reduce=dist.world_size() > 1))
    logger.info("[Eval][Epoch %d][Avg]%s (%.1fs)", epoch, format_metrics(results), time.time() - start)
    if was_training:
        model.train()
    return results


def decoded_rows(
    logits: paddle.Tensor, labels: paddle.Tensor, bad: Any
) -> tuple[paddle.Tensor, paddle.Tensor, np.ndarray]:
    """``(logits, labels, replaced)``: the rows without substitutes (``bad >= 0``) and the indices they replaced.

    A substitute is another random sample with its own label standing in for an undecodable image, so
    the metrics, the loss and the confusion matrix leave it out. One small host copy per batch
    (evaluation is not the hot loop); the common case keeps all rows.
    """
    flags = np.asarray(bad.numpy() if hasattr(bad, "numpy") else bad).reshape(-1)
    replaced = flags[flags >= 0]
    if not replaced.size:
        return logits, labels, replaced
    keep = np.nonzero(flags < 0)[0]
    if keep.size:
        rows = paddle.to_tensor(keep, dtype="int64")
        return paddle.gather(logits, rows), paddle.gather(labels, rows), replaced
    return logits[:0], labels[:0], replaced


def _check_bad_images(bad_idx: list[int], samples: int, epoch: int, max_ratio: float,
                      bad_image_paths: Callable[[np.ndarray], list[str]] | None, loader: Any) -> None:
    """Count the undecodable images over all ranks; name a few; too many is a :class:`DataError`."""
    n_bad, total = len(bad_idx), samples
    if dist.world_size() > 1:  # every rank takes the same decision
        counts = dist.all_reduce_sum(paddle.to_tensor([n_bad, samples], dtype="int64")).numpy()
        n_bad, total = int(counts[0]), int(counts[1])
    if not n_bad:
        return
    if bad_image_paths is None:
        paths = getattr(getattr(loader, "dataset", None), "paths", None)
        bad_image_paths = (lambda idx: [paths[int(i)] for i in idx]) if paths is not None else None
    named = bad_image_paths(np.asarray(bad_idx[:SHOWN_PATHS])) if bad_image_paths else [str(i) for i in bad_idx]
    shown = ", ".join(named[:SHOWN_PATHS]) + (f" and {n_bad - len(named[:SHOWN_PATHS])} more"
                                              if n_bad > len(named[:SHOWN_PATHS]) else "")
    summary = (f"{n_bad} of {total} evaluation images (epoch {epoch}) could not be decoded and were left out of "
               f"the loss and the metrics: {shown}")
    if n_bad >= total or n_bad > max_ratio * total:
        raise DataError(
            f"{summary}; that is more than Global.max_bad_image_ratio ({max_ratio:g}) allows. Fix or remove "
            "them, or raise Global.max_bad_image_ratio to evaluate on the rest")
    logger.warning("%s (within Global.max_bad_image_ratio=%g)", summary, max_ratio)
