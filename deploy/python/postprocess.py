"""Deploy post-processing: ``Topk`` (class ids, scores, label names) and ``SavePreLabel``.

``PostProcess`` keeps PaddleClas's two spellings (see :func:`utils.normalize_postprocess`);
``main_indicator`` names the op whose output is returned (Topk by default).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .utils import DeployConfigError, atomic_copy


def read_label_list(path: str) -> dict[int, str]:
    """``class_id name`` lines (the name may contain spaces)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"PostProcess.Topk.class_id_map_file not found: {path}")
    names: dict[int, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=1)
            try:
                cid = int(parts[0])
            except ValueError:
                raise DeployConfigError(f"{path}:{lineno}: expected 'class_id name', got {line!r}") from None
            names[cid] = parts[1] if len(parts) > 1 else str(cid)
    return names


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Topk:
    """The ``topk`` best classes of each score row, named from ``class_id_map_file`` when given."""

    def __init__(self, topk: int = 5, class_id_map_file: str | None = None, delimiter: str | None = None) -> None:
        if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
            raise DeployConfigError(f"PostProcess.Topk.topk: expected a positive integer, got {topk!r}")
        self.topk = topk
        self.names = read_label_list(class_id_map_file) if class_id_map_file else None

    def __call__(self, scores: np.ndarray, file_names: Sequence[str] | None = None) -> list[dict]:
        k = min(self.topk, scores.shape[-1])
        idx_rows = np.argsort(-scores, axis=-1, kind="stable")[:, :k]  # ties: the smaller class id first
        out = []
        for i, idx in enumerate(idx_rows):
            row = scores[i]
            item: dict = {"class_ids": [int(j) for j in idx],
                          "scores": [round(float(row[j]), 5) for j in idx]}
            if file_names is not None:
                item["file_name"] = file_names[i]
            item["label_names"] = [self.names.get(int(j), str(int(j))) for j in idx] if self.names else []
            out.append(item)
        return out


class SavePreLabel:
    """Copy each image into ``save_dir/<top-1 class id>/`` (sorting a folder by prediction)."""

    def __init__(self, save_dir: str | None = None) -> None:
        if not save_dir:
            raise DeployConfigError("PostProcess.SavePreLabel.save_dir: set the folder the images are copied into")
        self.save_dir = str(save_dir)

    def __call__(self, scores: np.ndarray, file_names: Sequence[str] | None = None) -> list[str]:
        if file_names is None:
            return []
        copied = []
        for row, path in zip(scores, file_names, strict=True):
            if path and os.path.isfile(path):
                copied.append(atomic_copy(path, os.path.join(self.save_dir, str(int(np.argmax(row))))))
        return copied


POSTPROCESS_OPS = {"Topk": Topk, "SavePreLabel": SavePreLabel}


class PostProcessor:
    """Run every configured op; return the result of ``main_indicator`` (Topk)."""

    def __init__(self, post: Mapping[str, Any], softmax_first: bool = False) -> None:
        post = dict(post)
        self.main = post.pop("main_indicator", None) or "Topk"
        self.ops: dict[str, Any] = {}
        for name, args in post.items():
            if name not in POSTPROCESS_OPS:
                raise DeployConfigError(
                    f"PostProcess.{name}: unknown op; valid: {', '.join(POSTPROCESS_OPS)} (and main_indicator)"
                )
            args = dict(args or {})
            import inspect

            allowed = list(inspect.signature(POSTPROCESS_OPS[name]).parameters)
            for key in args:
                if key not in allowed:
                    raise DeployConfigError(f"PostProcess.{name}.{key}: unknown key; valid keys: {', '.join(allowed)}")
            self.ops[name] = POSTPROCESS_OPS[name](**args)
        if "Topk" not in self.ops:
            self.ops["Topk"] = Topk()
        if self.main not in self.ops:
            raise DeployConfigError(f"PostProcess.main_indicator: {self.main!r} is not one of the configured ops "
                                    f"{', '.join(self.ops)}")
        self.softmax_first = softmax_first

    @property
    def topk(self) -> Topk:
        return self.ops["Topk"]

    def __call__(self, scores: np.ndarray, file_names: Sequence[str] | None = None) -> Any:
        if self.softmax_first:
            scores = softmax(scores.astype(np.float32, copy=False))
        result = None
        for name, op in self.ops.items():
            out = op(scores, file_names)
            if name == self.main:
                result = out
        return result
