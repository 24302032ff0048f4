"""Parameters and multiply-adds of models.

  python tools/model_summary.py -c CONFIG [-o Key.path=value ...]      (Arch + Global.image_shape)
  python tools/model_summary.py --model PPLCNet_x1_0 [--class_num 1000] [--input_size 224 | --input_shape 3,224,224]
  python tools/model_summary.py --all [--markdown docs/model_zoo.md]   (every registered model)

MACs count convolutions and linear layers only (see ppcls/utils/flops.py); "deploy" columns
are measured after reparameterization (BatchNorm folded, parallel branches fused).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls.utils.cli import run_tool  # noqa: E402
from ppcls.utils.errors import ArgumentError  # noqa: E402


def _shape(text: str) -> list[int]:
    try:
        shape = [int(s) for s in text.replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 3,224,224, got {text!r}") from None
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected three positive sizes C,H,W, got {text!r}")
    return shape


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("-c", "--config", help="YAML config: counts its Arch at Global.image_shape")
    which.add_argument("--model", action="append", help="registered model name (repeatable)")
    which.add_argument("--all", action="store_true", help="every registered model")
    p.add_argument("-o", "--override", action="append", default=[], help="config override, with -c")
    p.add_argument("--class_num", type=int, default=1000, help="classes of the head (default 1000)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--input_size", type=int, help="square input side, 3 channels (default 224)")
    size.add_argument("--input_shape", type=_shape, help="C,H,W")
    p.add_argument("--no_deploy", action="store_true", help="skip the reparameterized (deploy) counts")
    p.add_argument("--markdown", metavar="FILE",
                   help="rewrite the table between <!-- model-zoo:start/end --> markers of FILE; with --all, the "
                        "registry's tables (model-zoo, and families and weights where marked) as "
                        "tools/gen_model_files.py writes them")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.override and not args.config:
        raise ArgumentError("-o overrides apply to a config: pass -c CONFIG with them")
    if args.class_num < 1:
        raise ArgumentError(f"--class_num: expected a positive number of classes, got {args.class_num}")
    import ppcls.arch  # noqa: F401  (registers the models)
    from ppcls.engine.model_summary import summarize_model
    from ppcls.registry import MODELS
    from ppcls.utils.flops import format_table, write_markdown_table

    shape = args.input_shape or [3, args.input_size or 224, args.input_size or 224]
    if args.config:
        from ppcls.engine.config import load_config

        cfg = load_config(args.config, args.override)
        # weights do not change the counts: do not load them
        arch = {k: v for k, v in cfg["Arch"].items() if k != "pretrained"}
        if not (args.input_shape or args.input_size):
            shape = list(cfg["Global"].get("image_shape") or shape)
        archs = [arch]
    else:
        names = MODELS.names() if args.all else args.model
        for name in names:
            MODELS.get(name)  # an unknown name fails before any counting, with the closest matches
        archs = [{"name": name, "class_num": args.class_num} for name in names]
    rows = [summarize_model(arch, shape, deploy=not args.no_deploy) for arch in archs]
    print(format_table(rows))
    if args.markdown and args.all:  # the registry's tables, as tools/gen_model_files.py writes them
        from ppcls.engine.model_summary import zoo_doc
        from ppcls.utils.io import atomic_write_text

        with open(args.markdown, encoding="utf-8") as f:
            atomic_write_text(args.markdown, zoo_doc(f.read(), args.markdown))
        print(f"tables written to {args.markdown}")
    elif args.markdown:
        write_markdown_table(args.markdown, rows)
        print(f"table written to {args.markdown}")
    return 0


if __name__ == "__main__":
    run_tool(main)
