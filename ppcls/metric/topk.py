"""Top-k accuracy accumulated on the device (read only when logged)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import paddle

from ppcls.registry import METRICS
from ppcls.utils import dist
from ppcls.utils.errors import ConfigError, summarize

logger = logging.getLogger(__name__)


@METRICS.register()
class TopkAcc:
    """Top-k accuracy; k larger than ``class_num`` is dropped with one warning."""

    def __init__(self, topk: int | Sequence[int] = (1, 5), class_num: int | None = None) -> None:
        ks = [topk] if isinstance(topk, int) else list(topk)
        if not ks or any(not isinstance(k, int) or k < 1 for k in ks):
            raise ConfigError(f"TopkAcc.topk: expected positive integers, got {summarize(topk)}")
        if class_num is not None:
            dropped = [k for k in ks if k > class_num]
            if dropped:
                logger.warning(
                    "TopkAcc: top-%s dropped: the model has only %d classes",
                    ", top-".join(map(str, dropped)), class_num,
                )
            ks = [k for k in ks if k <= class_num] or [1]
        self.topk = sorted(set(ks))
        self.reset()

    def reset(self) -> None:
        self.correct: paddle.Tensor | None = None
        self.count: paddle.Tensor | None = None

    def update(self, logits: paddle.Tensor, label: paddle.Tensor) -> None:
        """Add a batch; soft ``[N, C]`` targets count their arg-max class."""
        if label.ndim == 2 and label.shape[-1] == logits.shape[-1] and label.dtype != paddle.int64:
            label = label.argmax(axis=-1)
        label = label.reshape([-1, 1]).astype("int64")
        kmax = min(self.topk[-1], logits.shape[-1])
        _, idx = paddle.topk(logits, k=kmax, axis=-1)
        hits = (idx == label).astype("float32")
        cum = paddle.cumsum(hits, axis=-1).sum(axis=0)
        correct = paddle.stack([cum[min(k, kmax) - 1] for k in self.topk])
        count = paddle.to_tensor(float(label.shape[0]), dtype="float32")
        self.correct = correct if self.correct is None else self.correct + correct
        self.count = count if self.count is None else self.count + count

    def compute(self, reduce: bool = False) -> dict[str, float]:
        """``{"top1": ..., "top5": ...}``; ``reduce`` sums counts over ranks first."""
        if self.correct is None:
            return {f"top{k}": 0.0 for k in self.topk}
        totals = paddle.concat([self.correct, self.count.reshape([1])])
        if reduce:
            totals = dist.all_reduce_sum(totals.clone())
        values = totals.numpy()
        n = max(values[-1], 1.0)
        return {f"top{k}": float(values[i] / n) for i, k in enumerate(self.topk)}
