"""What every deploy backend offers, and the model-folder facts the backends share.

A backend is built from the model folder's files, the resolved ``Global`` section and the
model's input shape; it runs a preprocessed batch (``float32``, NCHW) and returns the model's
output for it; ``clone()`` gives another handle on the same weights for another thread;
``describe()`` says what runs (the keys of :class:`BackendDescription`, used by the benchmark
report). Nothing here imports paddle, onnxruntime or openvino.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypedDict, runtime_checkable

import numpy as np

from ..errors import DeployConfigError, DeployFileError

PADDLE_GRAPHS = ("inference.json", "inference.pdmodel")  # Paddle 3 (PIR), Paddle 2
PARAMS_FILE = "inference.pdiparams"
ONNX_FILE = "inference.onnx"
INT8_ONNX_FILE = "inference_int8.onnx"  # written beside inference.onnx by tools/quantize.py
INFO_FILE = "inference.yml"
INPUT_NAME = "x"  # the graph input name written by the export (and by PaddleClas)
PRECISIONS = ("fp32", "fp16", "int8")
QUANTIZE_COMMAND = ("python tools/quantize.py -c CONFIG -o Global.pretrained_model=... "
                    "-o Global.save_inference_dir={folder}")


@dataclass
class ModelFiles:
    """What an exported model folder holds."""

    folder: str
    graph: str | None  # inference.json or inference.pdmodel
    params: str | None
    onnx: str | None
    info: str | None  # inference.yml
    onnx_int8: str | None = None  # inference_int8.onnx (tools/quantize.py)

    @property
    def layout(self) -> str:
        """'paddle3' (inference.json), 'paddle2' (inference.pdmodel) or 'onnx' (only an .onnx)."""
        if self.graph is None:
            return "onnx"
        return "paddle3" if self.graph.endswith(".json") else "paddle2"


class BackendDescription(TypedDict):
    """What :meth:`Backend.describe` returns (auto_log's configuration fields, plus the file run)."""

    backend: str  # the name in deploy.python.backends.BACKENDS
    runtime_device: str  # "cpu" or "gpu"
    ir_optim: bool  # graph optimisations applied
    enable_tensorrt: bool
    enable_mkldnn: bool  # Paddle Inference's oneDNN switch (False for the other backends)
    cpu_math_library_num_threads: int
    precision: str  # what runs: fp32, fp16 or int8
    model_file: str  # base name of the model file loaded


DESCRIBE_KEYS: tuple[str, ...] = tuple(BackendDescription.__annotations__)


@runtime_checkable
class Backend(Protocol):
    """One inference runtime behind the predictor (one module per runtime, listed in ``BACKENDS``).

    Construction raises a :class:`~deploy.python.errors.DeployUserError` for a request the runtime cannot
    serve (precision, device, missing package or file) and ``ModelLoadError`` naming the file for
    a model it cannot load.
    """

    name: ClassVar[str]

    def __init__(self, files: ModelFiles, g: Mapping[str, Any], input_shape: Sequence[int] | None) -> None:
        """Load the model of ``files`` as ``g`` (the resolved ``Global``) asks; ``input_shape`` is [C, H, W]."""
        ...

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The model's output (N x classes) for a preprocessed float32 NCHW batch of any size N."""
        ...

    def clone(self) -> Backend:
        """Another handle sharing the loaded weights, usable from another thread at the same time."""
        ...

    def describe(self) -> BackendDescription:
        """What actually runs: exactly the keys of :data:`DESCRIBE_KEYS`."""
        ...


def precision_name(g: Mapping[str, Any]) -> str:
    """The precision ``Global`` asks for (``check_global`` folds use_fp16/use_int8 into ``precision``)."""
    if g.get("precision"):
        return str(g["precision"])
    if g.get("use_int8"):
        return "int8"
    return "fp16" if g.get("use_fp16") else "fp32"


def onnx_model_file(files: ModelFiles, g: Mapping[str, Any], backend: str) -> str:
    """The ONNX file an ONNX-reading backend runs for ``Global.precision``: inference.onnx (fp32) or
    inference_int8.onnx (int8); a missing one stops with the command that makes it."""
    precision = precision_name(g)
    if precision == "int8":
        if files.onnx_int8 is None:
            path = os.path.join(files.folder, INT8_ONNX_FILE)
            raise DeployFileError(
                f"Global.precision=int8 needs the quantized model {path}, which is missing: make it with "
                + QUANTIZE_COMMAND.format(folder=files.folder)
            )
        return files.onnx_int8
    if files.onnx is None:
        raise DeployFileError(
            f"Global.backend={backend} needs {os.path.join(files.folder, ONNX_FILE)}: export with "
            "-o Global.export_type=onnx"
        )
    return files.onnx


def refuse_gpu_only_options(g: Mapping[str, Any], backend: str) -> None:
    """fp16 and TensorRT are Paddle Inference's GPU paths; the ONNX-reading backends run fp32 or int8 on the CPU."""
    if precision_name(g) == "fp16":
        raise DeployConfigError(
            f"Global.precision=fp16 (or Global.use_fp16=True) is not supported by the {backend} backend, which "
            "runs on the CPU here in fp32 or int8: use precision fp32 or int8, or backend paddle on a GPU")
    if g.get("use_tensorrt"):
        raise DeployConfigError(
            f"Global.use_tensorrt=True is not supported by the {backend} backend; use backend paddle")

