"""Atomic file writes (temporary name in the same folder, fsync, rename) and write errors.

A write that fails for a reason of the machine — a full disk or quota, a read-only file
system, a missing permission, a file where a folder should be — raises :class:`WriteError`:
one sentence naming the path and the cause, shown by the tools without a traceback (exit 2).
Its temporary file is removed first, so a failed write leaves the disk as it found it.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ppcls.utils.errors import PathError

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
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    except OSError as e:
        if is_write_failure(e):
            raise write_error(e, path) from None
        raise
    os.close(fd)
    try:
        yield tmp
        fsync_file(tmp)
        os.chmod(tmp, _target_mode(path))  # mkstemp makes 0600 files; keep the usual mode
        os.replace(tmp, path)
        fsync_dir(folder)
    except OSError as e:
        if is_write_failure(e):
            raise write_error(e, path) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _target_mode(path: str) -> int:
    """The existing file's mode, or 0o666 less the umask for a new file."""
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


def atomic_write_text(path: str, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def atomic_write(path: str, writer: Callable[[str], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
