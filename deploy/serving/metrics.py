"""The service's counters, exposed as ``GET /metrics`` in Prometheus's text format (version 0.0.4)."""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Sequence

# request latency buckets, seconds (Prometheus histogram: cumulative counts per upper bound)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)  # images per predictor run
RATE_WINDOW_S = 60.0  # images per second: over the last minute


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _histogram(name: str, bounds: Sequence[float], counts: Sequence[int], total: int, sum_text: object) -> list[str]:
    """A Prometheus histogram's sample lines: cumulative buckets, +Inf, sum and count."""
    lines, cumulative = [], 0
    for bound, n in zip(bounds, counts):
        cumulative += n
        lines.append(f'{name}_bucket{{le="{bound}"}} {cumulative}')
    return lines + [f'{name}_bucket{{le="+Inf"}} {total}', f"{name}_sum {sum_text}", f"{name}_count {total}"]


class ServiceMetrics:
    """Requests by status, a latency histogram, images answered and their recent rate; thread-safe."""

    def __init__(self, model: str, backend: str) -> None:
        self.model = model
        self.backend = backend
        self.lock = threading.Lock()
        self.by_status: dict[int, int] = {}
        self.buckets = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.images = 0
        self.batches = 0
        self.batch_buckets = [0] * len(BATCH_BUCKETS)
        self.batch_images = 0
        self.recent: deque[float] = deque()  # answer times of images within RATE_WINDOW_S

    def observe(self, status: int, seconds: float, images: int = 0) -> None:
        """One answered request: its status, duration and the images it classified."""
        now = time.monotonic()
        with self.lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1
            i = bisect.bisect_left(LATENCY_BUCKETS, seconds)
            if i < len(self.buckets):
                self.buckets[i] += 1
            self.latency_sum += seconds
            self.latency_count += 1
            self.images += images
            self.recent.extend([now] * images)
            self._trim(now)

    def observe_batch(self, images: int) -> None:
        """One predictor run over ``images`` images (requests batched together)."""
        with self.lock:
            self.batches += 1
            self.batch_images += images
            i = bisect.bisect_left(BATCH_BUCKETS, images)
            if i < len(self.batch_buckets):
                self.batch_buckets[i] += 1

    def _trim(self, now: float) -> None:
        while self.recent and now - self.recent[0] > RATE_WINDOW_S:
            self.recent.popleft()

    def render(self, queue_depth: int, in_flight: int) -> str:
        """The Prometheus text exposition of every metric."""
        now = time.monotonic()
        with self.lock:
            self._trim(now)
            rate = len(self.recent) / RATE_WINDOW_S
            lines = [
                "# HELP ppcls_model_info The served model and backend.",
                "# TYPE ppcls_model_info gauge",
                f'ppcls_model_info{{model="{_label(self.model)}",backend="{_label(self.backend)}"}} 1',
                "# HELP ppcls_requests_total Answered HTTP requests by status code.",
                "# TYPE ppcls_requests_total counter",
            ]
            lines += [f'ppcls_requests_total{{code="{code}"}} {n}' for code, n in sorted(self.by_status.items())]
            lines += ["# HELP ppcls_request_seconds Time from request start to answer.",
                      "# TYPE ppcls_request_seconds histogram"]
            lines += _histogram("ppcls_request_seconds", LATENCY_BUCKETS, self.buckets, self.latency_count,
                                f"{self.latency_sum:.6f}")
            lines += ["# HELP ppcls_images_total Images classified.",
                      "# TYPE ppcls_images_total counter",
                      f"ppcls_images_total {self.images}",
                      "# HELP ppcls_batches_total Predictor runs (images_total / batches_total: the mean batch).",
                      "# TYPE ppcls_batches_total counter",
                      f"ppcls_batches_total {self.batches}",
                      "# HELP ppcls_batch_size Images per predictor run.",
                      "# TYPE ppcls_batch_size histogram"]
            lines += _histogram("ppcls_batch_size", BATCH_BUCKETS, self.batch_buckets, self.batches, self.batch_images)
            lines += [f"# HELP ppcls_images_per_second Images classified per second over the last {RATE_WINDOW_S:g} s.",
                      "# TYPE ppcls_images_per_second gauge",
                      f"ppcls_images_per_second {rate:.4f}"]
        lines += ["# HELP ppcls_queue_depth Requests waiting for a predictor.", "# TYPE ppcls_queue_depth gauge",
                  f"ppcls_queue_depth {queue_depth}",
                  "# HELP ppcls_requests_in_flight Requests being answered.", "# TYPE ppcls_requests_in_flight gauge",
                  f"ppcls_requests_in_flight {in_flight}"]
        return "\n".join(lines) + "\n"
