"""deploy/serving/batching.py in-process: batches across submitting threads, shapes, timeouts, errors."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from deploy.serving.batching import Batcher, QueueFull


class RecordingPredictor:
    """Answers each row with its own first value; records the batch sizes it was given."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.delay = delay
        self.fail = fail
        self.sizes: list[int] = []

    def run_prepared(self, batch: np.ndarray, names, _pre_seconds: float) -> list[dict]:
        self.sizes.append(len(batch))
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("backend exploded")
        return [{"value": float(row.flat[0]), "file_name": name} for row, name in zip(batch, names)]


def test_concurrent_requests_are_batched_and_each_gets_its_own_row():
    predictor = RecordingPredictor(delay=0.05)
    batches = []
    batcher = Batcher([predictor], max_batch=4, batch_timeout=0.2, on_batch=batches.append)
    with ThreadPoolExecutor(12) as ex:
        answers = list(ex.map(lambda i: batcher.submit(np.full((3, 2, 2), i, np.float32), f"{i}.jpg", 30), range(12)))
    batcher.close()
    assert [a["value"] for a in answers] == list(range(12))
    assert [a["file_name"] for a in answers] == [f"{i}.jpg" for i in range(12)]
    assert sum(predictor.sizes) == 12 and max(predictor.sizes) <= 4 and len(predictor.sizes) < 12
    assert batches == predictor.sizes


def test_max_batch_1_runs_one_image_at_a_time_without_waiting():
    predictor = RecordingPredictor()
    batcher = Batcher([predictor], max_batch=1, batch_timeout=10.0)
    tic = time.perf_counter()
    assert batcher.submit(np.ones((3, 2, 2), np.float32), None, 5)["value"] == 1
    assert time.perf_counter() - tic < 5  # the batch timeout does not apply to batches of one
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(lambda i: batcher.submit(np.full((3, 2, 2), i, np.float32), None, 30), range(8)))
    assert predictor.sizes == [1] * 9


def test_only_images_of_one_shape_share_a_batch():
    predictor = RecordingPredictor(delay=0.05)
    batcher = Batcher([predictor], max_batch=8, batch_timeout=0.3)
    shapes = [(3, 2, 2), (3, 4, 4)] * 4
    with ThreadPoolExecutor(8) as ex:
        answers = list(ex.map(lambda i: batcher.submit(np.full(shapes[i], i, np.float32), None, 30), range(8)))
    assert [a["value"] for a in answers] == list(range(8))
    assert sum(predictor.sizes) == 8


def test_a_full_queue_and_a_long_wait_raise_queue_full():
    predictor = RecordingPredictor(delay=1.0)
    batcher = Batcher([predictor], max_batch=1, max_queue=1)
    image = np.zeros((3, 2, 2), np.float32)
    busy = threading.Thread(target=batcher.submit, args=(image, None, 30))
    busy.start()
    while batcher.idle:  # the predictor takes the first image
        time.sleep(0.01)
    outcome: list[BaseException | dict] = []

    def wait_briefly() -> None:
        try:
            outcome.append(batcher.submit(image, None, 0.2))
        except QueueFull as e:
            outcome.append(e)

    waiter = threading.Thread(target=wait_briefly)
    waiter.start()
    time.sleep(0.05)
    with pytest.raises(QueueFull, match="max_queue 1"):
        batcher.submit(image, None, 30)
    waiter.join()
    assert len(outcome) == 1 and isinstance(outcome[0], QueueFull) and "within 0.2 s" in str(outcome[0])
    assert batcher.waiting() == 0  # the image that waited too long was withdrawn, never run
    busy.join()
    assert predictor.sizes == [1]


def test_a_failing_run_reaches_every_request_of_the_batch_and_the_thread_goes_on():
    predictor = RecordingPredictor(fail=True)
    batcher = Batcher([predictor], max_batch=4, batch_timeout=0.2)
    with ThreadPoolExecutor(3) as ex:
        futures = [ex.submit(batcher.submit, np.zeros((3, 2, 2), np.float32), None, 30) for _ in range(3)]
    for f in futures:
        with pytest.raises(RuntimeError, match="backend exploded"):
            f.result()
    predictor.fail = False
    assert batcher.submit(np.full((3, 2, 2), 7, np.float32), None, 30)["value"] == 7


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError, match="max_batch"):
        Batcher([RecordingPredictor()], max_batch=0)
