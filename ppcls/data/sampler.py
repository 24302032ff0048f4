"""Batch samplers that shard a data set over ranks, with a fresh order per epoch."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import paddle

from ppcls.registry import Registry
from ppcls.utils import dist
from ppcls.utils.errors import ConfigError, summarize

SAMPLERS = Registry("sampler")


@SAMPLERS.register()
class DistributedBatchSampler(paddle.io.BatchSampler):
    """Shards indices over ``num_replicas`` ranks (strided) and batches this rank's share.

    With ``pad_to_even`` (training) every rank gets the same number of samples, wrapping
    around; without it (evaluation) each sample is seen exactly once across ranks.
    The order depends only on ``seed`` and the epoch set by :meth:`set_epoch`.
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
        pad_to_even: bool = True,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ConfigError(f"sampler.batch_size: expected a positive integer, got {summarize(batch_size)}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.nranks = num_replicas if num_replicas is not None else dist.world_size()
        self.local_rank = rank if rank is not None else dist.rank()
        self.seed = seed or 0
        self.pad_to_even = pad_to_even
        self.epoch = 0
        self.max_batches: int | None = None  # Global.max_iters_per_epoch: the first batches only
        n = len(dataset)
        if pad_to_even:
            self.num_samples = int(math.ceil(n / self.nranks))
        else:
            self.num_samples = len(range(self.local_rank, n, self.nranks))
        self.total_size = self.num_samples * self.nranks

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def local_indices(self) -> np.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.RandomState(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if self.pad_to_even and self.total_size > n:
            indices = np.concatenate([indices, np.resize(indices, self.total_size - n)])
        return indices[self.local_rank :: self.nranks]

    def __iter__(self) -> Iterator[list[int]]:
        indices = self.local_indices().tolist()
        for n, start in enumerate(range(0, len(indices), self.batch_size)):
            if self.max_batches is not None and n >= self.max_batches:
                return
            batch = indices[start : start + self.batch_size]
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch

    def __len__(self) -> int:
        if self.drop_last:
            n = self.num_samples // self.batch_size
        else:
            n = (self.num_samples + self.batch_size - 1) // self.batch_size
        return n if self.max_batches is None else min(n, self.max_batches)
