"""Building a transform pipeline from a ``transform_ops`` list."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ppcls.registry import TRANSFORMS


class Compose:
    """Apply transforms in order."""

    def __init__(self, ops: Sequence[Callable[[Any], Any]]) -> None:
        self.ops = list(ops)

    def __call__(self, data: Any) -> Any:
        for op in self.ops:
            data = op(data)
        return data

    def __repr__(self) -> str:
        return f"Compose({[type(op).__name__ for op in self.ops]})"


def build_transforms(ops_cfg: Sequence[Any] | None) -> Compose:
    """``[{Name: {kwargs}}, ...]`` → :class:`Compose` of registered transforms."""
    from ppcls.utils.config import op_list

    return Compose([TRANSFORMS.build(name, **args) for name, args in op_list("transform_ops", ops_cfg)])
