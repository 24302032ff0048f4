"""A safe parser for PaddleClas's numeric strings such as ``1.0/255.0``; never ``eval``."""

from __future__ import annotations

import re

from ppcls.utils.errors import ConfigError, summarize

_FRACTION = re.compile(r"^\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*/\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*$")


def parse_number(value: object, where: str = "value") -> float:
    """Return ``value`` as a float; accepts numbers, numeric strings and ``a/b`` fractions."""
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got the boolean {value}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _FRACTION.match(value)
        try:
            if match:
                return float(match.group(1)) / float(match.group(2))
            return float(value)
        except (ValueError, ZeroDivisionError):
            pass
    raise ConfigError(f"{where}: expected a number or a fraction like 1.0/255.0, got {summarize(value)}")
