"""The classification predictor: preprocessing → a backend (Paddle Inference | ONNX Runtime | OpenVINO) → top-k.

The backends live in ``deploy/python/backends/`` (one module each, the table ``BACKENDS``);
this module finds the model files, resolves the configuration and runs the three stages.

Configuration precedence (highest first), applied by :func:`resolve_config`:

1. ``-o`` overrides on the command line;
2. the deploy config file (``deploy/configs/inference_cls.yaml`` or ``-c FILE``);
3. the model folder's ``inference.yml`` written by the export (``PreProcess``, ``PostProcess``,
   ``Global.input_shape`` / ``model_name`` / ``output``);
4. the defaults in :data:`utils.GLOBAL_KEYS` (and ``Topk`` with ``topk: 5``).

``PreProcess.transform_ops`` is a list and is replaced as a whole; ``PostProcess`` is merged
key by key (``-o PostProcess.Topk.topk=3`` keeps the model's label list).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .backends import BACKENDS, Backend, build_backend
from .backends.base import (
    INFO_FILE,
    INPUT_NAME,
    INT8_ONNX_FILE,
    ONNX_FILE,
    PADDLE_GRAPHS,
    PARAMS_FILE,
    ModelFiles,
    precision_name,
)
from .backends.onnxruntime import OnnxBackend, build_onnx_session_options
from .backends.openvino import OpenVinoBackend
from .backends.paddle import (
    TRT_CACHE_DIR,
    TRT_SHAPE_FILE,
    PaddleBackend,
    build_paddle_config,
    check_device_request,
)
from .errors import DeployConfigError, DeployFileError, ImageInputError
from .postprocess import PostProcessor
from .preprocess import Preprocessor
from .utils import (
    apply_deferred_overrides,
    check_global,
    deep_merge,
    load_yaml,
    normalize_postprocess,
)

logger = logging.getLogger(__name__)

# the backends moved to deploy/python/backends/ and stay importable from here; none of those modules
# imports its runtime (paddle, onnxruntime, openvino) before a backend is built
__all__ = [
    "BACKENDS", "INPUT_NAME", "INT8_ONNX_FILE", "ONNX_FILE", "TRT_CACHE_DIR", "TRT_SHAPE_FILE", "AutoLogBridge",
    "Backend", "ClsPredictor", "ModelFiles", "OnnxBackend", "OpenVinoBackend", "PaddleBackend", "StageTimer",
    "build_backend", "build_onnx_session_options", "build_paddle_config", "check_device_request", "find_model",
    "precision_name", "resolve_config",
]

def find_model(folder: str) -> ModelFiles:
    """Locate the graph files in ``folder``: inference.json, else inference.pdmodel, and/or inference.onnx
    (and inference_int8.onnx, made by tools/quantize.py)."""
    if not folder:
        raise DeployConfigError("Global.inference_model_dir is not set: pass -o Global.inference_model_dir=DIR")
    if not os.path.isdir(folder):
        raise DeployFileError(f"Global.inference_model_dir: no such folder: {folder}")
    graph = next((os.path.join(folder, n) for n in PADDLE_GRAPHS if os.path.isfile(os.path.join(folder, n))), None)
    params = os.path.join(folder, PARAMS_FILE)
    onnx = os.path.join(folder, ONNX_FILE)
    onnx = onnx if os.path.isfile(onnx) else None
    onnx_int8 = os.path.join(folder, INT8_ONNX_FILE)
    onnx_int8 = onnx_int8 if os.path.isfile(onnx_int8) else None
    if graph is None and onnx is None and onnx_int8 is None:
        raise DeployFileError(
            f"no inference model in {folder}: expected inference.json (Paddle 3) or inference.pdmodel "
            f"(Paddle 2) with inference.pdiparams, or inference.onnx"
        )
    if graph is not None and not os.path.isfile(params):
        raise DeployFileError(f"{graph} has no weights beside it: {params} is missing")
    info = os.path.join(folder, INFO_FILE)
    return ModelFiles(folder, graph, params if graph else None, onnx, info if os.path.isfile(info) else None,
                      onnx_int8)


def resolve_config(cfg: Mapping[str, Any]) -> dict:
    """The deploy config merged over the model's ``inference.yml`` (see the module docstring)."""
    user_global = dict(cfg.get("Global") or {})
    files = find_model(user_global.get("inference_model_dir") or "")
    info = load_yaml(files.info) if files.info else {}
    info_global = dict(info.get("Global") or {})

    g = {k: info_global[k] for k in ("model_name", "input_shape", "class_num", "output") if k in info_global}
    g.update({k: v for k, v in user_global.items() if v is not None or k not in g})
    g = check_global(g)
    if not g.get("model_name"):
        g["model_name"] = os.path.basename(os.path.normpath(files.folder))
    if files.graph is None and g["backend"] == "paddle":
        if user_global.get("backend") is not None and not user_global.get("use_onnx"):
            raise DeployFileError(
                f"Global.backend=paddle needs inference.json or inference.pdmodel in {files.folder}, "
                f"which holds only ONNX models: set -o Global.backend=onnxruntime or openvino"
            )
        g["backend"] = "onnxruntime"  # the folder holds only an ONNX model

    pre_user = cfg.get("PreProcess") or {}
    if not isinstance(pre_user, Mapping):
        raise DeployConfigError(f"PreProcess: expected a mapping with transform_ops, got {pre_user!r}")
    if pre_user.get("transform_ops"):
        pre = dict(pre_user)
        pre_source = "the deploy config"
    elif (info.get("PreProcess") or {}).get("transform_ops"):
        pre = dict(info["PreProcess"])
        pre_source = files.info
    else:
        raise DeployConfigError(
            f"no preprocessing: {files.folder} has no {INFO_FILE} with a non-empty PreProcess.transform_ops and the deploy "
            "config sets none; add PreProcess.transform_ops (the eval transforms) to the deploy config"
        )
    # `-o PreProcess.transform_ops.ResizeImage.resize_short=256` edits the list in use, wherever it came from
    pre = apply_deferred_overrides(cfg, "PreProcess", pre, pre_source)

    post_model = normalize_postprocess(info.get("PostProcess"), f"{files.info}: PostProcess")
    label_file = (post_model.get("Topk") or {}).get("class_id_map_file")
    if label_file and not os.path.isabs(label_file):  # inference.yml paths are relative to the model folder
        post_model["Topk"]["class_id_map_file"] = os.path.join(files.folder, label_file)
    post = deep_merge(post_model, normalize_postprocess(cfg.get("PostProcess"), "PostProcess"))

    return {"Global": g, "PreProcess": pre, "PostProcess": post,
            "_meta": {"files": files, "preprocess_from": pre_source}}


# ----------------------------------------------------------------------------- timing


class StageTimer:
    """Per-batch preprocess / inference / postprocess times, after warm-up."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, float, float, float, bool]] = []  # (images, pre s, infer s, post s, overlapped)
        self.overlapped_wall_s = 0.0  # wall time of the runs whose preprocessing overlapped inference
        self.workers = 1  # the most batches that ran at once (stream.predict_files with workers)

    def add(self, images: int, pre: float, infer: float, post: float, overlapped: bool = False) -> None:
        self.batches.append((images, pre, infer, post, overlapped))

    def add_wall(self, seconds: float) -> None:
        """Wall time of a prefetched run: its stages overlap, so their sum would overstate the total."""
        self.overlapped_wall_s += seconds

    def summary(self) -> dict:
        if not self.batches:
            return {"data_num": 0}
        arr = np.asarray(self.batches, dtype=np.float64)
        n_img = arr[:, 0].sum()
        sequential = arr[:, 4] == 0
        total = arr[sequential, 1:4].sum() + self.overlapped_wall_s
        return {
            "data_num": int(n_img),
            "batches": len(self.batches),
            "preprocess_time_ms_per_image": 1000 * arr[:, 1].sum() / n_img,
            "inference_time_ms_per_batch": 1000 * arr[:, 2].mean(),
            "postprocess_time_ms_per_image": 1000 * arr[:, 3].sum() / n_img,
            "total_time_s": float(total),
            "qps": float(n_img / total) if total > 0 else float("inf"),
        }


class AutoLogBridge:
    """Feeds the same stamps to ``auto_log.AutoLogger`` when that package is importable."""

    def __init__(self, auto_log: Any, predictor: ClsPredictor) -> None:
        g = predictor.config["Global"]
        info = predictor.backend.describe()
        # auto_log reads a paddle.inference.Config when it gets one; the other backends give their description
        inference_config = predictor.backend.config if predictor.backend.name == "paddle" else {
            k: info[k] for k in ("runtime_device", "ir_optim", "enable_tensorrt", "precision", "enable_mkldnn",
                                 "cpu_math_library_num_threads")}
        self.logger = auto_log.AutoLogger(
            model_name=g["model_name"], model_precision=info["precision"], batch_size=g["batch_size"],
            data_shape=list(predictor.input_shape or []), save_path=g.get("save_log_path") or "./auto_log.log",
            inference_config=inference_config, pids=os.getpid(), process_name=None,
            gpu_ids=g["gpu_id"] if g["use_gpu"] else None,
            time_keys=["preprocess_time", "inference_time", "postprocess_time"], warmup=0,
        )

    def start(self) -> None:
        self.logger.times.start()

    def stamp(self) -> None:
        self.logger.times.stamp()

    def end(self) -> None:
        self.logger.times.end(stamp=True)

    def report(self) -> None:
        self.logger.report()


def _import_auto_log() -> Any:
    try:
        import auto_log
    except ImportError:
        return None
    return auto_log


# ----------------------------------------------------------------------------- the predictor


class ClsPredictor:
    """Image files/bytes/arrays → top-k results (or raw scores) with the configured backend."""

    def __init__(self, cfg: Mapping[str, Any], _shared: tuple | None = None) -> None:
        if _shared is not None:  # clone(): same resolved config, another backend handle
            self.config, backend = _shared
        else:
            self.config = resolve_config(cfg)
            backend = None
        g = self.config["Global"]
        self.files: ModelFiles = self.config["_meta"]["files"]
        self.preprocess = Preprocessor(self.config["PreProcess"].get("transform_ops"))
        self.postprocess = PostProcessor(self.config["PostProcess"], softmax_first=g.get("output") == "logits")
        if g.get("class_num") is not None and _shared is None:  # else (PaddleClas's exports) on the first batch
            self.postprocess.topk.check_class_num(g["class_num"], f"Global.class_num ({self.files.info or 'config'})")
        shape = g.get("input_shape")
        self.input_shape: list[int] | None = [int(v) for v in shape] if shape else None
        self.batch_size = int(g["batch_size"])
        self.backend: Backend = backend if backend is not None else build_backend(self.files, g, self.input_shape)
        self.benchmark = bool(g["enable_benchmark"])
        self.timer = StageTimer()
        self._auto_log: AutoLogBridge | None = None
        self._checked_shapes: set = set()
        self._clones: list[ClsPredictor] = []
        if self.benchmark and _shared is None:  # a clone never feeds auto_log
            auto_log = _import_auto_log()
            if auto_log is not None:
                self._auto_log = AutoLogBridge(auto_log, self)

    def clone(self) -> ClsPredictor:
        """An independent predictor (own buffers and timer) sharing the weights; for one thread each.

        A clone never feeds ``auto_log``: its stamps time one batch at a time, in one thread.
        """
        return ClsPredictor({}, _shared=(self.config, self.backend.clone()))

    def worker_clones(self, count: int, warm_images: Sequence[Any] = ()) -> list[ClsPredictor]:
        """``count`` clones for worker threads, kept for later calls; in benchmark mode new ones run
        ``warm_images`` once untimed (Paddle Inference clones set up their kernels on the first run)."""
        while len(self._clones) < count:
            clone = self.clone()
            if warm_images and self.benchmark:
                try:
                    clone.warmup(warm_images, 1)
                except (ImageInputError, OSError):  # reported by the timed run itself
                    pass
            self._clones.append(clone)
        return self._clones[:count]

    def detach_auto_log(self, reason: str | None = None) -> None:
        """Stop feeding ``auto_log`` (it times one batch at a time); the own report stays."""
        if self._auto_log is not None and reason:
            logger.warning("auto_log times one batch at a time and is not used: %s; the predictor's own "
                           "benchmark report counts every batch", reason)
        self._auto_log = None

    # -- the three stages

    def _check_shape(self, batch: np.ndarray) -> None:
        shape = tuple(batch.shape[1:])
        if shape in self._checked_shapes:
            return
        if self.input_shape is not None and list(shape) != self.input_shape:
            raise DeployConfigError(
                f"preprocessing makes inputs of shape {list(shape)} but the model expects {self.input_shape} "
                f"(Global.input_shape); fix PreProcess.transform_ops (from {self.config['_meta']['preprocess_from']})"
            )
        self._checked_shapes.add(shape)

    def predict_scores(self, images: Sequence[Any]) -> np.ndarray:
        """Raw model outputs (probabilities for the default export) for a batch of images."""
        return self.backend.run(self.prepare(images))

    def prepare(self, images: Sequence[Any], preprocessor: Preprocessor | None = None) -> np.ndarray:
        """Preprocess a batch into ``preprocessor``'s reused buffer (the predictor's own by default)."""
        batch = (preprocessor or self.preprocess).batch([_load(x) for x in images])
        self._check_shape(batch)
        return batch

    def prepare_one(self, image: Any) -> np.ndarray:
        """One image → a new model-input array (no shared buffer: safe from any thread)."""
        array = self.preprocess(_load(image))
        self._check_shape(array[None])
        return array

    def spare_preprocessor(self) -> Preprocessor:
        """Another preprocessor with the same ops and its own buffer (for preparing batches ahead)."""
        return Preprocessor(self.config["PreProcess"].get("transform_ops"))

    def predict(self, images: Sequence[Any], file_names: Sequence[str] | None = None) -> list[dict]:
        """Top-k dicts (class_ids, scores, label_names, file_name) for a batch of images."""
        if file_names is None:
            file_names = [x if isinstance(x, str) else None for x in images]
            if all(n is None for n in file_names):
                file_names = None
        self.begin_batch()
        t0 = time.perf_counter()
        batch = self.prepare(images)
        return self.run_prepared(batch, file_names, time.perf_counter() - t0)

    def begin_batch(self) -> None:
        """Mark the start of a batch for auto_log (before its preprocessing, or the wait for it)."""
        if self.benchmark and self._auto_log is not None:
            self._auto_log.start()

    def run_prepared(self, batch: np.ndarray, file_names: Sequence[str] | None, pre_seconds: float,
                     overlapped: bool = False) -> list[dict]:
        """Inference and top-k for a preprocessed batch; ``pre_seconds`` is what preparing it took
        (``overlapped``: on another thread while earlier batches ran)."""
        log = self._auto_log if self.benchmark else None
        if log:
            log.stamp()
        t1 = time.perf_counter()
        scores = self.backend.run(batch)
        t2 = time.perf_counter()
        if log:
            log.stamp()
        results = self.postprocess(scores, file_names)
        t3 = time.perf_counter()
        if log:
            log.end()
        if self.benchmark:
            self.timer.add(len(batch), pre_seconds, t2 - t1, t3 - t2, overlapped)
        return results

    def warmup(self, images: Sequence[Any], iterations: int) -> None:
        """Run ``images`` ``iterations`` times untimed (engine and cache set-up)."""
        data = [_load(x) for x in images]
        if not data:
            return
        for _ in range(max(0, iterations)):
            self.backend.run(self.preprocess.batch(data))

    # -- reporting

    def benchmark_summary(self) -> dict:
        g = self.config["Global"]
        info = self.backend.describe()
        return {"model_name": g["model_name"], **info, "batch_size": self.batch_size, "workers": self.timer.workers,
                "input_shape": self.input_shape, **self.timer.summary()}

    def benchmark_report(self) -> str:
        """auto_log's fields as text (also sent to auto_log's own report when it is installed)."""
        if self._auto_log is not None:
            self._auto_log.report()
        s = self.benchmark_summary()
        lines = [
            "----------------------- Model info ----------------------",
            f" model_name: {s['model_name']}",
            f" precision: {s['precision']}",
            f" backend: {s['backend']} ({s['model_file']})",
            "----------------------- Data info -----------------------",
            f" batch_size: {s['batch_size']}",
            f" input_shape: {s['input_shape']}",
            f" data_num: {s['data_num']}",
            "----------------------- Conf info -----------------------",
            f" runtime_device: {s['runtime_device']}",
            f" ir_optim: {s['ir_optim']}",
            f" enable_tensorrt: {s['enable_tensorrt']}",
            f" enable_mkldnn: {s['enable_mkldnn']}",
            f" cpu_math_library_num_threads: {s['cpu_math_library_num_threads']}",
            f" workers: {s['workers']}",
            "----------------------- Perf info -----------------------",
        ]
        if s["data_num"]:
            lines += [
                f" total time spent(s): {s['total_time_s']:.4f}",
                f" preprocess_time(ms): {s['preprocess_time_ms_per_image']:.4f} per image, "
                f"inference_time(ms): {s['inference_time_ms_per_batch']:.4f} per batch, "
                f"postprocess_time(ms): {s['postprocess_time_ms_per_image']:.4f} per image",
                f" QPS: {s['qps']:.2f}",
            ]
        else:
            lines.append(" no timed batches")
        return "\n".join(lines)


def _load(item: Any) -> Any:
    """A path is read as bytes; bytes and arrays pass through."""
    if isinstance(item, str):
        with open(item, "rb") as f:
            return f.read()
    return item
