"""Progress bars on a terminal, plain periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)


class _LogProgress:
    def __init__(self, total: int | None, desc: str, unit: str, every: float = 10.0) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n = 0
        self.last = time.time()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.time()
        if now - self.last >= self.every:
            self.last = now
            of = f"/{self.total}" if self.total else ""
            logger.info("%s: %d%s %s", self.desc, self.n, of, self.unit)


@contextmanager
def progress(total: int | None, desc: str, unit: str = "it") -> Iterator:
    """A tqdm bar when stderr is a terminal, else a logger reporting every 10 s."""
    if sys.stderr.isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", leave=False)
            try:
                yield bar
            finally:
                bar.close()
            return
    yield _LogProgress(total, desc, unit)
