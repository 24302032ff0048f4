"""Convert a published checkpoint into this project's format.

  python tools/convert_weights.py --src FILE --model NAME [--format auto|paddleclas|torchvision|parnet|peleenet]
                                  --out OUT.pdparams [--class_num N] [--list]

FILE may be a PaddleClas .pdparams, a torchvision state dict (squeezenet1_1-b8a52dc0.pth), or a
checkpoint of the official ParNet or PeleeNet code (.pth.tar). PyTorch files need
`pip install torch` for the conversion only. The output loads with Arch.pretrained or
Global.pretrained_model, which also set the model options the publisher's network needs.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.utils.cli import run_tool  # noqa: E402
from ppcls.utils.errors import ArgumentError  # noqa: E402

SHOWN = 8  # renamed tensors printed without --list


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", required=True, help="the checkpoint to convert")
    p.add_argument("--model", required=True, help="registered model name, e.g. SqueezeNet1_1")
    p.add_argument("--format", default="auto", help="source format (default: recognised from the keys)")
    p.add_argument("--out", required=True, help="output .pdparams")
    p.add_argument("--class_num", type=int, help="classes of the file's head (default 1000)")
    p.add_argument("--list", action="store_true", help="print every source key -> model key")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not args.out.endswith(".pdparams"):
        raise ArgumentError(f"--out: expected a file name ending in .pdparams, got {args.out}")
    if args.class_num is not None and args.class_num < 1:
        raise ArgumentError(f"--class_num: expected a positive number of classes, got {args.class_num}")
    from ppcls.arch.weights.convert import convert_file
    from ppcls.registry import MODELS

    MODELS.get(args.model)  # an unknown name fails here, with the closest matches
    result = convert_file(args.src, args.model, args.out, args.format, args.class_num)
    mapping = result.conversion.mapping
    renamed = sum(1 for src, dst in mapping if src != dst)
    print(f"read {args.src} as format '{result.format}' ({result.family})")
    print(f"mapped {len(mapping)} tensors ({renamed} renamed) onto {result.model}; every model tensor filled once")
    if result.arch_options:
        opts = ", ".join(f"{k}: {v!r}" for k, v in result.arch_options.items())
        print(f"model options the publisher's network needs (stored in the file, applied on load): {opts}")
    changed = [(src, dst) for src, dst in mapping if src != dst]
    shown = mapping if args.list else changed[:SHOWN]
    for src, dst in shown:
        print(f"  {src} -> {dst}")
    if not args.list and len(changed) > SHOWN:
        print(f"  ... {len(changed) - SHOWN} more renamed (--list prints every tensor)")
    print(f"written {result.out}")
    return 0


if __name__ == "__main__":
    run_tool(main)
