"""The shared command line of the tools: ``-c CONFIG`` and repeated ``-o Key.path=value``.

:func:`run_tool` is where a tool's failure becomes what the user sees:

* a :class:`~ppcls.utils.errors.UserError` (config, data, files, weights, arguments, device;
  deploy's ``DeployUserError`` shares that base, so a deploy error raised inside a tool is reported
  the same way) and an operating-system error about a path (missing, not permitted, disk full) are
  the user's or the machine's: one bounded message, no traceback, exit status 2;
* anything else is a bug: the traceback (each message in it bounded, so a tensor printed into
  an exception cannot flood the screen), a sentence saying it is a bug to report, exit status 1.

Though it lives in ``utils/``, this module is the tools' own layer (beside ``ppcls/commands.py``): it
loads whole configs through :mod:`ppcls.engine.config`, so nothing in ppcls below the tools imports it.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Callable, Sequence

# Before Paddle loads its OpenMP runtime: a thread that ends a parallel region spins KMP_BLOCKTIME ms
# (200 by default) before sleeping. Training's backward leaves a second team spinning that way, and
# every evaluation after the first epoch ran slower beside it (docs/benchmarks.md, "Threads", has the figures);
# 1 ms keeps the training speed and removes that. A value the user set is kept.
os.environ.setdefault("KMP_BLOCKTIME", "1")

from ppcls._resources import resolve  # noqa: E402
from ppcls.engine.config import load_config  # noqa: E402
from ppcls.utils import dist  # noqa: E402
from ppcls.utils.errors import MESSAGE_LIMIT, UserError, bound_text  # noqa: E402
from ppcls.utils.logger import setup_logging  # noqa: E402

logger = logging.getLogger("ppcls.tools")

# errors that are the user's input, reported as one message without a traceback (deploy's share the base)
USER_ERRORS: tuple[type[BaseException], ...] = (UserError,)
# operating-system errors about a path: the machine's state, not a bug (the message names the path)
PATH_OS_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)
PATH_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EROFS", "ENAMETOOLONG", "EMFILE", "ENFILE")
    if hasattr(errno, name)
)
BUG_SENTENCE = (
    "This is a bug (in ppcls or a library it calls), not a mistake in your config, data or command: please "
    "report it with the command line and the traceback above."
)
# Paddle re-raises a data-loader worker's exception with the worker's whole traceback as its message
_WORKER_MESSAGE = re.compile(r"\ADataLoader worker\((\d+)\) caught (\w+) with message:\n(.*)\Z", re.S)
TRACEBACK_MESSAGE_LIMIT = 2000  # characters of each exception message inside a bug's traceback
TRACEBACK_MESSAGE_LINES = 20


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("-o", "--override", action="append", default=[],
                   help="override a config value: -o Global.epochs=10 (repeatable)")
    return p


def load(args: argparse.Namespace) -> dict:
    """The config ``-c`` names with its ``-o`` overrides.

    A relative ``-c configs/...`` that does not exist in the current folder is the recipe shipped
    with ppcls (logged), so ``ppcls train -c configs/quick_start/...`` works from any folder; so
    are shipped files the config names (``ppcls/utils/imagenet1k_label_list.txt``).
    """
    args.config = resolve(args.config, "config")
    return _resolve_shipped_files(load_config(args.config, args.override))


def _resolve_shipped_files(node):
    """Relative ``ppcls/...``/``configs/...`` paths in a config that only exist as shipped files."""
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = _resolve_shipped_files(value)
    elif isinstance(node, list):
        node[:] = [_resolve_shipped_files(v) for v in node]
    elif isinstance(node, str) and node.startswith(("ppcls/", "configs/")):
        return resolve(node)
    return node


def is_user_error(exc: BaseException) -> bool:
    """True for the user's or the machine's problems (one message), False for bugs (a traceback)."""
    if isinstance(exc, USER_ERRORS):
        return True
    return isinstance(exc, OSError) and (isinstance(exc, PATH_OS_ERRORS) or exc.errno in PATH_ERRNOS)


def user_message(exc: BaseException, limit: int = MESSAGE_LIMIT) -> str:
    """The bounded message of a user error; an OS error leads with its path."""
    if isinstance(exc, OSError) and not isinstance(exc, UserError) and exc.strerror:
        paths = [p for p in (exc.filename, exc.filename2) if p is not None]
        text = f"{' -> '.join(str(p) for p in paths)}: {exc.strerror}" if paths else exc.strerror
    elif isinstance(exc, KeyError) and len(exc.args) == 1:
        text = str(exc.args[0])
    else:
        text = str(exc)
    worker = _WORKER_MESSAGE.match(text)
    if worker and "Traceback (most recent call last)" in worker.group(3):
        # the worker's own message is the last line of its traceback: "pkg.DataError: message"
        last = [line for line in worker.group(3).splitlines() if line.strip()][-1]
        last = re.sub(rf"\A[\w.]*{worker.group(2)}: ", "", last)
        text = f"{last} (in DataLoader worker {worker.group(1)})"
    return bound_text(text or type(exc).__name__, limit)


class _ThreadErrors:
    """User errors raised in other threads of the tool (Paddle reads worker results in a thread).

    Paddle's multi-process data loader re-raises a worker's exception in its reader thread; the
    main thread then only sees ``SystemError: Blocking queue is killed``. The user error recorded
    here is what :func:`run_tool` reports instead of that consequence.
    """

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def install(self) -> None:
        self.errors.clear()
        threading.excepthook = self.hook

    def hook(self, args: threading.ExceptHookArgs) -> None:
        exc = args.exc_value
        if exc is None or isinstance(exc, SystemExit):
            return
        if is_user_error(exc):
            self.errors.append(exc)  # reported by run_tool, once, as one line
            return
        name = args.thread.name if args.thread is not None else "?"
        logger.error("unexpected %s in thread %s:\n%s", type(exc).__name__, name, format_bug(exc))  # bounded


THREAD_ERRORS = _ThreadErrors()


def format_bug(exc: BaseException) -> str:
    """The traceback of ``exc`` (with its causes), each exception message bounded."""
    out: list[str] = []
    for chunk in traceback.TracebackException.from_exception(exc).format():
        out.append(bound_text(chunk, TRACEBACK_MESSAGE_LIMIT, TRACEBACK_MESSAGE_LINES))
        if not out[-1].endswith("\n"):
            out[-1] += "\n"
    return "".join(out).rstrip("\n")


def _quiet_opencv() -> None:
    """OpenCV's own ``[ WARN ]`` line per truncated image goes to stderr, unbounded; the tools name undecodable
    files themselves (a few by name, the rest counted), so OpenCV keeps to errors."""
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except (ImportError, AttributeError):  # a build without the logging module: its warnings stay
        pass


def run_tool(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> None:
    """Run a tool's ``main``: user errors print one message (exit 2), bugs a traceback (exit 1)."""
    setup_logging(rank=dist.rank())
    _quiet_opencv()
    THREAD_ERRORS.install()
    try:
        code = main(argv)
    except KeyboardInterrupt:
        logger.error("interrupted")
        sys.exit(130)
    except Exception as e:
        cause = e if is_user_error(e) else (THREAD_ERRORS.errors[-1] if THREAD_ERRORS.errors else None)
        if cause is not None:
            logger.error("%s", user_message(cause))
            sys.exit(2)
        logger.error("unexpected %s:\n%s\n%s", type(e).__name__, format_bug(e), BUG_SENTENCE)
        sys.exit(1)
    sys.exit(code or 0)
