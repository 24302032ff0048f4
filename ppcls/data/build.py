"""``build_dataloader``: dataset + transforms + sampler + batch ops + worker processes."""

from __future__ import annotations

import atexit
import contextlib
import logging
import random
import signal
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import paddle

from ppcls.registry import BATCH_TRANSFORMS, DATASETS
from ppcls.utils import dist
from ppcls.utils.config import op_list
from ppcls.utils.errors import ConfigError

from .sampler import SAMPLERS

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class BatchCollator:
    """Stack samples into arrays and apply batch operators (mixup, cutmix) on the whole batch."""

    def __init__(self, batch_ops: Sequence[Any] = ()) -> None:
        self.batch_ops = list(batch_ops)

    def __call__(self, samples: list[tuple]) -> tuple[np.ndarray, ...]:
        images = np.stack([s[0] for s in samples])
        labels = np.asarray([s[1] for s in samples], dtype=np.int64)
        bad = np.asarray([s[2] for s in samples], dtype=np.int64)
        for op in self.batch_ops:
            images, labels = op(images, labels)
        return images, labels, bad


class _DataLoader(paddle.io.DataLoader):
    """``paddle.io.DataLoader`` whose worker processes are ended before the interpreter exits.

    Workers ignore SIGINT/SIGTERM (:class:`WorkerSeeder`), but ``multiprocessing`` ends daemon
    processes at exit by SIGTERM and then waits for them. So iterators that still have workers
    at exit (a run stopped mid-epoch, an exception, persistent workers) are shut down first, by
    Paddle's own shutdown: each worker reads its end-of-work marker and exits.
    """

    def __iter__(self):
        if self.num_workers == 0:
            return super().__iter__()
        # Workers are forked here. Paddle's worker start installs a SIGTERM handler that kills the
        # worker, before our WorkerSeeder runs: the stop signals stay blocked from the fork until
        # WorkerSeeder has decided (pending ones reach the parent once this returns).
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            iterator = super().__iter__()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        _track_workers(iterator)
        return iterator


# per process, as the worker processes are
_live_iterators: weakref.WeakSet = weakref.WeakSet()
_exit_hook = {"registered": False}


def _track_workers(iterator: Any) -> None:
    if not _exit_hook["registered"]:
        # registered after multiprocessing's own exit hook (its workers exist by now), so it runs before it
        atexit.register(_shut_down_workers)
        _exit_hook["registered"] = True
    _live_iterators.add(iterator)


def _shut_down_workers() -> None:
    for iterator in list(_live_iterators):
        shutdown = getattr(iterator, "_shutdown_on_exit", None) or getattr(iterator, "_try_shutdown_all", None)
        if shutdown is not None:
            with contextlib.suppress(Exception):
                shutdown()


class WorkerSeeder:
    """A worker's start: leave stop signals to the trainer; seed ``random``/``np.random`` from (seed, rank,
    epoch, worker id)."""

    def __init__(self, seed: int, sampler: Any) -> None:
        self.seed = seed
        self.sampler = sampler

    def __call__(self, worker_id: int) -> None:
        # SIGINT/SIGTERM sent to the whole process group (Ctrl-C, systemd's stop, Slurm's scancel)
        # reach the workers too. Where the parent handles them itself (the trainer's clean stop,
        # inherited through fork) it ends its workers when it has stopped; a worker dying of them
        # first would make Paddle raise a fatal error inside the trainer's step. Elsewhere (eval,
        # infer) a worker keeps the default and ends with its parent.
        for sig in STOP_SIGNALS:
            handler = signal.getsignal(sig)  # the parent's, inherited through fork
            if callable(handler) and handler is not signal.default_int_handler:
                signal.signal(sig, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by _DataLoader.__iter__
        epoch = getattr(self.sampler, "epoch", 0)
        value = (self.seed * 1_000_003 + dist.rank() * 10_007 + epoch * 101 + worker_id) % (2**32)
        random.seed(value)
        np.random.seed(value)


def build_dataset(dataset_cfg: Mapping[str, Any], class_num: int | None) -> Any:
    cfg = dict(dataset_cfg)
    name = cfg.pop("name")
    cfg.pop("batch_transform_ops", None)
    return DATASETS.build(name, class_num=class_num, **cfg)


def build_dataloader(
    split_cfg: Mapping[str, Any],
    mode: str,
    class_num: int | None,
    seed: int | None = None,
) -> paddle.io.DataLoader:
    """Build the loader of one ``DataLoader.<mode>`` section; ``mode`` is Train/Eval/Test."""
    dataset = build_dataset(split_cfg["dataset"], class_num)
    sampler_cfg = dict(split_cfg.get("sampler") or {})
    sampler_name = sampler_cfg.pop("name", "DistributedBatchSampler")
    sampler = SAMPLERS.build(
        sampler_name, dataset, seed=seed or 0, pad_to_even=(mode == "Train"), **sampler_cfg
    )
    if len(sampler) == 0:
        raise ConfigError(
            f"DataLoader.{mode}: {len(dataset)} samples on this rank give no batch of "
            f"batch_size={sampler.batch_size} with drop_last=True"
        )
    batch_ops = [
        BATCH_TRANSFORMS.build_in_context(name, args, class_num=class_num)
        for name, args in op_list(
            f"DataLoader.{mode}.dataset.batch_transform_ops",
            split_cfg["dataset"].get("batch_transform_ops"),
        )
    ]
    loader_cfg = dict(split_cfg.get("loader") or {})
    num_workers = int(loader_cfg.get("num_workers", 0))
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        # Workers are processes already, so OpenCV needs no thread pool in them. It must be
        # switched off here, before they fork: a child calling cv2.setNumThreads after the
        # parent used OpenCV's pool can hang forever.
        import cv2

        cv2.setNumThreads(1)
        kwargs["persistent_workers"] = bool(loader_cfg.get("persistent_workers", False))
        if "prefetch_factor" in loader_cfg:
            kwargs["prefetch_factor"] = int(loader_cfg["prefetch_factor"])
    loader = _DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        use_shared_memory=bool(loader_cfg.get("use_shared_memory", True)),
        collate_fn=BatchCollator(batch_ops),
        worker_init_fn=WorkerSeeder(seed or 0, sampler),
        return_list=True,
        **kwargs,
    )
    logger.info(
        "DataLoader.%s: %d samples from %s, %d batches per epoch on this rank",
        mode, len(dataset), getattr(dataset, "source", "?"), len(sampler),
    )
    return loader
