"""Files for ppcls and deploy alike: finding the input images, judging unreadable ones, atomic writes.

Design note (one copy for ppcls and deploy): deploy/ must run when copied alone, so the code lives
here and imports nothing outside deploy/ (nor paddle); ppcls imports it (``ppcls/engine/infer.py``,
``ppcls/utils/io.py``) as it imports deploy's other pure modules. Each side keeps its error types
and wording: the functions take an :class:`~deploy.python.errors.ErrorKinds` and the settings'
names; the defaults are deploy's.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from .errors import DEPLOY_ERRORS, ErrorKinds, TooManyBadImagesError, few

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
SHOWN_PATHS = 5  # unreadable files named in the summary; the rest are counted


# ----------------------------------------------------------------------------- input images


def _warn_left_out(left_out: list[str], folder: str, where: str) -> None:
    logger.warning(f"{where}: left out %d file(s) under %s whose extension is not an image type "
                   "read here (%s): %s", len(left_out), folder, ", ".join(IMAGE_EXTENSIONS), few(left_out))


def list_images(path: str | Sequence[str]) -> list[str]:
    """An image file, a folder (searched recursively, sorted) or a list of either."""
    return [p for p, _ in list_named_images(path)]


def list_named_images(path: str | Sequence[str], where: str = "Global.infer_imgs",
                      errors: ErrorKinds = DEPLOY_ERRORS,
                      warn_left_out: Callable[[list[str], str, str], None] = _warn_left_out,
                      ) -> list[tuple[str, str]]:
    """``(path, name)`` of every image :func:`list_images` finds; the name is the path relative to the
    folder given (``cat/001.jpg``: base names alone are ambiguous across class sub-folders), or the path
    as given for a file. ``predict_cls.py`` and ``tools/infer.py`` name their results so.

    ``where`` names the setting in messages; ``warn_left_out(sorted_relative_paths, folder, where)``
    reports the files of a folder that are not images (deploy logs one warning).
    """
    if isinstance(path, (list, tuple)):
        return [pair for item in path for pair in list_named_images(item, where, errors, warn_left_out)]
    if os.path.isfile(path):
        return [(path, path)]
    if os.path.isdir(path):
        found, left_out = [], []
        for root, _, files in os.walk(path):
            for f in files:
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    found.append(os.path.join(root, f))
                elif not f.startswith("."):
                    left_out.append(os.path.relpath(os.path.join(root, f), path))
        if not found:
            raise errors.missing(f"{where}: no images ({', '.join(IMAGE_EXTENSIONS)}) under {path}")
        if left_out:
            warn_left_out(sorted(left_out), path, where)
        return [(f, os.path.relpath(f, path)) for f in sorted(found)]
    raise errors.missing(f"{where}: no such file or folder: {errors.show(path)}")


def _print_warning(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def check_bad_images(skipped: Sequence[str], total: int, max_ratio: float,
                     error: type[Exception] = TooManyBadImagesError, where: str = "",
                     advice: str = "set -o Global.max_bad_image_ratio=<fraction> to accept more",
                     warn: Callable[[str], None] = _print_warning) -> None:
    """Name a few of the unreadable files and count them; more than ``max_ratio`` of ``total`` (or all
    of them) raises ``error`` (``where`` prefixes the message, ``advice`` ends it); fewer is ``warn``-ed
    (deploy: a line on stderr)."""
    if not skipped:
        return
    ratio = len(skipped) / max(total, 1)
    summary = (f"{len(skipped)} of {total} input file(s) ({ratio:.1%}) could not be read as images and were "
               f"skipped: {few(skipped, SHOWN_PATHS)}")
    if len(skipped) == total:
        raise error(f"{where}{summary}; none could be read")
    if ratio > max_ratio:
        raise error(f"{summary}; that is more than Global.max_bad_image_ratio={max_ratio:g} allows ({advice})")
    warn(f"{summary} (within Global.max_bad_image_ratio={max_ratio:g})")


# ----------------------------------------------------------------------------- atomic writes


def new_file_mode(path: str) -> int:
    """The mode a replaced file keeps, or what a plain ``open()`` would give (mkstemp makes 0600)."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def fsync_file(path: str) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(folder: str) -> None:
    """Make a rename in ``folder`` durable; a file system that cannot sync a folder is left as it is."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically (synced, with
    the mode the file had or a plain ``open()`` gives). On failure the temporary file is removed."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        fsync_file(tmp)
        os.chmod(tmp, new_file_mode(path))
        os.replace(tmp, path)
        fsync_dir(folder)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def atomic_copy(src: str, dst_dir: str) -> str:
    """Copy ``src`` into ``dst_dir`` under its own name, atomically; returns the new path."""
    dst = os.path.join(dst_dir, os.path.basename(src))
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return dst


def write_json_lines(path: str, rows: Iterable[Mapping]) -> None:
    """One JSON object a line, written atomically."""
    atomic_write_text(path, "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in rows))
