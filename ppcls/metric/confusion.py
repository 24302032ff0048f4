"""Confusion matrix and per-class accuracy: numpy functions plus an evaluation accumulator.

Rows are the true classes, columns the predicted ones: ``matrix[t, p]`` counts the samples of
class ``t`` predicted as ``p``.
"""

from __future__ import annotations

import numpy as np
import paddle

from ppcls.utils import dist
from ppcls.utils.errors import ConfigError, DataError


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``[num_classes, num_classes]`` int64 counts from integer labels and predictions."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    preds = np.asarray(preds).reshape(-1).astype(np.int64)
    if labels.shape != preds.shape:
        raise ValueError(f"confusion_matrix: {labels.size} labels but {preds.size} predictions")
    if num_classes < 1:
        raise ValueError(f"confusion_matrix: num_classes must be positive, got {num_classes}")
    for what, values in (("label", labels), ("prediction", preds)):
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise DataError(
                f"confusion_matrix: {what} {int(bad[0])} is outside 0..{num_classes - 1} "
                f"(the model has {num_classes} classes)"
            )
    flat = np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def per_class_accuracy(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(samples, correct, accuracy)`` per true class; accuracy is NaN for a class without samples."""
    matrix = np.asarray(matrix)
    samples = matrix.sum(axis=1)
    correct = np.diag(matrix).copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(samples > 0, correct / np.maximum(samples, 1), np.nan)
    return samples, correct, accuracy


class ConfusionMatrix:
    """Collects arg-max predictions on the device; ``compute`` builds the matrix once.

    Follows the metric protocol (``reset``/``update``/``compute``) so it can ride along in
    :func:`ppcls.engine.evaluate.evaluate`; ``compute`` returns no scalars (the evaluation
    dict stays as it is) and leaves the result in ``self.matrix``. ``reduce`` sums the matrix
    over ranks; ``all_ranks=False`` never does (for a pass that runs on one rank only).
    """

    def __init__(self, num_classes: int | None = None, all_ranks: bool = True) -> None:
        self.num_classes = num_classes
        self.all_ranks = all_ranks
        self.matrix: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self._labels: list[paddle.Tensor] = []
        self._preds: list[paddle.Tensor] = []
        self.matrix = None

    def update(self, logits: paddle.Tensor, label: paddle.Tensor) -> None:
        if self.num_classes is None:
            self.num_classes = int(logits.shape[-1])
        elif logits.shape[-1] != self.num_classes:
            raise ConfigError(
                f"ConfusionMatrix: the model gives {logits.shape[-1]} class scores, expected {self.num_classes}"
            )
        if label.ndim == 2 and label.shape[-1] == logits.shape[-1] and label.dtype != paddle.int64:
            label = label.argmax(axis=-1)  # soft targets count their arg-max class
        self._labels.append(label.reshape([-1]).astype("int64"))
        self._preds.append(logits.argmax(axis=-1).reshape([-1]).astype("int64"))

    def compute(self, reduce: bool = False) -> dict[str, float]:
        n = int(self.num_classes or 0)
        if self._labels:
            labels = paddle.concat(self._labels).numpy()
            preds = paddle.concat(self._preds).numpy()
            matrix = confusion_matrix(labels, preds, n)
        else:
            matrix = np.zeros((n, n), dtype=np.int64)
        if reduce and self.all_ranks and dist.world_size() > 1:
            matrix = dist.all_reduce_sum(paddle.to_tensor(matrix)).numpy()
        self.matrix = matrix
        return {}
