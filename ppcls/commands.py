"""The ``ppcls`` command: ``ppcls <command> [tool arguments]`` runs the tool of the same job.

Each sub-command calls the same ``main(argv)`` as ``python tools/<tool>.py`` (through
:func:`ppcls.utils.cli.run_tool`, so exit statuses and error messages are the tool's), e.g.
``ppcls train -c configs/quick_start/PPLCNet_x0_25_digits.yaml -o Global.epochs=1``. A relative
``-c configs/...`` that does not exist in the current folder is the recipe shipped with ppcls.

Nothing here imports Paddle: ``tools/train.py`` installs its SIGTERM/SIGINT handlers when it is
imported, before Paddle is, and ``ppcls train`` imports it the same way.
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from ppcls import __version__
from ppcls._resources import PACKAGE_DIR

# command -> (module in tools/, or "deploy" for the deploy predictor; one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "train a model from a config (tools/train.py)"),
    "eval": ("eval", "evaluate weights on the config's Eval set (tools/eval.py)"),
    "infer": ("infer", "predict images with trained weights (tools/infer.py)"),
    "export": ("export_model", "export an inference model (tools/export_model.py)"),
    "export_onnx": ("export_onnx", "export an ONNX inference model (tools/export_onnx.py)"),
    "quantize": ("quantize", "export and quantize to INT8 ONNX (tools/quantize.py)"),
    "predict": ("deploy", "predict with an exported model (deploy/python/predict_cls.py)"),
    "convert": ("convert_weights", "convert weights between formats (tools/convert_weights.py)"),
    "split": ("split_dataset", "split an image folder into train/val lists (tools/split_dataset.py)"),
    "summary": ("model_summary", "parameters, FLOPs and output shape of a model (tools/model_summary.py)"),
    "benchmark_train": ("benchmark_train", "time training steps (tools/benchmark_train.py)"),
    "benchmark_data": ("benchmark_data", "time the data loader (tools/benchmark_data.py)"),
    "benchmark_inference": ("benchmark_inference", "time an exported model (tools/benchmark_inference.py)"),
}
# tools whose ``__main__`` calls ``main`` itself rather than through ``run_tool``
OWN_ERROR_HANDLING = {"split_dataset"}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [
        "usage: ppcls <command> [arguments of the command]",
        "",
        "PaddlePaddle image classification. Commands (`ppcls <command> --help` for their arguments):",
        "",
        *(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()),
        "",
        "A relative -c configs/... that does not exist in the current folder is the recipe shipped with",
        "ppcls, e.g.: ppcls train -c configs/quick_start/PPLCNet_x0_25_digits.yaml",
    ]
    return "\n".join(lines)


def tool_module(module: str) -> ModuleType:
    """``tools/<module>.py``: the installed copy (``ppcls._tools.tools``) or a checkout's ``tools/``."""
    before = list(sys.path)
    try:
        try:
            return importlib.import_module(f"ppcls._tools.tools.{module}")
        except ModuleNotFoundError as e:
            if e.name not in ("ppcls._tools.tools", f"ppcls._tools.tools.{module}"):
                raise
        root = os.path.dirname(PACKAGE_DIR)  # a source checkout (or an editable install)
        if root not in sys.path:
            sys.path.insert(0, root)
        return importlib.import_module(f"tools.{module}")
    finally:
        # the installed tool put its own parent folder (ppcls/_tools) first on sys.path; not needed
        added = os.path.join(PACKAGE_DIR, "_tools")
        if added not in before:
            sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != added]


def _deploy_predict() -> ModuleType:
    """``deploy/python/predict_cls.py``: ``deploy`` ships as a top-level package (or a checkout's)."""
    try:
        return importlib.import_module("deploy.python.predict_cls")
    except ModuleNotFoundError as e:
        if e.name not in ("deploy", "deploy.python"):
            raise
    sys.path.insert(0, os.path.dirname(PACKAGE_DIR))
    return importlib.import_module("deploy.python.predict_cls")


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        sys.exit(0 if args else 2)
    if args[0] in ("-V", "--version"):
        print(f"ppcls {__version__}")
        sys.exit(0)
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        close = difflib.get_close_matches(command, COMMANDS, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        print(f"ppcls: unknown command '{command}'.{hint} Commands: {', '.join(COMMANDS)}", file=sys.stderr)
        sys.exit(2)
    module = COMMANDS[command][0]
    sys.argv = [f"ppcls {command}", *rest]  # argparse's usage lines name the sub-command
    if module == "deploy":
        _deploy_predict().run(rest)
        return
    tool = tool_module(module)  # tools/train.py installs its signal handlers here, before Paddle
    if module in OWN_ERROR_HANDLING:
        sys.exit(tool.main(rest))
    from ppcls.utils.cli import run_tool  # only now: it imports Paddle, after the tool's signal handlers

    run_tool(tool.main, rest)


if __name__ == "__main__":
    main()
