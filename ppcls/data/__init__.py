"""Data: datasets, transforms, samplers, batch operators and ``build_dataloader``."""

import importlib
import pkgutil

from . import dataset, transforms  # noqa: F401
from .build import build_dataloader, build_dataset

# optional modules (batch operators and further datasets) register themselves on import
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if _info.name not in ("prepare",):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["build_dataloader", "build_dataset"]
