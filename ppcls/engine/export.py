"""Export: reparameterize → fold BN → softmax head → to_static → jit.save + inference.yml (+ ONNX)."""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import paddle
import paddle.nn as nn
import yaml

from ppcls.arch.layers import reparameterize_model
from ppcls.data.label_list import check_label_list, read_label_list, write_label_list
from ppcls.utils.errors import ConfigError, DependencyError, MissingFileError, summarize

logger = logging.getLogger(__name__)

class InferenceModel(nn.Layer):
    """The exported graph: backbone plus an optional softmax so outputs are probabilities."""

    def __init__(self, model: nn.Layer, add_softmax: bool = True) -> None:
        super().__init__()
        self.model = model
        self.softmax = nn.Softmax(axis=-1) if add_softmax else None

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        x = self.model(x)
        return self.softmax(x) if self.softmax is not None else x


def model_file(model_dir: str) -> str:
    """The graph file of an exported model: ``inference.json`` (Paddle 3) or ``.pdmodel`` (2.x)."""
    for name in ("inference.json", "inference.pdmodel"):
        path = os.path.join(model_dir, name)
        if os.path.isfile(path):
            return path
    raise MissingFileError(
        f"no exported model in {model_dir}: expected inference.json (Paddle 3) or inference.pdmodel (Paddle 2)"
    )


def convert_to_onnx(model_dir: str, onnx_path: str, opset_version: int = 13) -> str:
    """Convert the model in ``model_dir`` (``inference.json`` or ``.pdmodel``) to ``onnx_path`` (paddle2onnx)."""
    try:
        import paddle2onnx  # optional: only Global.export_type=onnx needs it
    except ImportError:
        raise DependencyError(
            "Global.export_type=onnx needs the paddle2onnx package: pip install paddle2onnx"
        ) from None
    graph = model_file(model_dir)
    params = os.path.join(model_dir, "inference.pdiparams")
    tmp = onnx_path + ".tmp"
    paddle2onnx.export(graph, params, tmp, opset_version=opset_version, enable_onnx_checker=True)
    os.replace(tmp, onnx_path)
    logger.info("wrote %s from %s", onnx_path, os.path.basename(graph))
    return onnx_path


def _replace_dir(tmp_dir: str, save_dir: str) -> None:
    """Move ``tmp_dir`` to ``save_dir``; an existing export is swapped out, then removed."""
    old = None
    if os.path.exists(save_dir):
        old = f"{save_dir.rstrip(os.sep)}.old-{int(time.time() * 1000)}"
        os.replace(save_dir, old)
    os.replace(tmp_dir, save_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def export_model(
    model: nn.Layer,
    save_dir: str,
    image_shape: Sequence[int],
    model_name: str,
    class_num: int,
    transform_ops: Sequence[Any] | None = None,
    topk: int = 5,
    label_list_file: str | None = None,
    add_softmax: bool = True,
    export_type: str = "paddle",
    class_names: Sequence[str] | None = None,
) -> str:
    """Write a Paddle inference model (dynamic batch) and ``inference.yml`` into ``save_dir``.

    The folder appears complete or not at all. ``export_type: onnx`` also writes
    ``inference.onnx`` through paddle2onnx. The class names (``label_list.txt``) come from
    ``class_names`` or are copied from ``label_list_file``.
    """
    if class_names is not None and label_list_file:
        raise ConfigError("export: give class_names or label_list_file, not both")
    if class_names is not None and len(class_names) != int(class_num):
        raise ConfigError(f"export: {len(class_names)} class names for {class_num} classes (Arch.class_num)")
    if len(image_shape) != 3:
        raise ConfigError(f"Global.image_shape: expected [C, H, W], got {summarize(image_shape)}")
    if export_type not in ("paddle", "onnx"):
        raise ConfigError(f"Global.export_type: expected paddle or onnx, got {summarize(export_type)}")
    if label_list_file:  # a label list naming other classes than the model's is refused before any work
        key = "Infer.PostProcess.class_id_map_file"
        check_label_list(read_label_list(label_list_file, key=key), int(class_num), label_list_file, key,
                         "Arch.class_num")
    model = copy.deepcopy(model)
    reparameterize_model(model)
    wrapped = InferenceModel(model, add_softmax)
    wrapped.eval()
    spec = [paddle.static.InputSpec([None, *map(int, image_shape)], "float32", name="x")]
    static = paddle.jit.to_static(wrapped, input_spec=spec, full_graph=True)
    save_dir = os.path.abspath(save_dir)
    parent = os.path.dirname(save_dir)
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=f".{os.path.basename(save_dir)}.", dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_dir, 0o777 & ~umask)  # mkdtemp makes a private 0700 folder; a service user must read it
    try:
        paddle.jit.save(static, os.path.join(tmp_dir, "inference"))
        label_name = None
        if label_list_file:
            label_name = "label_list.txt"
            shutil.copyfile(label_list_file, os.path.join(tmp_dir, label_name))
        elif class_names is not None:
            label_name = "label_list.txt"
            write_label_list(os.path.join(tmp_dir, label_name), list(class_names))
        write_inference_yml(os.path.join(tmp_dir, "inference.yml"), model_name, image_shape, class_num,
                            transform_ops, topk, label_name, add_softmax)
        if export_type == "onnx":
            convert_to_onnx(tmp_dir, os.path.join(tmp_dir, "inference.onnx"))
        _replace_dir(tmp_dir, save_dir)
    finally:
        if os.path.exists(tmp_dir):
            shutil.rmtree(tmp_dir, ignore_errors=True)
    logger.info("exported %s to %s (%s)", model_name, save_dir, os.path.basename(model_file(save_dir)))
    return save_dir


def write_inference_yml(
    path: str,
    model_name: str,
    image_shape: Sequence[int],
    class_num: int,
    transform_ops: Sequence[Any] | None,
    topk: int,
    label_file: str | None,
    probabilities: bool,
) -> None:
    """The contract read by ``deploy/``: preprocessing, input shape, outputs, labels."""
    ops = [op for op in (transform_ops or []) if not (isinstance(op, Mapping) and "DecodeImage" in op)]
    data = {
        "Global": {
            "model_name": model_name,
            "input_shape": [int(v) for v in image_shape],
            "class_num": int(class_num),
            "output": "probabilities" if probabilities else "logits",
            "paddle_version": paddle.__version__,
        },
        "PreProcess": {"transform_ops": [_plain(op) for op in ops]},
        "PostProcess": {"Topk": {"topk": int(topk), "class_id_map_file": label_file}},
    }
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(data, f, sort_keys=False)


def _plain(op: Any) -> Any:
    if isinstance(op, Mapping):
        return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in op.items()}
    return op
