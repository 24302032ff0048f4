"""Every package that registers entries, imported: once this module is, the registries are complete.

It sits at the engine level, since it imports arch, data, loss, metric, optimizer and
engine.postprocess; whole-config validation (:mod:`ppcls.engine.config`) imports it.
"""

from __future__ import annotations

from ppcls import arch, data, loss, metric, optimizer
from ppcls.engine import postprocess

REGISTERING_MODULES = (arch, data, loss, metric, optimizer, postprocess)
