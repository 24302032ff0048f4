"""INT8 post-training quantization of an exported model (ONNX Runtime, QDQ):

python tools/quantize.py -c CONFIG -o Global.pretrained_model=PATH -o Global.save_inference_dir=DIR
    [--calib_list FILE | --calib_dir DIR] [--calib_num 256] [--eval]
    [--per_channel | --no-per_channel] [--symmetric_activations]
    [--calib_method percentile|minmax|entropy] [--keep_fp32 OP_TYPES_OR_NODE_NAMES] [--no-pre_process]

Exports as -o Global.export_type=onnx does (inference.onnx, the Paddle files, inference.yml), then
writes DIR/inference_int8.onnx calibrated on at most --calib_num images (default 256, spread evenly
over the classes, deterministic) taken through the model's own eval preprocessing, and records it
in DIR/inference.yml (Global.int8_model and a Quantization section). Calibration images: --calib_list
(a PaddleClas list; paths relative to DataLoader.Train.dataset.image_root, else to the list's folder),
--calib_dir (images under it, recursively), or by default DataLoader.Train's data set. --eval prints
the top-1 of the fp32 and INT8 models on DataLoader.Eval, their difference and a per-class table.
Defaults (chosen by measured top-1, see deploy/python/quantize.py): quant_pre_process first, int8
weights per channel, uint8 asymmetric activations, MinMax calibration, nothing kept in
float; --keep_fp32 Gemm keeps e.g. the classifier head in float (after the pre-processing the head
is one Gemm; --no-pre_process keeps the exported MatMul+Add).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.utils.cli import load, parser, run_tool  # noqa: E402


def main(argv=None) -> int:
    from ppcls.engine.quantize import add_arguments, quantize_config

    p = parser(__doc__)
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    args = add_arguments(p).parse_args(argv)
    result = quantize_config(load(args), args)
    s = result.settings
    print(f"INT8 model written to {result.int8_path} ({s['calibration_images']} calibration images from "
          f"{s['calibration_source']}; {s['calib_method']}, weights {s['weights']}, activations {s['activations']})")
    if result.report:
        print(result.report)
    return 0


if __name__ == "__main__":
    run_tool(main)
