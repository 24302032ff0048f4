"""Weights from any publisher: reading, format recognition, renaming by rules, coverage checks."""

from . import formats  # noqa: F401  (registers every format)
from .base import DROP, FamilyRules, WeightFormat, detect_by_markers, rule_table, strip_prefix, torch_bn
from .loader import (
    META_KEY,
    NATIVE,
    Conversion,
    LoadReport,
    WeightsError,
    WeightsSource,
    apply,
    check_options,
    convert,
    identify,
    known_formats,
    load_weights,
)

__all__ = [
    "DROP", "META_KEY", "NATIVE", "Conversion", "FamilyRules", "LoadReport", "WeightFormat", "WeightsError", "WeightsSource",
    "apply", "check_options", "convert", "detect_by_markers", "identify", "known_formats", "load_weights", "rule_table",
    "strip_prefix", "torch_bn",
]
