"""The errors ``deploy/`` reports to its users, and how its command lines print them.

A :class:`DeployUserError` is a mistake in what the user gave: the deploy config or an ``-o``
override, a file or folder that is not there, an image that cannot be used, a package or a
device that is missing; an operating-system error about a path (not found, not permitted, disk
full) is treated the same way, as ``ppcls``'s tools do. The command lines (``predict_cls.py``, ``serving/server.py``) print
its message as one line, ``error: ...``, and exit with its ``exit_code`` (2; 1 for too many
unreadable images). Anything else is a bug: it keeps its traceback, followed by a line saying
so, and exits with status 3. Messages are bounded (a few lines), whatever the user's values.

The subclasses also derive from the built-in type a caller would have caught before
(``ValueError``, ``FileNotFoundError``, ``RuntimeError``, ``ImportError``), so code written
against those keeps working. This module stands alone (no ``ppcls`` import).

Design note (one base for both sides): :class:`UserError` here is also ``ppcls``'s base
(``ppcls/utils/errors.py`` imports it: the training side may import deploy's pure modules, deploy
never imports ppcls). So a deploy error raised inside a ppcls tool (``tools/quantize.py`` runs
deploy's quantization) is a ``ppcls.utils.errors.UserError`` and ``ppcls/utils/cli.py`` reports it
like any other: one line, exit status 2, with no translation in between. :class:`ErrorKinds` lets a
helper shared with ppcls (``files.py``, ``config_syntax.py``, ``postprocess.py``) raise each side's
own types.
"""

from __future__ import annotations

import errno
import reprlib
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

EXIT_USER_ERROR = 2
EXIT_BAD_INPUTS = 1
EXIT_BUG = 3
MAX_MESSAGE_CHARS = 1500
MAX_MESSAGE_LINES = 6


class UserError(Exception):
    """A mistake in what the user gave (or the machine's state), printed as one line: the one base of
    deploy's :class:`DeployUserError` and of ppcls's user errors (``ppcls.utils.errors``)."""

    exit_code = EXIT_USER_ERROR

    def __str__(self) -> str:
        # one plain message, also for the KeyError-derived types (KeyError quotes its argument)
        if len(self.args) == 1:
            return str(self.args[0])
        return super().__str__()


class DeployUserError(UserError):
    """A mistake in the user's config, files, images or installation; printed as one line."""


class DeployConfigError(DeployUserError, ValueError):
    """A problem in the deploy config; the message names the key and what was expected."""


class DeployFileError(DeployUserError, FileNotFoundError):
    """A file or folder the user named is missing or cannot be read or written."""


class DeployEnvironmentError(DeployUserError, RuntimeError):
    """The installed Paddle / ONNX Runtime or the hardware cannot do what the config asks."""


class MissingPackageError(DeployUserError, ImportError):
    """An optional package the config asks for is not installed."""


class ModelLoadError(DeployUserError, RuntimeError):
    """The backend could not load the model files (truncated, another format, another version)."""


class ImageInputError(DeployUserError, ValueError):
    """One input image cannot be used (not an image, or too small for the preprocessing)."""


class TooManyBadImagesError(DeployUserError):
    """More undecodable inputs than ``Global.max_bad_image_ratio`` allows (results were still written)."""

    exit_code = EXIT_BAD_INPUTS


# operating-system errors about a path (missing, not permitted, disk full): the machine's state, not a bug
PATH_OS_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)
PATH_ERRNOS = frozenset(getattr(errno, n) for n in ("ENOSPC", "EDQUOT", "EROFS", "ENAMETOOLONG") if hasattr(errno, n))

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 6


SHORT_LIMIT = 160


def short(value: Any, limit: int = SHORT_LIMIT) -> str:
    """A bounded ``repr`` of a user's value: nested and long values are elided with ``...``; the work
    is bounded by the limits, not by the value's size (a YAML "billion laughs" value is cheap)."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({type(value).__name__}, shortened)"


def bounded(text: str, max_chars: int = MAX_MESSAGE_CHARS, max_lines: int = MAX_MESSAGE_LINES) -> str:
    """``text`` cut to ``max_lines`` lines and ``max_chars`` characters, saying how much was cut."""
    text = str(text)
    lines = text.splitlines() or [""]
    cut = ""
    if len(lines) > max_lines:
        cut = f" ... ({len(lines) - max_lines} more lines)"
        lines = lines[:max_lines]
    text = "\n".join(lines)
    if len(text) > max_chars:
        cut = f" ... ({len(text) - max_chars} more characters)" + cut
        text = text[:max_chars]
    return text + cut


def few(items: Sequence[Any], n: int = 5) -> str:
    """``a, b, c`` or ``a, b, c, d, e and 995 more``: a bounded list of names for a message."""
    shown = ", ".join(str(x) for x in list(items)[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


@dataclass(frozen=True)
class ErrorKinds:
    """What a helper shared with ppcls raises for each kind of mistake, and how it shows a user's value.

    The defaults are deploy's; ppcls passes its own types (``ConfigError``, ``DataError``,
    ``MissingFileError``) and its ``summarize``, so each side's callers keep catching what they did.
    """

    config: type[Exception] = DeployConfigError  # a bad value in a config or an override
    data: type[Exception] = DeployConfigError  # a bad line in a file the user gave (a label list)
    missing: type[Exception] = DeployFileError  # a file or folder the user named is not there
    show: Callable[[Any], str] = short  # a bounded text of a user's value for a message


DEPLOY_ERRORS = ErrorKinds()


def is_user_error(e: BaseException) -> bool:
    """A :class:`UserError` (deploy's or ppcls's), or an operating-system error about a path (one line);
    else a bug."""
    if isinstance(e, UserError):
        return True
    return isinstance(e, OSError) and (isinstance(e, PATH_OS_ERRORS) or e.errno in PATH_ERRNOS)


def format_user_error(e: BaseException) -> str:
    """``error: <message>`` for a user error (a KeyError's message without its quotes; an OS error's
    path first)."""
    if isinstance(e, OSError) and not isinstance(e, UserError) and e.strerror:
        paths = [str(p) for p in (e.filename, e.filename2) if p is not None]
        msg = f"{' -> '.join(paths)}: {e.strerror}" if paths else e.strerror
    else:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    return "error: " + bounded(msg)


def format_bug(e: BaseException, tool: str = "deploy") -> str:
    """The traceback of an unexpected exception (frames and messages bounded) and a line saying it is a bug."""
    chunks = []
    for chunk in traceback.TracebackException.from_exception(e, limit=50).format():
        chunks.append(bounded(chunk.rstrip("\n"), max_chars=2000, max_lines=20))
    chunks.append(
        f"{tool}: this is a bug, not a mistake in your config or images: please report it with the traceback above"
    )
    return "\n".join(chunks)


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None,
            tool: str = "deploy") -> NoReturn:
    """Run a command line's ``main``: user errors as one line (their ``exit_code``), bugs with a traceback
    (exit status 3), Ctrl-C as status 130."""
    try:
        code = main(argv)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - sorted below: the user's mistakes, or a bug with its traceback
        sys.stdout.flush()
        if is_user_error(e):
            print(format_user_error(e), file=sys.stderr)
            sys.exit(getattr(e, "exit_code", EXIT_USER_ERROR))
        print(format_bug(e, tool), file=sys.stderr)
        sys.exit(EXIT_BUG)
    sys.exit(code or 0)
