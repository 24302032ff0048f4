"""Weights formats of other code (PaddleClas, torchvision, the papers' official code).

Each module registers one :class:`~ppcls.arch.weights.base.WeightFormat` in
``WEIGHT_FORMATS``; importing this package registers them all (no hand-kept list).
"""

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    importlib.import_module(f"{__name__}.{_info.name}")
