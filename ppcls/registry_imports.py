"""Import every module that registers entries, so registries are complete before validation."""

from __future__ import annotations


def import_all() -> None:
    from ppcls import arch, data, loss, metric, optimizer  # noqa: F401
    from ppcls.engine import postprocess  # noqa: F401
