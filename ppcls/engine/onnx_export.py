"""ONNX conversion of an exported Paddle inference model through paddle2onnx."""

from __future__ import annotations

import logging
import os

from ppcls.utils.errors import DependencyError

logger = logging.getLogger(__name__)


def convert_to_onnx(model_dir: str, onnx_path: str, opset_version: int = 13) -> str:
    """Convert the model in ``model_dir`` (``inference.json`` or ``.pdmodel``) to ``onnx_path``."""
    try:
        import paddle2onnx
    except ImportError:
        raise DependencyError(
            "Global.export_type=onnx needs the paddle2onnx package: pip install paddle2onnx"
        ) from None
    from .export import model_file

    graph = model_file(model_dir)
    params = os.path.join(model_dir, "inference.pdiparams")
    tmp = onnx_path + ".tmp"
    paddle2onnx.export(graph, params, tmp, opset_version=opset_version, enable_onnx_checker=True)
    os.replace(tmp, onnx_path)
    logger.info("wrote %s from %s", onnx_path, os.path.basename(graph))
    return onnx_path
