"""Rank/world helpers that work with and without ``paddle.distributed.launch``."""

from __future__ import annotations

import os

import paddle
import paddle.distributed as dist


def world_size() -> int:
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))


def rank() -> int:
    return int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def is_main() -> bool:
    return rank() == 0


_initialized = {"done": False}


def init_parallel() -> None:
    """Initialise the process group once when launched with more than one process."""
    if world_size() > 1 and not _initialized["done"]:
        dist.init_parallel_env()
        _initialized["done"] = True


def all_reduce_sum(tensor: paddle.Tensor) -> paddle.Tensor:
    """Sum ``tensor`` over ranks (in place), a no-op in a single process."""
    if world_size() > 1:
        dist.all_reduce(tensor)
    return tensor


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def parameter_checksum(model: paddle.nn.Layer) -> float:
    """A float64 fingerprint of all weights and buffers (sum of |x| weighted by position)."""
    import numpy as np

    total = 0.0
    for i, (_, value) in enumerate(sorted(model.state_dict().items())):
        arr = value.numpy().astype(np.float64).ravel()
        total += (i + 1) * float(np.abs(arr).sum()) + float(arr[: 16].sum())
    return total


def replicas_identical(model: paddle.nn.Layer) -> tuple[bool, list[float]]:
    """Whether every rank holds the same weights, with each rank's checksum."""
    value = parameter_checksum(model)
    if world_size() == 1:
        return True, [value]
    gathered: list = []
    dist.all_gather_object(gathered, value)
    return all(abs(v - gathered[0]) <= 1e-9 * max(1.0, abs(gathered[0])) for v in gathered), gathered


@paddle.no_grad()
def average_running_stats(model: paddle.nn.Layer) -> None:
    """Average BatchNorm running statistics over ranks (each rank saw different data).

    Gradients keep trainable weights in step; the statistics need this so that every rank
    evaluates and saves the same model.
    """
    if world_size() == 1:
        return
    stats = [p for n, p in model.named_parameters() if not p.trainable and n.endswith(("_mean", "_variance"))]
    if not stats:
        return
    flat = paddle.concat([p.reshape([-1]).astype("float32") for p in stats])
    dist.all_reduce(flat)
    flat = flat / world_size()
    offset = 0
    for p in stats:
        n = int(p.numel())
        p.set_value(flat[offset : offset + n].reshape(p.shape).astype(p.dtype))
        offset += n
