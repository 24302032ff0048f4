"""Export an inference model with its ONNX copy: python tools/export_onnx.py -c CONFIG
-o Global.pretrained_model=PATH -o Global.save_inference_dir=DIR

The same as tools/export_model.py with -o Global.export_type=onnx: the folder gets
inference.json + inference.pdiparams + inference.yml and inference.onnx (through paddle2onnx)."""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.utils.cli import load, parser, run_tool  # noqa: E402


def main(argv=None) -> int:
    args = parser(__doc__).parse_args(argv)
    args.override.append("Global.export_type=onnx")  # last, so it wins over any -o given
    from ppcls.engine.runner import export_config

    print(f"inference model written to {export_config(load(args))}")
    return 0


if __name__ == "__main__":
    run_tool(main)
