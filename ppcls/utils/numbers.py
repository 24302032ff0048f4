"""A safe parser for PaddleClas's numeric strings such as ``1.0/255.0``; never ``eval``.

Design note: the parser is ``deploy/python/config_syntax.py``'s (one copy; deploy/ runs alone, so it
lives there and ppcls imports it); here it raises ppcls's :class:`~ppcls.utils.errors.ConfigError`.
"""

from __future__ import annotations

from deploy.python.config_syntax import parse_number as _parse_number
from ppcls.utils.errors import PPCLS_ERRORS


def parse_number(value: object, where: str = "value") -> float:
    """Return ``value`` as a float; accepts numbers, numeric strings and ``a/b`` fractions."""
    return _parse_number(value, where, PPCLS_ERRORS)
