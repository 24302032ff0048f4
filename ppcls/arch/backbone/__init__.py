"""Backbone families; importing this package registers every model in ``MODELS``."""

import importlib
import pkgutil

# Each module registers its entry functions on import; discovering them keeps this file
# free of a hand-kept list that every new family would have to edit.
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    importlib.import_module(f"{__name__}.{_info.name}")
