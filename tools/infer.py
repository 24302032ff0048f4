"""Predict images: python tools/infer.py -c CONFIG -o Infer.infer_imgs=PATH -o Global.pretrained_model=PATH"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.utils.cli import load, parser, run_tool  # noqa: E402


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    from ppcls.engine.runner import infer_config

    for batch in infer_config(load(args)):
        print(batch, flush=True)
    return 0


if __name__ == "__main__":
    run_tool(main)
