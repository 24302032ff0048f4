"""The shared command line of the tools: ``-c CONFIG`` and repeated ``-o Key.path=value``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from ppcls.utils import dist
from ppcls.utils.logger import setup_logging

logger = logging.getLogger("ppcls.tools")

# errors that are the user's input, reported as one line without a traceback
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, FileExistsError, RuntimeError, ImportError,
               ConnectionError)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("-c", "--config", required=True, help="YAML config file")
    p.add_argument("-o", "--override", action="append", default=[],
                   help="override a config value: -o Global.epochs=10 (repeatable)")
    return p


def load(args: argparse.Namespace) -> dict:
    from ppcls.utils.config import load_config

    return load_config(args.config, args.override)


def run_tool(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> None:
    """Run a tool's ``main``; user errors print one clear line and exit with status 2."""
    setup_logging(rank=dist.rank())
    try:
        code = main(argv)
    except KeyboardInterrupt:
        logger.error("interrupted")
        sys.exit(130)
    except USER_ERRORS as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        logger.error("%s: %s", type(e).__name__, msg)
        sys.exit(2)
    sys.exit(code or 0)
