"""Per-sample transforms; importing the package registers them in ``TRANSFORMS``."""

import importlib
import pkgutil

from .compose import Compose, build_transforms

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["Compose", "build_transforms"]
