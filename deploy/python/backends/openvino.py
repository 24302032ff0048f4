"""OpenVINO on the CPU: the folder's ``inference.onnx`` (fp32) or ``inference_int8.onnx`` (int8).

OpenVINO cannot read Paddle 3's ``inference.json``, so it reads the ONNX export. The model is
compiled once per process and shared by every handle (``clone()`` adds an infer request on the
same compiled model, usable from another thread at the same time):

* ``INFERENCE_NUM_THREADS = cpu_num_threads`` per run, ``PERFORMANCE_HINT = LATENCY`` (one
  stream) for one worker; with ``Global.workers`` N > 1, N streams of ``cpu_num_threads`` threads
  each, so that N handles really run at once (on one stream their runs take turns);
* ``INFERENCE_PRECISION_HINT = f32``: on CPUs with bf16 units OpenVINO would otherwise run
  the float parts in bfloat16 (scores off by 1e-2); an int8 model's quantized operators still run
  in int8;
* the model is compiled with a static batch of ``Global.batch_size`` (faster than a free batch
  dimension); any other
  batch size (the HTTP service sends 1..max_batch, a folder's last batch is smaller) runs on a
  second compilation with a free batch dimension, shared too: made at once when ``batch_size`` > 1,
  else on the first batch of another size (only the HTTP service's ``--max_batch`` sends those;
  that one request waits for the compilation).

The ONNX file goes through :func:`deploy.python.onnx_graph.fuse_hardswish` first (in memory): the
exported ``HardSigmoid`` + ``Mul`` become one ``HardSwish``, which OpenVINO fuses into the
convolution before it (in an int8 model too); that module says why and what it changes.

``ir_optim`` is always on (OpenVINO always transforms the graph; describe() says so);
``enable_mkldnn`` is Paddle Inference's switch and is reported False (OpenVINO's CPU plugin uses
its own kernels either way); ``enable_profile`` turns on OpenVINO's per-operator counters.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DeployEnvironmentError, MissingPackageError, ModelLoadError, bounded
from ..onnx_graph import fuse_hardswish
from .base import BackendDescription, ModelFiles, onnx_model_file, precision_name, refuse_gpu_only_options

logger = logging.getLogger(__name__)
DEVICE = "CPU"


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError:
        raise MissingPackageError(
            "Global.backend=openvino needs the openvino package: pip install openvino") from None
    return openvino


def read_onnx(core: Any, path: str) -> Any:
    """``path`` as an OpenVINO model, after :func:`~deploy.python.onnx_graph.fuse_hardswish` (in memory)."""
    try:
        import onnx
    except ImportError:  # the rewrite only makes it faster
        logger.warning("the onnx package is missing: OpenVINO reads %s as it is (pip install onnx runs "
                       "HardSwish models faster)", path)
        return core.read_model(path)
    model = onnx.load(path)
    return core.read_model(model.SerializeToString()) if fuse_hardswish(model) else core.read_model(path)


def build_openvino_config(g: Mapping[str, Any]) -> dict[str, Any]:
    """The compile properties for ``Global`` (see the module docstring)."""
    threads = int(g["cpu_num_threads"])
    workers = max(1, int(g.get("workers") or 1))
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if workers == 1:
        config.update({"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads})
    else:  # INFERENCE_NUM_THREADS is the total over the streams
        config.update({"NUM_STREAMS": workers, "INFERENCE_NUM_THREADS": threads * workers})
    if g.get("enable_profile"):
        config["PERF_COUNT"] = True
    return config


class _SharedModel:
    """The compiled model(s) every handle shares: static at ``Global.batch_size``, plus, compiled on the first
    batch of another size, one with a free batch dimension."""

    def __init__(self, core: Any, model: Any, config: Mapping[str, Any], batch_size: int, ov: Any) -> None:
        self.core, self.config, self.lock = core, dict(config), threading.Lock()
        shape = model.inputs[0].get_partial_shape()
        if shape.rank.is_dynamic or len(shape) < 1:
            raise ValueError(f"the model input has no batch dimension (shape {shape})")
        dims = list(shape)[1:]
        self.flexible = model.clone()
        self.flexible.reshape({self.flexible.inputs[0]: ov.PartialShape([ov.Dimension(), *dims])})
        self.compiled: dict[int | None, Any] = {}
        if all(d.is_static for d in dims):  # a static shape runs faster (see the module docstring)
            model.reshape({model.inputs[0]: ov.PartialShape([batch_size, *dims])})
            self.static_batch: int | None = batch_size
            self.compiled[batch_size] = core.compile_model(model, DEVICE, self.config)
            if batch_size > 1:  # a folder's last batch is smaller: compile now rather than inside a timed run
                self.compiled[None] = core.compile_model(self.flexible, DEVICE, self.config)
        else:
            self.static_batch = None
            self.compiled[None] = core.compile_model(self.flexible, DEVICE, self.config)

    @property
    def main(self) -> Any:
        return self.compiled[self.static_batch]

    def for_batch(self, n: int) -> tuple[int | None, Any]:
        key = n if n == self.static_batch else None
        compiled = self.compiled.get(key)
        if compiled is None:
            with self.lock:
                compiled = self.compiled.get(key)
                if compiled is None:
                    compiled = self.compiled[key] = self.core.compile_model(self.flexible, DEVICE, self.config)
        return key, compiled


class OpenVinoBackend:
    """OpenVINO's CPU plugin on the ONNX export of the model folder."""

    name = "openvino"

    def __init__(self, files: ModelFiles, g: Mapping[str, Any], input_shape: Sequence[int] | None = None,
                 shared: _SharedModel | None = None) -> None:
        self.files = files
        self.g = dict(g)
        self.precision = precision_name(g)
        refuse_gpu_only_options(g, self.name)
        if g.get("use_gpu"):
            raise DeployEnvironmentError(
                "Global.use_gpu=True with backend openvino: only OpenVINO's CPU device is offered here; "
                "set Global.use_gpu=False, or use backend paddle or onnxruntime for a GPU")
        self.model_file = onnx_model_file(files, g, self.name)
        ov = _import_openvino()
        if shared is None:
            if not g.get("ir_optim", True):
                logger.warning("Global.ir_optim=False has no effect with backend openvino: OpenVINO always "
                               "optimises the graph")
            core = ov.Core()
            try:
                shared = _SharedModel(core, read_onnx(core, self.model_file), build_openvino_config(g),
                                      int(g["batch_size"]), ov)
            except Exception as e:  # a truncated or foreign .onnx file: the user's files, not a bug here
                raise ModelLoadError(
                    f"OpenVINO cannot load the model {self.model_file}: {bounded(str(e).strip(), 300, 2)}") from e
        self.shared = shared
        self.compiled = shared.main
        self.requests: dict[int | None, Any] = {shared.static_batch: self.compiled.create_infer_request()}

    def run(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        key, compiled = self.shared.for_batch(len(batch))
        request = self.requests.get(key)
        if request is None:
            request = self.requests[key] = compiled.create_infer_request()
        request.infer({0: batch}, share_inputs=True)  # reads the batch in place during this call
        return request.get_output_tensor(0).data.copy()  # the request's buffer is reused by the next run

    def clone(self) -> OpenVinoBackend:
        """Another handle (its own infer requests) on the same compiled model(s), for another thread."""
        return OpenVinoBackend(self.files, self.g, shared=self.shared)

    def describe(self) -> BackendDescription:
        streams = int(self.compiled.get_property("NUM_STREAMS"))
        threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        return {"backend": self.name, "runtime_device": "cpu", "ir_optim": True, "enable_tensorrt": False,
                "enable_mkldnn": False, "cpu_math_library_num_threads": threads // max(1, streams),
                "precision": self.precision, "model_file": os.path.basename(self.model_file)}
