"""Cross-entropy with label smoothing and soft (mixed) targets."""

from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from ppcls.registry import LOSSES
from ppcls.utils.errors import ConfigError


@LOSSES.register()
class CELoss(nn.Layer):
    """Cross-entropy; ``epsilon`` smooths hard labels; ``[N, C]`` float targets are soft labels."""

    def __init__(self, epsilon: float | None = None, class_num: int | None = None) -> None:
        super().__init__()
        if epsilon is not None and not 0.0 <= float(epsilon) < 1.0:
            raise ConfigError(f"CELoss.epsilon: expected a value in [0, 1), got {epsilon}")
        self.epsilon = float(epsilon) if epsilon else 0.0

    def forward(self, logits: paddle.Tensor, target: paddle.Tensor) -> paddle.Tensor:
        class_num = logits.shape[-1]
        log_prob = F.log_softmax(logits, axis=-1)
        if target.ndim == 2 and target.shape[-1] == class_num and target.dtype != paddle.int64:
            soft = target.astype(log_prob.dtype)
        else:
            hard = target.reshape([-1])
            if self.epsilon == 0.0:
                return F.nll_loss(log_prob, hard)
            soft = F.one_hot(hard, class_num).astype(log_prob.dtype)
        if self.epsilon > 0.0:
            soft = soft * (1.0 - self.epsilon) + self.epsilon / class_num
        return -(soft * log_prob).sum(axis=-1).mean()


@LOSSES.register()
class MixCELoss(CELoss):
    """PaddleClas's loss for mixup/cutmix configs: the batch operators give soft targets."""
