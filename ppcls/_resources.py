"""Files that ship with ppcls: the recipes (``configs/``) and label lists.

In a source checkout they live at the repository root (``configs/``) and in ``ppcls/utils/``;
an installed wheel carries ``configs/`` as ``ppcls/configs/`` (see ``setup.py``). Relative paths
the recipes and README use (``configs/quick_start/...``, ``ppcls/utils/imagenet1k_label_list.txt``)
are looked up relative to the current folder first, then here, so they work from any folder.
"""

from __future__ import annotations

import logging
import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_SOURCE_ROOT = os.path.dirname(PACKAGE_DIR)

logger = logging.getLogger("ppcls.tools")


def configs_dir() -> str | None:
    """The folder holding the shipped recipes: ``ppcls/configs`` (installed) or the checkout's ``configs``."""
    for folder in (os.path.join(PACKAGE_DIR, "configs"), os.path.join(_SOURCE_ROOT, "configs")):
        if os.path.isdir(folder):
            return folder
    return None


def packaged_file(path: str) -> str | None:
    """The shipped file that the relative ``path`` names (``configs/...`` or ``ppcls/...``), or None."""
    if not path or os.path.isabs(path):
        return None
    parts = os.path.normpath(path).replace("\\", "/").split("/")
    if ".." in parts:
        return None
    candidates = []
    if parts[0] == "configs" and len(parts) > 1 and configs_dir():
        candidates.append(os.path.join(configs_dir(), *parts[1:]))
    if parts[0] == "ppcls" and len(parts) > 1:
        candidates.append(os.path.join(PACKAGE_DIR, *parts[1:]))
    return next((c for c in candidates if os.path.isfile(c)), None)


def resolve(path: str, what: str = "file") -> str:
    """``path`` if it exists (relative to the current folder), else the shipped file it names.

    The fallback is logged, so a run states which recipe it used; a path found nowhere is
    returned unchanged (the caller reports it as missing).
    """
    if not path or os.path.exists(path):
        return path
    shipped = packaged_file(path)
    if shipped is None:
        return path
    logger.info("%s %s not found in %s; using the one shipped with ppcls: %s", what, path, os.getcwd(), shipped)
    return shipped
