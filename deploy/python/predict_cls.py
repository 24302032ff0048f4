"""Classify images with an exported model (Paddle Inference, ONNX Runtime or OpenVINO).

python deploy/python/predict_cls.py -c deploy/configs/inference_cls.yaml \
    -o Global.inference_model_dir=DIR -o Global.infer_imgs=PATH [-o Global.backend=onnxruntime|openvino]
    [-o Global.precision=int8]
    [-o Global.enable_benchmark=True] [-o Global.save_results=results.jsonl]

Exit status: 0 done; 1 more than Global.max_bad_image_ratio of the inputs could not be read (the
results of the others are still printed and saved); 2 a mistake in the config, the files or the
installation (one line, ``error: ...``); 3 a bug (with its traceback: please report it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

if not __package__:  # run by path, not imported: "Scripts" in deploy/python/__init__.py says why
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [os.path.dirname(os.path.dirname(_here)), *(p for p in sys.path if os.path.abspath(p or ".") != _here)]

from deploy.python.errors import DeployConfigError, DeployFileError, ImageInputError, run_cli  # noqa: E402
from deploy.python.files import check_bad_images, list_named_images, write_json_lines  # noqa: E402
from deploy.python.predictor import ClsPredictor  # noqa: E402
from deploy.python.stream import predict_files  # noqa: E402
from deploy.python.utils import load_config  # noqa: E402

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs",
                              "inference_cls.yaml")
logger = logging.getLogger("deploy.predict_cls")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="deploy config (default: %(default)s)")
    p.add_argument("-o", "--override", action="append", default=[],
                   help="override a config value: -o Global.batch_size=8 (repeatable)")
    return p.parse_args(argv)


def format_result(result: dict) -> str:
    """PaddleClas's line: ``NAME:\\tclass id(s): [...], score(s): [...], label_name(s): [...]``."""
    name = result.get("file_name") or ""  # relative to the folder given (see list_named_images)
    return (f"{name}:\tclass id(s): {result['class_ids']}, score(s): {result['scores']}, "
            f"label_name(s): {result.get('label_names', [])}")


def _decodable(predictor: ClsPredictor, files: Sequence[str], count: int) -> list[bytes]:
    """The first ``count`` images that decode (for the untimed warm-up)."""
    out = []
    for path in files:
        try:
            with open(path, "rb") as f:
                data = f.read()
            predictor.preprocess(data)
        except (OSError, ImageInputError):  # skipped (and reported) by the timed run
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
    named = list_named_images(g["infer_imgs"])
    files = [path for path, _ in named]
    if predictor.benchmark and g["benchmark_warmup"] > 0:
        predictor.warmup(_decodable(predictor, files, predictor.batch_size), g["benchmark_warmup"])
    results, skipped = predict_files(predictor, files)
    names = dict(named)
    for r in results:  # the path relative to the folder given, as tools/infer.py names it
        r["file_name"] = names.get(r.get("file_name"), r.get("file_name"))
    for r in results:
        print(format_result(r), flush=False)
    sys.stdout.flush()
    if g.get("save_results"):
        try:
            write_json_lines(g["save_results"], results)
        except OSError as e:
            raise DeployFileError(f"Global.save_results: cannot write {g['save_results']}: {e.strerror or e}") from None
        print(f"results written to {g['save_results']}")
    if predictor.benchmark:
        print(predictor.benchmark_report())
    check_bad_images(skipped, len(files), g["max_bad_image_ratio"])
    return 0


def run(argv: Sequence[str] | None = None) -> None:
    """``main`` with user errors printed as one line (exit status 2; 1 for too many unreadable images) and
    anything unexpected with its traceback, as a bug (exit status 3)."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    run_cli(main, argv, tool="predict_cls.py")


if __name__ == "__main__":
    run()
