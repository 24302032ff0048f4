"""Builders of small real data sets used by the quick start and the tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ppcls.registry import Registry
from ppcls.utils.errors import ConfigError, summarize

from .digits import prepare_digits
from .faces import prepare_faces

PREPARERS = Registry("data set preparer")  # DataLoader.prepare.name
PREPARERS.register("digits")(prepare_digits)
PREPARERS.register("faces")(prepare_faces)


def prepare_dataset(prepare_cfg: Mapping[str, Any] | None) -> None:
    """Run the ``DataLoader.prepare`` step named in the config (idempotent)."""
    if not prepare_cfg:
        return
    cfg = dict(prepare_cfg)
    name = cfg.pop("name")
    if name not in PREPARERS:
        raise ConfigError(f"DataLoader.prepare.name: expected one of {', '.join(PREPARERS)}, got {summarize(name)}")
    PREPARERS.build(name, **cfg)
