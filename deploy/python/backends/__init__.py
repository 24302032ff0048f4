"""The deploy backends: one module each behind :class:`~deploy.python.backends.base.Backend`.

:data:`BACKENDS` maps a ``Global.backend`` name to ``"module:Class"`` inside this package,
imported only when that backend is built, so that ONNX Runtime or OpenVINO alone never imports
paddle (and the other way round). Adding a backend is one module and one line here;
``deploy/python/utils.py`` validates ``Global.backend`` against this table.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import DeployConfigError
from .base import DESCRIBE_KEYS, Backend, BackendDescription, ModelFiles, precision_name

BACKENDS: dict[str, str] = {
    "paddle": "paddle:PaddleBackend",  # Paddle Inference (inference.json / inference.pdmodel)
    "onnxruntime": "onnxruntime:OnnxBackend",  # ONNX Runtime (inference.onnx / inference_int8.onnx)
    "openvino": "openvino:OpenVinoBackend",  # OpenVINO on the CPU (inference.onnx / inference_int8.onnx)
}

__all__ = ["BACKENDS", "DESCRIBE_KEYS", "Backend", "BackendDescription", "ModelFiles", "backend_class",
           "build_backend", "precision_name"]


def backend_class(name: str) -> type:
    """The class registered under ``name`` in :data:`BACKENDS` (its module is imported now)."""
    if name not in BACKENDS:
        raise DeployConfigError(f"Global.backend: expected one of {', '.join(BACKENDS)}, got {name!r}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def build_backend(files: ModelFiles, g: Mapping[str, Any], input_shape: Sequence[int] | None) -> Backend:
    """The backend ``Global.backend`` names, loaded from ``files``."""
    return backend_class(g["backend"])(files, g, input_shape)
