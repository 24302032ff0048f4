"""Batch operators (PaddleClas's ``batch_transform_ops``): Mixup, CutMix and ``OpSampler``.

Each operator is called as ``images, labels = op(images, labels)`` on the stacked float
NCHW batch and its labels: int labels ``[N]`` (or ``[N, 1]``), or soft labels ``[N, class_num]``
from an earlier operator. It returns float32 soft labels ``[N, class_num]`` whose rows sum to
one, which ``CELoss``/``MixCELoss`` take as targets. ``class_num`` comes from ``Arch.class_num``
(the loader builder passes it). Randomness uses ``random``/``np.random``, which the loader seeds
per worker and epoch.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

import numpy as np

from ppcls.registry import BATCH_TRANSFORMS
from ppcls.utils.config import check_kwargs
from ppcls.utils.errors import ConfigError, DataError, summarize
from ppcls.utils.numbers import parse_number

logger = logging.getLogger(__name__)


def check_class_num(class_num: Any, where: str) -> int:
    if (
        class_num is None
        or isinstance(class_num, bool)
        or not isinstance(class_num, (int, np.integer))
        or class_num < 1
    ):
        raise ConfigError(
            f"{where}.class_num: expected a positive integer (set Arch.class_num), got {summarize(class_num)}"
        )
    return int(class_num)


def soft_labels(labels: np.ndarray, class_num: int, where: str) -> np.ndarray:
    """Integer labels → one-hot float32 ``[N, class_num]``; soft labels are checked and cast."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == class_num and np.issubdtype(labels.dtype, np.floating):
        return labels.astype(np.float32, copy=False)
    if np.issubdtype(labels.dtype, np.integer) and (
        labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] == 1)
    ):
        flat = labels.reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= class_num):
            raise DataError(
                f"{where}: label {int(flat.min() if flat.min() < 0 else flat.max())} is outside "
                f"[0, {class_num}) (Arch.class_num={class_num})"
            )
        out = np.zeros((flat.size, class_num), dtype=np.float32)
        out[np.arange(flat.size), flat] = 1.0
        return out
    raise ValueError(
        f"{where}: expected integer labels [N] or soft labels [N, {class_num}], "
        f"got {labels.dtype} labels of shape {labels.shape}"
    )


def _check_batch(images: np.ndarray, labels: np.ndarray, where: str) -> None:
    if not isinstance(images, np.ndarray) or images.ndim != 4:
        got = f"shape {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"{where}: expected an NCHW image batch, got {got}")
    if len(labels) != len(images):
        raise ValueError(f"{where}: {len(images)} images but {len(labels)} labels")


def _alpha(alpha: Any, where: str) -> float:
    value = parse_number(alpha, f"{where}.alpha")
    if value <= 0:
        raise ConfigError(f"{where}.alpha: expected a value > 0, got {summarize(alpha)}")
    return value


@BATCH_TRANSFORMS.register()
class MixupOperator:
    """Mixup (Zhang et al., 2018, https://arxiv.org/abs/1710.09412): blend the batch with a shuffled copy.

    One ``lam ~ Beta(alpha, alpha)`` per batch: ``x = lam * x + (1 - lam) * x[perm]`` and the same
    mix of the labels.
    """

    def __init__(self, class_num: int, alpha: float = 1.0) -> None:
        self.class_num = check_class_num(class_num, "MixupOperator")
        self.alpha = _alpha(alpha, "MixupOperator")

    def __call__(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _check_batch(images, labels, "MixupOperator")
        targets = soft_labels(labels, self.class_num, "MixupOperator")
        perm = np.random.permutation(len(images))
        lam = float(np.random.beta(self.alpha, self.alpha))
        mixed = images * np.float32(lam)
        mixed += images[perm] * np.float32(1.0 - lam)
        mixed_targets = targets * np.float32(lam) + targets[perm] * np.float32(1.0 - lam)
        return mixed.astype(images.dtype, copy=False), mixed_targets


@BATCH_TRANSFORMS.register()
class CutmixOperator:
    """CutMix (Yun et al., 2019, https://arxiv.org/abs/1905.04899): paste a box from a shuffled copy.

    The box covers about ``1 - lam`` of the image (``lam ~ Beta(alpha, alpha)``), centred at a
    uniform point and clipped at the borders; labels are mixed by the exact pasted area.
    """

    def __init__(self, class_num: int, alpha: float = 0.2) -> None:
        self.class_num = check_class_num(class_num, "CutmixOperator")
        self.alpha = _alpha(alpha, "CutmixOperator")

    @staticmethod
    def box(height: int, width: int, lam: float) -> tuple[int, int, int, int]:
        """(y1, y2, x1, x2) of a box of about ``(1 - lam)`` of the area, clipped to the image."""
        ratio = np.sqrt(1.0 - lam)
        cut_h, cut_w = int(height * ratio), int(width * ratio)
        cy, cx = np.random.randint(height), np.random.randint(width)
        y1, y2 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
        x1, x2 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
        return int(y1), int(y2), int(x1), int(x2)

    def __call__(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _check_batch(images, labels, "CutmixOperator")
        targets = soft_labels(labels, self.class_num, "CutmixOperator")
        perm = np.random.permutation(len(images))
        lam = float(np.random.beta(self.alpha, self.alpha))
        height, width = images.shape[2], images.shape[3]
        y1, y2, x1, x2 = self.box(height, width, lam)
        out = images.copy()
        out[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
        lam = 1.0 - (y2 - y1) * (x2 - x1) / float(height * width)
        mixed_targets = targets * np.float32(lam) + targets[perm] * np.float32(1.0 - lam)
        return out, mixed_targets


@BATCH_TRANSFORMS.register()
class OpSampler:
    """Apply one of several batch operators, chosen per batch by its ``prob``.

    PaddleClas's form: ``OpSampler: {MixupOperator: {alpha: 0.8, prob: 0.5}, CutmixOperator:
    {alpha: 1.0, prob: 0.5}}``. The probabilities may sum to less than one; the rest of the time
    the batch passes unchanged (its labels still become one-hot, so every batch has the same
    label shape).
    """

    def __init__(self, class_num: int, **op_dict: dict) -> None:
        self.class_num = check_class_num(class_num, "OpSampler")
        if not op_dict:
            raise ConfigError(
                "OpSampler: name at least one batch operator, e.g. MixupOperator: {alpha: 0.8, prob: 0.5}"
            )
        self.ops: list[Any] = []
        self.probs: list[float] = []
        for name, args in op_dict.items():
            where = f"OpSampler.{name}"
            if name == "OpSampler" or name not in BATCH_TRANSFORMS:
                valid = ", ".join(n for n in BATCH_TRANSFORMS.names() if n != "OpSampler")
                raise ConfigError(f"{where}: not a batch operator; expected one of {valid}")
            if not isinstance(args, Mapping) or "prob" not in args:
                raise ConfigError(
                    f"{where}: expected a mapping with the operator's arguments and its prob, got {summarize(args)}"
                )
            kwargs = dict(args)
            prob = parse_number(kwargs.pop("prob"), f"{where}.prob")
            if not 0.0 <= prob <= 1.0:
                raise ConfigError(f"{where}.prob: expected a probability in [0, 1], got {summarize(prob)}")
            op_cls = BATCH_TRANSFORMS.get(name)
            check_kwargs(where, op_cls, kwargs, injected=("class_num",))
            if kwargs.setdefault("class_num", self.class_num) != self.class_num:
                raise ConfigError(
                    f"{where}.class_num: {kwargs['class_num']} differs from the sampler's {self.class_num}; "
                    "leave it out, every operator takes Arch.class_num"
                )
            self.ops.append(op_cls(**kwargs))
            self.probs.append(prob)
        total = sum(self.probs)
        if total > 1.0 + 1e-6:
            raise ConfigError(f"OpSampler: the probs of the operators sum to {total:g}, more than 1")
        self.cumulative = np.cumsum(self.probs)

    def __call__(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r = random.random()
        idx = int(np.searchsorted(self.cumulative, r, side="right"))
        if idx < len(self.ops):
            return self.ops[idx](images, labels)
        _check_batch(images, labels, "OpSampler")
        return images, soft_labels(labels, self.class_num, "OpSampler")
