"""Paddle Inference: the exported ``inference.json`` (Paddle 3) or ``inference.pdmodel`` (Paddle 2).

Precision fp32 on the CPU or the GPU, fp16 on the GPU (TensorRT half precision, else GPU mixed
precision); int8 runs the quantized ONNX model with the other backends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DeployConfigError, DeployEnvironmentError, ModelLoadError, bounded
from .base import INPUT_NAME, BackendDescription, ModelFiles, precision_name

TRT_SHAPE_FILE = "shape_range_info.pbtxt"
TRT_CACHE_DIR = "_opt_cache"


def check_precision(g: Mapping[str, Any]) -> None:
    """int8 is the ONNX model quantized by tools/quantize.py, which Paddle Inference does not run."""
    if precision_name(g) == "int8":
        raise DeployConfigError(
            "Global.precision=int8 runs the ONNX model quantized by tools/quantize.py: use "
            "-o Global.backend=onnxruntime or openvino"
        )


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
            + ", ".join(f"Global.{k}=False" + (" (precision fp32)" if k == "use_fp16" else "") for k in wanted)
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
    check_precision(g)
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
        check_precision(g)  # before importing paddle: the advice does not need it
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

    def describe(self) -> BackendDescription:
        c = self.config
        return {"backend": self.name, "runtime_device": "gpu" if c.use_gpu() else "cpu",
                "ir_optim": c.ir_optim(), "enable_tensorrt": c.tensorrt_engine_enabled(),
                "enable_mkldnn": c.mkldnn_enabled(), "cpu_math_library_num_threads": c.cpu_math_library_num_threads(),
                "precision": precision_name(self.g), "model_file": os.path.basename(self.files.graph or "")}
