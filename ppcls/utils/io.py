"""Atomic file writes (temporary name in the same folder, fsync, rename) and write errors.

A write that fails for a reason of the machine — a full disk or quota, a read-only file
system, a missing permission, a file where a folder should be — raises :class:`WriteError`:
one sentence naming the path and the cause, shown by the tools without a traceback (exit 2).
Its temporary file is removed first, so a failed write leaves the disk as it found it.

Design note: the atomic write itself (temporary file, fsync, mode, rename) is
``deploy/python/files.py``'s :func:`~deploy.python.files.atomic_path` (one copy; deploy/ runs alone,
so it lives there and ppcls imports it); this module adds ppcls's :class:`WriteError` around it.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from deploy.python import files as _files
from deploy.python.files import fsync_dir, fsync_file
from ppcls.utils.errors import PathError

__all__ = ["WRITE_ERRNOS", "WRITE_PROBE", "WriteError", "atomic_path", "atomic_write", "atomic_write_text",
           "ensure_writable_dir", "fsync_dir", "fsync_file", "is_write_failure", "write_error"]

# errno values that mean "this machine cannot write there", not a bug
WRITE_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG", "ENOTDIR",
                                      "EEXIST", "EISDIR", "ENAMETOOLONG", "EIO") if hasattr(errno, name)
)
WRITE_PROBE = ".write-test."  # the prefix of the file ensure_writable_dir creates and removes


class WriteError(PathError):
    """A file or folder the run must write cannot be written (full disk, read-only, a file in the way)."""


def is_write_failure(e: BaseException) -> bool:
    """True for an ``OSError`` caused by the machine (disk, permissions, paths), not by a bug."""
    return isinstance(e, OSError) and not isinstance(e, WriteError) and e.errno in WRITE_ERRNOS


def write_error(e: OSError, path: str, what: str = "cannot write") -> WriteError:
    """A :class:`WriteError` for ``e``: ``{what} {path}: {cause}`` (with the file that failed, if another)."""
    cause = e.strerror or type(e).__name__
    if e.errno == errno.ENOSPC:
        cause = "no space left on device (the disk is full)"
    elif e.errno == getattr(errno, "EDQUOT", None):
        cause = "disk quota exceeded"
    elif e.errno == errno.EROFS:
        cause = "read-only file system"
    elif e.errno in (errno.EACCES, errno.EPERM):
        cause = "permission denied"
    failed = getattr(e, "filename", None)
    detail = f" (at {failed})" if failed and os.path.abspath(str(failed)) != os.path.abspath(path) else ""
    err = WriteError(f"{what} {path}: {cause}{detail}")
    err.errno = e.errno
    return err


def ensure_writable_dir(path: str, what: str = "Global.output_dir") -> None:
    """Create folder ``path`` if needed and check that files can be created in it.

    Raises :class:`WriteError` naming ``what`` (the config key), the path and the cause: a
    file where the folder (or one of its parents) should be, a read-only file system, a
    missing permission, a full disk.
    """
    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = _file_in_the_way(path)
        raise WriteError(f"{what}: cannot create the folder {path}: {blocker} is a file, not a folder") from None
    except OSError as e:
        raise write_error(e, path, f"{what}: cannot create the folder") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=WRITE_PROBE, suffix=".tmp", dir=path)
    except OSError as e:
        raise write_error(e, path, f"{what}: cannot write into the folder") from None
    os.close(fd)
    os.remove(probe)


def _file_in_the_way(path: str) -> str:
    """The first existing non-folder on the way to ``path`` (``path`` itself if nothing better)."""
    current = os.path.abspath(path)
    chain = []
    while True:
        chain.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for candidate in reversed(chain):
        if os.path.lexists(candidate) and not os.path.isdir(candidate):
            return candidate
    return path


@contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    A failure of the machine (full disk, read-only, permissions) raises :class:`WriteError`, after the
    temporary file is removed.
    """
    try:
        with _files.atomic_path(path) as tmp:
            yield tmp
    except OSError as e:
        if is_write_failure(e):
            raise write_error(e, path) from None
        raise


def atomic_write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def atomic_write(path: str, writer: Callable[[str], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
