"""Predict with an exported inference model from Python: :class:`Predictor`.

    from ppcls import Predictor
    predictor = Predictor("inference/PPLCNet_x0_25_digits")          # tools/export_model.py's folder
    predictor.predict("digit.png")                                    # {"class_ids": [...], "scores": [...], ...}
    predictor.predict(cv2.imread("digit.png"), channel_order="BGR")   # an OpenCV array
    predictor.scores([path, image_bytes, rgb_array])                  # raw model outputs, one row each

It wraps the deploy predictor (``deploy/python/predictor.py``: the preprocessing, label list and
top-k the export recorded; Paddle Inference or ONNX Runtime), so its results equal
``ppcls predict`` / ``python deploy/python/predict_cls.py`` on the same files.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ppcls._resources import PACKAGE_DIR

CHANNEL_ORDERS = ("RGB", "BGR")


class Predictor:
    """An exported model (``inference_model_dir``) → top-k results or scores for images.

    An image is a file path, the bytes of an image file, or an HWC ``uint8`` numpy array (or an
    HW grey one). ``channel_order`` says how arrays store their channels: ``"RGB"`` (the default;
    PIL, skimage, matplotlib) or ``"BGR"`` (``cv2.imread``); files and bytes are decoded as the
    export says, whatever it is. Other keyword arguments are deploy ``Global`` options
    (``batch_size``, ``backend="onnxruntime"``, ``cpu_num_threads``, ``use_gpu``, ...); ``topk``
    overrides the export's ``PostProcess.Topk.topk``.
    """

    def __init__(self, model_dir: str | os.PathLike, channel_order: str = "RGB", topk: int | None = None,
                 **global_options: Any) -> None:
        try:  # deploy/ is imported only here: it loads the inference backends
            from deploy.python.predictor import ClsPredictor
        except ModuleNotFoundError as e:  # a source checkout not on sys.path: deploy/ is next to ppcls/
            if e.name not in ("deploy", "deploy.python"):
                raise
            sys.path.insert(0, os.path.dirname(PACKAGE_DIR))
            from deploy.python.predictor import ClsPredictor

        self.channel_order = _check_order(channel_order)
        cfg: dict[str, Any] = {"Global": {"inference_model_dir": os.fspath(model_dir), **global_options}}
        if topk is not None:
            cfg["PostProcess"] = {"Topk": {"topk": int(topk)}}
        self.predictor = ClsPredictor(cfg)

    def _inputs(self, images: Any, channel_order: str | None) -> tuple[list[Any], bool]:
        order = self.channel_order if channel_order is None else _check_order(channel_order)
        single = isinstance(images, (str, bytes, bytearray, memoryview, os.PathLike, np.ndarray))
        items = [images] if single else list(images)
        return [_one(x, order) for x in items], single

    def predict(self, images: Any, channel_order: str | None = None) -> dict | list[dict]:
        """Top-k dicts (``class_ids``, ``scores``, ``label_names``, ``file_name``): one for one image,
        a list for a list of images. ``channel_order`` overrides the predictor's for these arrays."""
        items, single = self._inputs(images, channel_order)
        results = []
        for start in range(0, len(items), self.predictor.batch_size):
            results.extend(self.predictor.predict(items[start:start + self.predictor.batch_size]))
        return results[0] if single else results

    def scores(self, images: Any, channel_order: str | None = None) -> np.ndarray:
        """Raw model outputs (probabilities for the default export): one row per image."""
        items, single = self._inputs(images, channel_order)
        rows = [self.predictor.predict_scores(items[s:s + self.predictor.batch_size])
                for s in range(0, len(items), self.predictor.batch_size)]
        out = np.concatenate(rows, axis=0) if rows else np.zeros((0, 0), np.float32)
        return out[0] if single else out

    __call__ = predict


def _check_order(order: str) -> str:
    if not isinstance(order, str) or order.upper() not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order: expected 'RGB' or 'BGR', got {order!r}")
    return order.upper()


def _one(image: Any, order: str) -> Any:
    if isinstance(image, os.PathLike):
        return os.fspath(image)
    if isinstance(image, np.ndarray) and order == "BGR" and image.ndim == 3 and image.shape[2] in (3, 4):
        # the deploy predictor takes RGB arrays; BGRA keeps its alpha last
        rgb = image[:, :, 2::-1] if image.shape[2] == 3 else image[:, :, [2, 1, 0, 3]]
        return np.ascontiguousarray(rgb)
    return image


__all__: Sequence[str] = ["Predictor", "CHANNEL_ORDERS"]
