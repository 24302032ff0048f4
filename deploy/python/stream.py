"""Many image files through the predictor, batch by batch: sequential, prefetched or in workers.

With ``Global.prefetch`` (the default) a background thread reads and preprocesses batch k+1
while the backend runs batch k: JPEG decoding (libjpeg-turbo), resizing (OpenCV) and ONNX
Runtime release the GIL, so the two overlap on two cores (Paddle Inference's ``run`` holds the
GIL, so with that backend the overlap is small). Per image a folder then costs about
max(preprocessing, inference) instead of their sum; with ``cpu_num_threads: 1`` the inference
keeps one core and the preprocessing the other (docs/benchmarks.md has the figures). The
batches use a ring of preprocessors so a buffer is never rewritten while the backend reads it.

With ``Global.workers: N`` (N > 1) N threads each take the next batch, read, preprocess and run
it on a predictor clone of their own (same weights: ONNX Runtime shares the session, Paddle
Inference clones the predictor), ``cpu_num_threads`` threads per run. A batch-1 forward scales
poorly across threads, so on 2 cores two workers of one thread each, every image on one core
from decode to top-k, take less time per image than one prefetched run on two threads, for all 28
models (docs/benchmarks.md has the figures).
Prefetch has nothing to add there and is not used.

Results come back in file order whatever the mode. Files that cannot be read, decoded or cropped
are skipped (the first few logged with the reason, all returned to the caller); the rest of
their batch runs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import DeployConfigError, ImageInputError
from .preprocess import Preprocessor

logger = logging.getLogger(__name__)

AHEAD = 1  # batches prepared ahead of the one running; the ring holds AHEAD + 2 buffers
LOGGED_SKIPS = 5  # skipped files logged one by one (with the reason); the rest are counted


@dataclass
class Prepared:
    """One batch ready for the backend: the array, its files, and the files skipped from it."""

    batch: np.ndarray | None
    files: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    seconds: float = 0.0


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def prepare_files(predictor, files: Sequence[str], preprocessor: Preprocessor) -> Prepared:
    """Read and preprocess ``files``; a file that cannot be read, decoded or cropped is dropped from the
    batch with its reason, not fatal."""
    t0 = time.perf_counter()
    data: list[tuple[str, bytes]] = []
    skipped: list[tuple[str, str]] = []
    for path in files:
        try:
            data.append((path, _read(path)))
        except OSError as e:  # removed since listing, no permission, a broken link
            skipped.append((path, f"cannot read the file ({e.strerror or e})"))
    if data:
        try:
            batch = predictor.prepare([raw for _, raw in data], preprocessor)
            return Prepared(batch, [p for p, _ in data], skipped, time.perf_counter() - t0)
        except ImageInputError:
            pass
    good = []
    for path, raw in data:  # find the bad file(s), then prepare the rest
        try:
            preprocessor.geometry_only(raw)
            good.append((path, raw))
        except ImageInputError as e:
            skipped.append((path, str(e)))
    batch = predictor.prepare([raw for _, raw in good], preprocessor) if good else None
    return Prepared(batch, [p for p, _ in good], skipped, time.perf_counter() - t0)


def _chunks(files: Sequence[str], size: int) -> list[list[str]]:
    return [list(files[i:i + size]) for i in range(0, len(files), size)]


def _prefetched(predictor, chunks: list[list[str]]) -> Iterator[Prepared]:
    """Prepared batches in order, each made on a background thread while the caller runs the previous."""
    ring = [predictor.preprocess] + [predictor.spare_preprocessor() for _ in range(AHEAD + 1)]
    ready: queue.Queue = queue.Queue(maxsize=AHEAD)
    stop = threading.Event()

    def put(item: object) -> bool:
        """Hand ``item`` over unless the consumer has stopped (then False)."""
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for k, chunk in enumerate(chunks):
                if not put(prepare_files(predictor, chunk, ring[k % len(ring)])):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            put(e)

    worker = threading.Thread(target=produce, name="deploy-prefetch", daemon=True)
    worker.start()
    try:
        for _ in chunks:
            predictor.begin_batch()
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()


@dataclass
class Done:
    """One batch through the backend: its results and the files skipped from it."""

    results: list[dict]
    skipped: list[tuple[str, str]]


def _run(predictor, item: Prepared, overlapped: bool) -> Done:
    results = [] if item.batch is None else predictor.run_prepared(item.batch, item.files, item.seconds, overlapped)
    return Done(results, item.skipped)


def _in_workers(predictor, clones: list, chunks: list[list[str]]) -> Iterator[Done]:
    """Batches run by one thread per clone of ``predictor``; yielded in order.

    Worker threads take the chunks in order (chunk k is taken before chunk k+1) and stop taking
    new ones once the consumer stops or a worker fails; an error is raised to the consumer when
    it reaches that chunk. With benchmark mode the clones' stage times join ``predictor``'s.
    """
    slots: list[Done | BaseException | None] = [None] * len(chunks)
    filled = [threading.Event() for _ in chunks]
    taken = iter(range(len(chunks)))
    take_lock = threading.Lock()
    stop = threading.Event()

    def work(clone) -> None:
        while not stop.is_set():
            with take_lock:
                k = next(taken, None)
            if k is None:
                return
            try:
                slots[k] = _run(clone, prepare_files(clone, chunks[k], clone.preprocess), overlapped=True)
            except BaseException as e:  # handed to the consumer, raised there
                slots[k] = e
                stop.set()
            filled[k].set()

    threads = [threading.Thread(target=work, args=(c,), name=f"deploy-worker-{i}", daemon=True)
               for i, c in enumerate(clones)]
    for t in threads:
        t.start()
    try:
        for k in range(len(chunks)):
            filled[k].wait()
            item = slots[k]
            slots[k] = None
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        for t in threads:
            t.join()
        if predictor.benchmark:
            for clone in clones:
                predictor.timer.batches.extend(clone.timer.batches)
                clone.timer.batches.clear()


def predict_files(predictor, files: Sequence[str], prefetch: bool | None = None,
                  workers: int | None = None) -> tuple[list[dict], list[str]]:
    """Top-k results for every decodable file (in order) and the files skipped (the first few logged with
    their reason; the caller judges their share against ``Global.max_bad_image_ratio``).

    ``prefetch`` and ``workers`` default to ``Global.prefetch`` and ``Global.workers``.
    """
    g = predictor.config["Global"]
    prefetch = bool(g.get("prefetch", True)) if prefetch is None else prefetch
    workers = int(g.get("workers") or 1) if workers is None else int(workers)
    if workers < 1:
        raise DeployConfigError(f"Global.workers: expected a positive integer, got {workers}")
    chunks = _chunks(files, predictor.batch_size)
    workers = min(workers, len(chunks))
    results: list[dict] = []
    skipped: list[str] = []
    if workers > 1:
        predictor.detach_auto_log(f"Global.workers={workers} runs batches at once")
        if predictor.backend.name == "paddle":
            logger.warning("Global.workers=%d with backend paddle: Paddle Inference holds the GIL while it runs, so "
                           "the workers mostly take turns (slower than one worker here); backend onnxruntime runs "
                           "them at once", workers)
        clones = predictor.worker_clones(workers, chunks[0])
        predictor.timer.workers = max(predictor.timer.workers, workers)
    start = time.perf_counter()
    overlapped = True
    if workers > 1:
        batches: Iterator[Done] = _in_workers(predictor, clones, chunks)
    elif prefetch and len(chunks) > 1:
        batches = (_run(predictor, item, overlapped=True) for item in _prefetched(predictor, chunks))
    else:
        overlapped = False

        def sequential() -> Iterator[Done]:
            for chunk in chunks:
                predictor.begin_batch()
                yield _run(predictor, prepare_files(predictor, chunk, predictor.preprocess), overlapped=False)

        batches = sequential()
    for done in batches:
        for path, reason in done.skipped:
            if len(skipped) < LOGGED_SKIPS:
                logger.warning("skipped %s: %s", path, reason)
            elif len(skipped) == LOGGED_SKIPS:
                logger.warning("more unreadable files: counted, not logged one by one")
            skipped.append(path)
        results.extend(done.results)
    if overlapped and predictor.benchmark:
        predictor.timer.add_wall(time.perf_counter() - start)
    return results, skipped
