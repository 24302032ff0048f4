"""``tools/quantize.py``: export to ONNX, then INT8 post-training quantization with ONNX Runtime.

The ONNX work itself (calibration reader, ``quantize_static``, the atomic writes, the
``inference.yml`` update, comparing two models) lives in ``deploy/python/quantize.py``, which runs
without ppcls; this module finds the images from the config and runs the steps in order. Deploy's
errors reach the user as they are: ``DeployUserError`` and ppcls's ``UserError`` share one base
(``deploy/python/errors.py``), so ``tools/quantize.py`` reports either as one line (exit status 2).

1. the arguments are checked and the calibration images listed before anything is written;
2. the model is exported as ``-o Global.export_type=onnx`` does (:func:`ppcls.engine.runner.export_config`),
   into a staging folder beside ``Global.save_inference_dir``;
3. the calibration images go through the deploy preprocessing of that export (``PreProcess`` of
   its ``inference.yml``), ``inference_int8.onnx`` is written and ``inference.yml`` updated;
4. the staging folder replaces ``Global.save_inference_dir`` as a whole: on any failure the earlier
   folder (its fp32 and INT8 models, its inference.yml) is left as it was and nothing half-written remains.

Calibration images come from ``--calib_list FILE`` (PaddleClas list; a relative path is looked up
under ``DataLoader.Train.dataset.image_root``, as ppcls's datasets do, then beside the list),
``--calib_dir DIR`` (images under it, recursively) or by default ``DataLoader.Train``'s data set
(its list, or its class folders; ``DataLoader.prepare`` is run first, so the quick start on digits
works on a fresh checkout, and ``Global.data_dir`` is honoured as everywhere).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deploy.python.predictor import INT8_ONNX_FILE, ONNX_FILE
from deploy.python.quantize import (
    add_eval_backend_argument,
    add_quant_arguments,
    check_eval_backend,
    compare,
    format_comparison,
    list_images,
    load_calibration,
    options_from_args,
    preprocess_files,
    quantize_folder,
    read_image_list,
    read_info,
    require_onnxruntime,
)
from ppcls.data.dataset import read_file_list, scan_class_folders
from ppcls.data.prepare import prepare_dataset
from ppcls.utils.errors import ArgumentError, ConfigError, DataError

from .export import _replace_dir
from .runner import export_config

logger = logging.getLogger(__name__)


@dataclass
class QuantizeResult:
    """What ``tools/quantize.py`` prints: where the models are, the settings, the eval report."""

    model_dir: str
    int8_path: str
    settings: dict
    report: str | None = None


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The quantization flags (shared with ``deploy/python/quantize.py``) and ``--eval``."""
    add_quant_arguments(p)
    p.add_argument("--eval", action="store_true",
                   help="compare the top-1 of the fp32 and INT8 models on DataLoader.Eval (overall and per class)")
    p.add_argument("--eval_threads", type=int, default=2, help="runtime threads for --eval (default 2)")
    add_eval_backend_argument(p)
    return p


def _dataset_section(cfg: Mapping, mode: str) -> Mapping:
    ds = (((cfg.get("DataLoader") or {}).get(mode) or {}).get("dataset")) or {}
    if not isinstance(ds, Mapping) or not ds.get("image_root"):
        raise ConfigError(f"DataLoader.{mode}.dataset.image_root is not set: it names the {mode.lower()} images "
                          f"({'or pass --calib_dir / --calib_list' if mode == 'Train' else 'needed by --eval'})")
    return ds


def dataset_files(cfg: Mapping, mode: str) -> tuple[list[str], list[int], str]:
    """(paths, labels, description) of ``DataLoader.<mode>``'s data set, resolved as its dataset does."""
    ds = _dataset_section(cfg, mode)
    root = str(ds["image_root"])
    if ds.get("cls_label_path"):
        paths, labels = read_file_list(str(ds["cls_label_path"]), root, None, ds.get("delimiter"), check_files=False)
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DataError(f"DataLoader.{mode}.dataset.cls_label_path: {ds['cls_label_path']} names {len(missing)} "
                            f"image(s) that do not exist under image_root {root}: {shown}")
        return paths, labels, f"DataLoader.{mode} list {ds['cls_label_path']}"
    paths, labels, _ = scan_class_folders(root)
    return paths, labels, f"DataLoader.{mode} class folders {root}"


def calibration_files(cfg: dict, args: argparse.Namespace) -> tuple[list[str], list[Any], str]:
    """(paths, groups for spreading, description) of the calibration images the arguments name."""
    if args.calib_list:
        roots = []
        ds = ((cfg.get("DataLoader") or {}).get("Train") or {}).get("dataset") or {}
        if isinstance(ds, Mapping) and ds.get("image_root"):
            roots.append(str(ds["image_root"]))
        roots.append(os.path.dirname(os.path.abspath(args.calib_list)))
        paths, groups = read_image_list(args.calib_list, roots)
        return paths, groups, f"--calib_list {args.calib_list}"
    if args.calib_dir:
        paths, groups = list_images(args.calib_dir)
        return paths, groups, f"--calib_dir {args.calib_dir}"
    prepare_dataset((cfg.get("DataLoader") or {}).get("prepare"))  # the quick start writes its data on first use
    paths, labels, source = dataset_files(cfg, "Train")
    return paths, labels, source


def _class_names(model_dir: str, info: Mapping) -> dict[int, str] | None:
    label_file = ((info.get("PostProcess") or {}).get("Topk") or {}).get("class_id_map_file")
    if not label_file:
        return None
    path = label_file if os.path.isabs(label_file) else os.path.join(model_dir, label_file)
    names: dict[int, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.strip().split(None, 1)
                if parts and parts[0].isdigit():
                    names[int(parts[0])] = parts[1] if len(parts) > 1 else parts[0]
    except OSError:
        return None
    return names or None


def evaluate_int8(cfg: Mapping, model_dir: str, threads: int = 2, backend: str = "onnxruntime") -> str:
    """The fp32 vs INT8 report on ``DataLoader.Eval`` through the deploy preprocessing, run on ``backend``."""
    paths, labels, source = dataset_files(cfg, "Eval")
    info = read_info(model_dir)
    arrays, kept, _ = preprocess_files(paths, info["PreProcess"]["transform_ops"], source)
    c = compare(os.path.join(model_dir, ONNX_FILE), os.path.join(model_dir, INT8_ONNX_FILE), arrays,
                [labels[i] for i in kept], threads, backend)
    return format_comparison(c, len(kept), _class_names(model_dir, info), backend=backend)


def quantize_config(cfg: dict, args: argparse.Namespace, quantize: Callable[..., Any] | None = None) -> QuantizeResult:
    """``tools/quantize.py``: export (ONNX), quantize, and with ``args.eval`` compare on ``DataLoader.Eval``."""
    options = options_from_args(args)
    require_onnxruntime()
    paths, groups, source = calibration_files(cfg, args)  # before anything is written
    if args.eval:
        dataset_files(cfg, "Eval")
    if args.eval_threads < 1:
        raise ArgumentError(f"--eval_threads: expected a positive integer, got {args.eval_threads}")
    eval_backend = check_eval_backend(args.eval_backend) if args.eval else "onnxruntime"

    g = cfg["Global"]
    target = os.path.abspath(str(g.get("save_inference_dir") or "./inference"))
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.quantize.", dir=parent)
    try:
        run_cfg = copy.deepcopy(cfg)
        run_cfg["Global"]["save_inference_dir"] = os.path.join(staging, "model")
        run_cfg["Global"]["export_type"] = "onnx"
        model_dir = export_config(run_cfg)
        calib = load_calibration(model_dir, paths, groups, args.calib_num, source)
        logger.info("calibrating on %d image(s) from %s (%s)", len(calib.arrays), source, options.calib_method)
        settings = quantize_folder(model_dir, calib, options, quantize)
        report = evaluate_int8(run_cfg, model_dir, args.eval_threads, eval_backend) if args.eval else None
        _replace_dir(model_dir, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return QuantizeResult(target, os.path.join(target, INT8_ONNX_FILE), settings, report)
