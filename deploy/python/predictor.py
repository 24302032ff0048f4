"""The classification predictor: preprocessing → Paddle Inference | ONNX Runtime → top-k.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import (
    DeployConfigError,
    DeployEnvironmentError,
    DeployFileError,
    ImageInputError,
    MissingPackageError,
    ModelLoadError,
    bounded,
)
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

PADDLE_GRAPHS = ("inference.json", "inference.pdmodel")  # Paddle 3 (PIR), Paddle 2
PARAMS_FILE = "inference.pdiparams"
ONNX_FILE = "inference.onnx"
INT8_ONNX_FILE = "inference_int8.onnx"  # written beside inference.onnx by tools/quantize.py
INFO_FILE = "inference.yml"
TRT_SHAPE_FILE = "shape_range_info.pbtxt"
TRT_CACHE_DIR = "_opt_cache"
INPUT_NAME = "x"  # the graph input name written by the export (and by PaddleClas)


@dataclass
class ModelFiles:
    """What an exported model folder holds."""

    folder: str
    graph: str | None  # inference.json or inference.pdmodel
    params: str | None
    onnx: str | None
    info: str | None  # inference.yml

    @property
    def layout(self) -> str:
        """'paddle3' (inference.json), 'paddle2' (inference.pdmodel) or 'onnx' (only an .onnx)."""
        if self.graph is None:
            return "onnx"
        return "paddle3" if self.graph.endswith(".json") else "paddle2"


def find_model(folder: str) -> ModelFiles:
    """Locate the graph files in ``folder``: inference.json, else inference.pdmodel, and/or inference.onnx."""
    if not folder:
        raise DeployConfigError("Global.inference_model_dir is not set: pass -o Global.inference_model_dir=DIR")
    if not os.path.isdir(folder):
        raise DeployFileError(f"Global.inference_model_dir: no such folder: {folder}")
    graph = next((os.path.join(folder, n) for n in PADDLE_GRAPHS if os.path.isfile(os.path.join(folder, n))), None)
    params = os.path.join(folder, PARAMS_FILE)
    onnx = os.path.join(folder, ONNX_FILE)
    onnx = onnx if os.path.isfile(onnx) else None
    if graph is None and onnx is None:
        raise DeployFileError(
            f"no inference model in {folder}: expected inference.json (Paddle 3) or inference.pdmodel "
            f"(Paddle 2) with inference.pdiparams, or inference.onnx"
        )
    if graph is not None and not os.path.isfile(params):
        raise DeployFileError(f"{graph} has no weights beside it: {params} is missing")
    info = os.path.join(folder, INFO_FILE)
    return ModelFiles(folder, graph, params if graph else None, onnx, info if os.path.isfile(info) else None)


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
                f"which holds only {ONNX_FILE}: set -o Global.backend=onnxruntime"
            )
        g["backend"] = "onnxruntime"  # the folder holds only an ONNX model
    if g["backend"] == "onnxruntime" and files.onnx is None:
        raise DeployFileError(
            f"Global.backend=onnxruntime needs {os.path.join(files.folder, ONNX_FILE)}: export with "
            "-o Global.export_type=onnx"
        )

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


# ----------------------------------------------------------------------------- backends


def precision_name(g: Mapping[str, Any]) -> str:
    return "fp16" if g.get("use_fp16") else "fp32"


def check_device_request(g: Mapping[str, Any], compiled_with_cuda: Callable[[], bool] | None = None) -> None:
    """GPU options on a CPU-only Paddle build, or inconsistent GPU options, stop here."""
    wanted = [k for k in ("use_gpu", "use_tensorrt", "use_fp16") if g.get(k)]
    if not wanted:
        return
    if compiled_with_cuda is None:
        import paddle

        compiled_with_cuda = paddle.device.is_compiled_with_cuda
    if not compiled_with_cuda():
        import paddle

        raise DeployEnvironmentError(
            f"Global.{wanted[0]}=True needs a GPU build of Paddle, but this one (paddle {paddle.__version__}) is "
            "CPU-only (paddle.device.is_compiled_with_cuda() is False): install paddlepaddle-gpu, or set "
            + ", ".join(f"Global.{k}=False" for k in wanted)
        )
    if not g.get("use_gpu"):
        raise DeployConfigError(
            f"Global.{wanted[0]}=True is a GPU option: set Global.use_gpu=True as well (it would not be used on the CPU)"
        )


def build_paddle_config(files: ModelFiles, g: Mapping[str, Any], input_shape: Sequence[int] | None,
                        config_cls: Any = None, compiled_with_cuda: Callable[[], bool] | None = None) -> Any:
    """A ``paddle.inference.Config`` reflecting every flag of ``Global``.

    ``config_cls`` and ``compiled_with_cuda`` exist for tests (a recording fake config).
    """
    check_device_request(g, compiled_with_cuda)
    from paddle.inference import PrecisionType

    if config_cls is None:
        from paddle.inference import Config as config_cls  # noqa: N813
    config = config_cls(files.graph, files.params)
    if g["use_gpu"]:
        half = g["use_fp16"]
        # without TensorRT fp16 runs as GPU mixed precision; with TensorRT the engine's precision decides
        config.enable_use_gpu(int(g["gpu_mem"]), int(g["gpu_id"]),
                              PrecisionType.Half if half and not g["use_tensorrt"] else PrecisionType.Float32)
        shape_file = g.get("trt_shape_range_file") or os.path.join(files.folder, TRT_SHAPE_FILE)
        if g["collect_trt_shape_range"]:
            config.collect_shape_range_info(shape_file)
        if g["use_tensorrt"]:
            config.enable_tensorrt_engine(
                workspace_size=1 << 30,
                max_batch_size=int(g["batch_size"]),
                min_subgraph_size=int(g["min_subgraph_size"]),
                precision_mode=PrecisionType.Half if half else PrecisionType.Float32,
                use_static=True,  # serialise the engine into the cache dir below
                use_calib_mode=False,
            )
            config.set_optim_cache_dir(os.path.join(files.folder, TRT_CACHE_DIR))
            if os.path.isfile(shape_file):
                config.enable_tuned_tensorrt_dynamic_shape(shape_file, True)
            else:
                if not input_shape:
                    raise DeployConfigError(
                        "Global.use_tensorrt: the dynamic shape range needs Global.input_shape ([C, H, W]) or a "
                        f"collected shape file ({shape_file}; run once with -o Global.collect_trt_shape_range=True)"
                    )
                c, h, w = (int(v) for v in input_shape)
                bs = int(g["batch_size"])
                config.set_trt_dynamic_shape_info(
                    {INPUT_NAME: [1, c, h, w]}, {INPUT_NAME: [bs, c, h, w]}, {INPUT_NAME: [bs, c, h, w]}
                )
    else:
        config.disable_gpu()
        if g["enable_mkldnn"]:
            config.enable_mkldnn()
            config.set_mkldnn_cache_capacity(10)  # bounded per-shape cache (PaddleClas does the same)
        else:
            config.disable_mkldnn()  # Paddle 3 turns oneDNN on by default: off must be said explicitly
        config.set_cpu_math_library_num_threads(int(g["cpu_num_threads"]))
    if g["enable_profile"]:
        config.enable_profile()
    config.disable_glog_info()
    config.switch_ir_optim(bool(g["ir_optim"]))
    if files.layout == "paddle2":
        # Paddle 3.3 fails in create_predictor ("memory_optimize_pass" not found) with this on a PIR
        # (inference.json) model; on the Paddle 2 layout it works and lowers peak memory.
        config.enable_memory_optim()
    if not g["use_gpu"] and not g["enable_mkldnn"] and config.mkldnn_enabled():
        raise RuntimeError("Global.enable_mkldnn=False but the Paddle Inference config still has oneDNN enabled")
    return config


class PaddleBackend:
    """Paddle Inference with zero-copy input/output handles."""

    name = "paddle"

    def __init__(self, files: ModelFiles, g: Mapping[str, Any], input_shape: Sequence[int] | None,
                 predictor: Any = None, config: Any = None) -> None:
        from paddle.inference import create_predictor

        self.files = files
        self.g = dict(g)
        self.config = config if config is not None else build_paddle_config(files, g, input_shape)
        if predictor is None:
            try:
                predictor = create_predictor(self.config)
            except Exception as e:  # a truncated or foreign model file: the user's files, not a bug here
                raise ModelLoadError(
                    f"Paddle Inference cannot load the model {files.graph} + {files.params}: "
                    f"{bounded(str(e).strip(), 300, 2)}"
                ) from e
        self.predictor = predictor
        self.input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self.output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])

    def run(self, batch: np.ndarray) -> np.ndarray:
        self.input.reshape(list(batch.shape))
        self.input.copy_from_cpu(batch)
        self.predictor.run()
        return self.output.copy_to_cpu()

    def clone(self) -> PaddleBackend:
        """Another predictor sharing the weights (one per thread)."""
        return PaddleBackend(self.files, self.g, None, predictor=self.predictor.clone(), config=self.config)

    def describe(self) -> dict:
        c = self.config
        return {"backend": "paddle", "runtime_device": "gpu" if c.use_gpu() else "cpu",
                "ir_optim": c.ir_optim(), "enable_tensorrt": c.tensorrt_engine_enabled(),
                "enable_mkldnn": c.mkldnn_enabled(), "cpu_math_library_num_threads": c.cpu_math_library_num_threads(),
                "precision": precision_name(self.g), "model_file": os.path.basename(self.files.graph or "")}


def build_onnx_session_options(g: Mapping[str, Any]) -> Any:
    """Lean CPU session options: all graph optimisations, intra-op threads, sequential execution.

    ``Global.ort_allow_spinning`` (default True) lets the worker threads busy-wait between
    operators, the fastest on an idle machine; on a host shared with other busy processes
    spinning competes with them (median latency 2-3x worse under load here), so it can be turned
    off (docs/benchmarks.md).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(g["cpu_num_threads"])
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if g.get("ort_allow_spinning") else "0")
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if g["ir_optim"]
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.log_severity_level = 3
    if g["enable_profile"]:
        so.enable_profiling = True
    return so


class OnnxBackend:
    """ONNX Runtime on the inference.onnx of the model folder."""

    name = "onnxruntime"

    def __init__(self, files: ModelFiles, g: Mapping[str, Any], session: Any = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingPackageError(
                "Global.backend=onnxruntime needs the onnxruntime package: pip install onnxruntime") from None
        self.files = files
        self.g = dict(g)
        if g["use_fp16"] or g["use_tensorrt"]:
            bad = "use_fp16" if g["use_fp16"] else "use_tensorrt"
            raise DeployConfigError(f"Global.{bad}=True is not supported by the onnxruntime backend; use backend paddle")
        providers = ["CPUExecutionProvider"]
        if g["use_gpu"]:
            available = ort.get_available_providers()
            if "CUDAExecutionProvider" not in available:
                raise DeployEnvironmentError(
                    "Global.use_gpu=True with backend onnxruntime needs onnxruntime-gpu (CUDAExecutionProvider); "
                    f"this onnxruntime offers {', '.join(available)}"
                )
            providers = [("CUDAExecutionProvider", {"device_id": int(g["gpu_id"])}), "CPUExecutionProvider"]
        if session is None:
            try:
                session = ort.InferenceSession(files.onnx, sess_options=build_onnx_session_options(g),
                                               providers=providers)
            except Exception as e:  # a truncated or foreign .onnx file: the user's files, not a bug here
                raise ModelLoadError(
                    f"ONNX Runtime cannot load the model {files.onnx}: {bounded(str(e).strip(), 300, 2)}") from e
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_names = [session.get_outputs()[0].name]

    def run(self, batch: np.ndarray) -> np.ndarray:
        if batch.dtype != np.float32:
            batch = batch.astype(np.float32)
        return self.session.run(self.output_names, {self.input_name: batch})[0]

    def clone(self) -> OnnxBackend:
        """Sessions are thread-safe for run(): share it."""
        return OnnxBackend(self.files, self.g, session=self.session)

    def describe(self) -> dict:
        return {"backend": "onnxruntime", "runtime_device": "gpu" if self.g["use_gpu"] else "cpu",
                "ir_optim": bool(self.g["ir_optim"]), "enable_tensorrt": False, "enable_mkldnn": False,
                "cpu_math_library_num_threads": int(self.g["cpu_num_threads"]), "precision": "fp32",
                "model_file": os.path.basename(self.files.onnx or "")}


def build_backend(files: ModelFiles, g: Mapping[str, Any], input_shape: Sequence[int] | None) -> Any:
    if g["backend"] == "onnxruntime":
        return OnnxBackend(files, g)
    return PaddleBackend(files, g, input_shape)


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
        inference_config = predictor.backend.config if predictor.backend.name == "paddle" else {
            k: info[k] for k in ("runtime_device", "ir_optim", "enable_tensorrt", "precision", "enable_mkldnn",
                                 "cpu_math_library_num_threads")}
        self.logger = auto_log.AutoLogger(
            model_name=g["model_name"], model_precision=precision_name(g), batch_size=g["batch_size"],
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
        self.backend = backend if backend is not None else build_backend(self.files, g, self.input_shape)
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
