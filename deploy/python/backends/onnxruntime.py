"""ONNX Runtime: the folder's ``inference.onnx`` (fp32) or ``inference_int8.onnx`` (int8).

CPU execution provider (CUDA when asked for and installed), ``intra_op_num_threads =
cpu_num_threads``, one inter-op thread, sequential execution, graph optimisation level ALL.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DeployEnvironmentError, MissingPackageError, ModelLoadError, bounded
from .base import BackendDescription, ModelFiles, onnx_model_file, precision_name, refuse_gpu_only_options


def build_onnx_session_options(g: Mapping[str, Any]) -> Any:
    """Lean CPU session options: all graph optimisations, intra-op threads, sequential execution.

    ``Global.ort_allow_spinning`` (default True) lets the worker threads busy-wait between
    operators, the fastest on an idle machine; on a host shared with other busy processes
    spinning competes with them and the median latency gets worse, so it can be turned off
    (docs/benchmarks.md has the figures).
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
    """ONNX Runtime on the inference.onnx (or, precision int8, inference_int8.onnx) of the model folder."""

    name = "onnxruntime"

    def __init__(self, files: ModelFiles, g: Mapping[str, Any], input_shape: Sequence[int] | None = None,
                 session: Any = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingPackageError(
                "Global.backend=onnxruntime needs the onnxruntime package: pip install onnxruntime") from None
        self.files = files
        self.g = dict(g)
        self.precision = precision_name(g)
        refuse_gpu_only_options(g, self.name)
        self.model_file = onnx_model_file(files, g, self.name)
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
                session = ort.InferenceSession(self.model_file, sess_options=build_onnx_session_options(g),
                                               providers=providers)
            except Exception as e:  # a truncated or foreign .onnx file: the user's files, not a bug here
                raise ModelLoadError(
                    f"ONNX Runtime cannot load the model {self.model_file}: {bounded(str(e).strip(), 300, 2)}") from e
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

    def describe(self) -> BackendDescription:
        return {"backend": self.name, "runtime_device": "gpu" if self.g["use_gpu"] else "cpu",
                "ir_optim": bool(self.g["ir_optim"]), "enable_tensorrt": False, "enable_mkldnn": False,
                "cpu_math_library_num_threads": int(self.g["cpu_num_threads"]), "precision": self.precision,
                "model_file": os.path.basename(self.model_file)}
