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
