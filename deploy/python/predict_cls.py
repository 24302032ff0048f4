"""Classify images with an exported model (Paddle Inference or ONNX Runtime).

python deploy/python/predict_cls.py -c deploy/configs/inference_cls.yaml \
    -o Global.inference_model_dir=DIR -o Global.infer_imgs=PATH [-o Global.backend=onnxruntime]
    [-o Global.enable_benchmark=True] [-o Global.save_results=results.jsonl]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

# the folder holding deploy/ (the repository, or wherever deploy/ was copied to) makes `deploy` importable;
# this script's own folder is taken off the path so that utils.py & co. do not shadow top-level modules
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _HERE:
    sys.path.pop(0)
_ROOT = os.path.dirname(os.path.dirname(_HERE))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from deploy.python.predictor import ClsPredictor  # noqa: E402
from deploy.python.preprocess import ImageDecodeError  # noqa: E402
from deploy.python.stream import predict_files  # noqa: E402
from deploy.python.utils import DeployConfigError, list_images, load_config, write_json_lines  # noqa: E402

DEFAULT_CONFIG = os.path.join(_ROOT, "deploy", "configs", "inference_cls.yaml")
USER_ERRORS = (DeployConfigError, ValueError, KeyError, FileNotFoundError, RuntimeError, ImportError)
logger = logging.getLogger("deploy.predict_cls")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="deploy config (default: %(default)s)")
    p.add_argument("-o", "--override", action="append", default=[],
                   help="override a config value: -o Global.batch_size=8 (repeatable)")
    return p.parse_args(argv)


def format_result(result: dict) -> str:
    """PaddleClas's line: ``NAME:\\tclass id(s): [...], score(s): [...], label_name(s): [...]``."""
    name = os.path.basename(result.get("file_name") or "")
    return (f"{name}:\tclass id(s): {result['class_ids']}, score(s): {result['scores']}, "
            f"label_name(s): {result.get('label_names', [])}")


def _decodable(predictor: ClsPredictor, files: Sequence[str], count: int) -> list[bytes]:
    """The first ``count`` images that decode (for the untimed warm-up)."""
    out = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        try:
            predictor.preprocess(data)
        except ImageDecodeError:
            continue
        out.append(data)
        if len(out) == count:
            break
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = load_config(args.config, args.override)
    predictor = ClsPredictor(cfg)
    g = predictor.config["Global"]
    if not g.get("infer_imgs"):
        raise DeployConfigError("Global.infer_imgs is not set: pass -o Global.infer_imgs=<image file or folder>")
    files = list_images(g["infer_imgs"])
    if predictor.benchmark and g["benchmark_warmup"] > 0:
        predictor.warmup(_decodable(predictor, files, predictor.batch_size), g["benchmark_warmup"])
    results, skipped = predict_files(predictor, files)
    for r in results:
        print(format_result(r), flush=False)
    sys.stdout.flush()
    if g.get("save_results"):
        write_json_lines(g["save_results"], results)
        print(f"results written to {g['save_results']}")
    if predictor.benchmark:
        print(predictor.benchmark_report())
    if skipped:
        print(f"skipped {len(skipped)} unreadable image(s): {', '.join(skipped)}", file=sys.stderr)
        return 1 if not results else 0
    return 0


def run(argv: Sequence[str] | None = None) -> None:
    """``main`` with user errors printed as one line (exit status 2) instead of a traceback."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    try:
        code = main(argv)
    except KeyboardInterrupt:
        sys.exit(130)
    except USER_ERRORS as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {type(e).__name__}: {msg}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code)


if __name__ == "__main__":
    run()
