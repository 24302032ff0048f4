"""Channel shuffle and channel interleaving (ShuffleNet, ParNet's fusion blocks)."""

from __future__ import annotations

import paddle


def interleave(tensors: list[paddle.Tensor] | tuple[paddle.Tensor, ...]) -> paddle.Tensor:
    """Concatenate along channels with the channels of the inputs alternating: a0 b0 a1 b1 ..."""
    # stack + flatten keeps every dimension symbolic, so to_static works for any input size
    return paddle.stack(list(tensors), axis=2).flatten(start_axis=1, stop_axis=2)


def channel_shuffle(x: paddle.Tensor, groups: int) -> paddle.Tensor:
    """Interleave the ``groups`` channel groups of an NCHW tensor (ShuffleNet's shuffle)."""
    if groups == 1:
        return x
    return interleave(paddle.split(x, groups, axis=1))
