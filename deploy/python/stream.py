"""Many image files through the predictor, batch by batch, with the next batch prepared ahead.

With ``Global.prefetch`` (the default) a background thread reads and preprocesses batch k+1
while the backend runs batch k: JPEG decoding (libjpeg-turbo), resizing (OpenCV) and ONNX
Runtime release the GIL, so the two overlap on two cores (Paddle Inference's ``run`` holds the
GIL, so with that backend the overlap is small). Per image a folder then costs about
max(preprocessing, inference) instead of their sum; with ``cpu_num_threads: 1`` the inference
keeps one core and the preprocessing the other (docs/benchmarks.md has the figures). Results
come back in file order, and the batches use a ring of preprocessors so a buffer is never
rewritten while the backend reads it.

Files that cannot be decoded are skipped (reported by the caller); the rest of their batch runs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from .preprocess import ImageDecodeError, Preprocessor

logger = logging.getLogger(__name__)

AHEAD = 1  # batches prepared ahead of the one running; the ring holds AHEAD + 2 buffers


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
    """Read and preprocess ``files``; an undecodable file is dropped from the batch, not fatal."""
    t0 = time.perf_counter()
    data = [_read(p) for p in files]
    try:
        batch = predictor.prepare(data, preprocessor)
        return Prepared(batch, list(files), [], time.perf_counter() - t0)
    except ImageDecodeError:
        pass
    good, skipped = [], []
    for path, raw in zip(files, data):  # find the bad file(s), then prepare the rest
        try:
            preprocessor.decode(raw)
            good.append((path, raw))
        except ImageDecodeError as e:
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


def predict_files(predictor, files: Sequence[str], prefetch: bool | None = None) -> tuple[list[dict], list[str]]:
    """Top-k results for every decodable file (in order) and the files skipped, with a warning each."""
    if prefetch is None:
        prefetch = bool(predictor.config["Global"].get("prefetch", True))
    chunks = _chunks(files, predictor.batch_size)
    results: list[dict] = []
    skipped: list[str] = []
    start = time.perf_counter()
    if prefetch and len(chunks) > 1:
        batches: Iterator[Prepared] = _prefetched(predictor, chunks)
    else:
        prefetch = False

        def sequential() -> Iterator[Prepared]:
            for chunk in chunks:
                predictor.begin_batch()
                yield prepare_files(predictor, chunk, predictor.preprocess)

        batches = sequential()
    for item in batches:
        for path, reason in item.skipped:
            logger.warning("skipped %s: %s", path, reason)
            skipped.append(path)
        if item.batch is not None:
            results.extend(predictor.run_prepared(item.batch, item.files, item.seconds, overlapped=prefetch))
    if prefetch and predictor.benchmark:
        predictor.timer.add_wall(time.perf_counter() - start)
    return results, skipped
