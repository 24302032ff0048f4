"""Evaluate weights: python tools/eval.py -c CONFIG -o Global.pretrained_model=PATH"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.utils.cli import load, parser, run_tool  # noqa: E402


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    from ppcls.engine.runner import evaluate_config

    evaluate_config(load(args))
    return 0


if __name__ == "__main__":
    run_tool(main)
