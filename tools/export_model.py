"""Export an inference model: python tools/export_model.py -c CONFIG -o Global.pretrained_model=PATH
-o Global.save_inference_dir=DIR [-o Global.export_type=onnx]"""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.utils.cli import load, parser, run_tool  # noqa: E402


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    from ppcls.engine.runner import export_config

    print(f"inference model written to {export_config(load(args))}")
    return 0


if __name__ == "__main__":
    run_tool(main)
