"""Building a transform pipeline from a ``transform_ops`` list."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deploy.python.preprocess import ends_chw
from ppcls.registry import TRANSFORMS
from ppcls.utils.config import op_list
from ppcls.utils.errors import ConfigError


class Compose:
    """Apply transforms in order."""

    def __init__(self, ops: Sequence[Callable[[Any], Any]]) -> None:
        self.ops = list(ops)

    def __call__(self, data: Any) -> Any:
        for op in self.ops:
            data = op(data)
        return data

    def ends_chw(self, where: str = "transform_ops") -> bool:
        """Whether the ops already output CHW; else the caller transposes after the last op (the rule:
        :func:`deploy.python.preprocess.ends_chw`)."""
        return ends_chw([(type(op).__name__, getattr(op, "order", None)) for op in self.ops], where, ConfigError)

    def to_model_layout(self, img: Any, chw: bool) -> Any:
        """``img`` as the model takes it: CHW (an HWC array is transposed, contiguous)."""
        if not chw and isinstance(img, np.ndarray) and img.ndim == 3:
            return np.ascontiguousarray(img.transpose(2, 0, 1))
        return img

    def __repr__(self) -> str:
        return f"Compose({[type(op).__name__ for op in self.ops]})"


def build_transforms(ops_cfg: Sequence[Any] | None) -> Compose:
    """``[{Name: {kwargs}}, ...]`` → :class:`Compose` of registered transforms."""
    return Compose([TRANSFORMS.build(name, **args) for name, args in op_list("transform_ops", ops_cfg)])
