"""Logging set-up, done once by the tools: rank 0 to stdout and a file, other ranks quieter."""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "[%(asctime)s] %(name)s %(levelname)s: %(message)s"
DATEFMT = "%Y/%m/%d %H:%M:%S"
# ``logger.info(..., extra=FILE_ONLY)``: the record goes to the log file, not to the screen
# (the full config dump: on the screen it would push a following error out of sight)
FILE_ONLY = {"file_only": True}


class _ScreenFilter(logging.Filter):
    """Keeps records marked :data:`FILE_ONLY` off the screen."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "file_only", False)


def setup_logging(log_file: str | None = None, rank: int = 0, level: int = logging.INFO) -> None:
    """Configure the ``ppcls`` logger; rank 0 logs INFO to stdout (and ``log_file``)."""
    root = logging.getLogger("ppcls")
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level if rank == 0 else logging.WARNING)
    root.propagate = False
    formatter = logging.Formatter(FORMAT, DATEFMT)
    stream = logging.StreamHandler(sys.stdout)
    stream.setFormatter(formatter)
    stream.addFilter(_ScreenFilter())
    root.addHandler(stream)
    if log_file and rank == 0:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        file_handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        file_handler.setFormatter(formatter)
        root.addHandler(file_handler)


def add_log_file(log_file: str) -> None:
    """Also write the ``ppcls`` log to ``log_file`` (rank 0 only; other ranks call nothing)."""
    root = logging.getLogger("ppcls")
    path = os.path.abspath(log_file)
    if any(getattr(h, "baseFilename", None) == path for h in root.handlers):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT, DATEFMT))
    root.addHandler(handler)
