"""Requests' preprocessed images → predictor runs: one thread per predictor, batching across requests.

Every request thread decodes and preprocesses its own image (in parallel: OpenCV and libjpeg-turbo
release the GIL), then hands the array to a :class:`Batcher` and waits for its answer. Each predictor
of the pool has one thread that takes the oldest waiting image and, with ``max_batch`` > 1, up to
``max_batch - 1`` more of the same shape; it runs them as one batch and answers each request with its
own row. While its batch is not full and other requests are still being preprocessed (announced with
:meth:`Batcher.announce`), it waits for them, at most ``batch_timeout`` seconds: under load batches
fill, and a lone request never waits. ``max_batch=1`` (the default) is the plain pool: one image per
run.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

WAITING, TAKEN, CANCELLED = 0, 1, 2


class QueueFull(Exception):
    """No room to wait, or no predictor took the image in time (the service answers 503)."""


class _Job:
    """One request's image, and the answer the predictor thread fills in."""

    __slots__ = ("array", "name", "state", "done", "result", "error")

    def __init__(self, array: np.ndarray, name: str | None) -> None:
        self.array = array
        self.name = name
        self.state = WAITING
        self.done = threading.Event()
        self.result: dict | None = None
        self.error: BaseException | None = None


class Batcher:
    """Runs waiting images on ``predictors`` (each used by one thread), ``max_batch`` at a time at most."""

    def __init__(self, predictors: Sequence[Any], max_batch: int = 1, batch_timeout: float = 0.0,
                 max_queue: int = 64, on_batch: Callable[[int], None] | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch: expected a positive integer, got {max_batch}")
        self.max_batch = max_batch
        self.batch_timeout = max(0.0, batch_timeout)
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.cond = threading.Condition()
        self.pending: deque[_Job] = deque()
        self.idle = len(predictors)  # predictor threads waiting for work (under cond)
        self.coming = 0  # announced requests still preprocessing their image (under cond)
        self.closed = False
        self.threads = [threading.Thread(target=self._loop, args=(p,), name=f"predictor-{i}", daemon=True)
                        for i, p in enumerate(predictors)]
        for t in self.threads:
            t.start()

    def waiting(self) -> int:
        """Images not yet taken by a predictor thread."""
        with self.cond:
            return len(self.pending)

    def full(self) -> bool:
        """Whether a new image would be refused now (``max_queue`` wait and no predictor is idle)."""
        with self.cond:
            return len(self.pending) >= self.max_queue and self.idle == 0

    def announce(self) -> None:
        """A request is preprocessing its image: batches being collected may wait for it. Follow with
        ``submit(..., announced=True)`` or :meth:`withdraw`."""
        with self.cond:
            self.coming += 1

    def withdraw(self) -> None:
        """An announced request will not submit (its image was refused)."""
        with self.cond:
            self.coming -= 1
            self.cond.notify_all()

    def submit(self, array: np.ndarray, name: str | None, timeout: float, announced: bool = False) -> dict:
        """The top-k answer for one preprocessed image. Raises :class:`QueueFull` when ``max_queue`` images
        already wait and no predictor is idle, or when none took this one within ``timeout`` seconds."""
        job = _Job(array, name)
        with self.cond:
            if announced:
                self.coming -= 1
            if self.closed:
                raise QueueFull("the service is stopping")
            if len(self.pending) >= self.max_queue and self.idle == 0:
                raise QueueFull(f"{len(self.pending)} request(s) already wait for a predictor "
                                f"(--max_queue {self.max_queue})")
            self.pending.append(job)
            self.cond.notify_all()  # an idle thread, or one collecting a batch (it may not take other shapes)
        if not job.done.wait(timeout):
            with self.cond:
                if job.state == WAITING:  # not taken: withdraw it; once taken, the answer is on its way
                    job.state = CANCELLED
                    self.pending.remove(job)
                    raise QueueFull(f"no predictor was free within {timeout:g} s")
            job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def close(self) -> None:
        """Stop the threads once the images already waiting have run."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def _take(self) -> list[_Job] | None:
        """The next batch: the oldest image and up to ``max_batch - 1`` of its shape, waiting at most
        ``batch_timeout`` s for announced ones; None when closed and nothing waits."""
        with self.cond:
            while not self.pending:
                if self.closed:
                    return None
                self.cond.wait()
            self.idle -= 1
            first = self.pending.popleft()
            first.state = TAKEN
            jobs = [first]
            deadline = time.monotonic() + self.batch_timeout
            while len(jobs) < self.max_batch:
                for job in list(self.pending):  # same shape only: one batch is one array
                    if len(jobs) == self.max_batch:
                        break
                    if job.array.shape == first.array.shape and job.array.dtype == first.array.dtype:
                        self.pending.remove(job)
                        job.state = TAKEN
                        jobs.append(job)
                left = deadline - time.monotonic()
                if len(jobs) == self.max_batch or left <= 0 or self.closed or self.coming == 0:
                    break
                self.cond.wait(left)
            return jobs

    def _loop(self, predictor: Any) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            try:
                batch = jobs[0].array[None] if len(jobs) == 1 else np.stack([j.array for j in jobs])
                results = predictor.run_prepared(batch, [j.name for j in jobs], 0.0)
                for job, result in zip(jobs, results):
                    job.result = result
            except BaseException as e:  # a bug (inputs were checked before): every request of the batch gets it
                for job in jobs:
                    job.error = e
            finally:
                with self.cond:
                    self.idle += 1
                for job in jobs:
                    job.done.set()
            if self.on_batch is not None:
                self.on_batch(len(jobs))
