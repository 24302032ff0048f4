"""Deploy post-processing: ``Topk`` (class ids, scores, label names) and ``SavePreLabel``.

``PostProcess`` keeps PaddleClas's two spellings (see :func:`utils.normalize_postprocess`);
``main_indicator`` names the op whose output is returned (Topk by default).

Design note (one copy for ppcls and deploy): :class:`Topk` and :func:`read_label_list` are also
the training side's (``ppcls/engine/postprocess.py`` subclasses :class:`Topk` for ``Infer.PostProcess``,
``ppcls/data/label_list.py`` calls :func:`read_label_list`), so ``tools/infer.py`` and
``predict_cls.py`` give the same results by construction. deploy/ must run when copied alone, so the
code lives here and imports nothing outside deploy/; each side keeps its error types and wording
(:class:`~deploy.python.errors.ErrorKinds`, the ``section`` a subclass names in messages).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import DEPLOY_ERRORS, DeployConfigError, DeployFileError, ErrorKinds, few
from .files import atomic_copy


def read_label_list(path: str, delimiter: str | None = None, key: str = "PostProcess.Topk.class_id_map_file",
                    errors: ErrorKinds = DEPLOY_ERRORS) -> dict[int, str]:
    """``class_id name`` lines (the name may contain spaces; ``delimiter`` splits id from name, default
    whitespace). A missing file, a line without an integer id or an id given twice is an error; ``key``
    names the setting the path came from."""
    if not os.path.isfile(path):
        raise errors.missing(f"{key} not found: {path}")
    names: dict[int, str] = {}
    lines: dict[int, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(delimiter or None, 1)
            try:
                cid = int(parts[0])
            except ValueError:
                raise errors.data(f"{path}:{lineno}: expected 'class_id name', got {errors.show(line)}") from None
            if cid in names:
                raise errors.data(f"{path}:{lineno}: class id {cid} is given twice (first on line {lines[cid]})")
            names[cid] = parts[1].strip() if len(parts) > 1 else str(cid)
            lines[cid] = lineno
    return names


def check_label_list(names: Mapping[int, str], class_num: int, path: str, where: str) -> None:
    """The label list must name exactly the ``class_num`` classes ``0 .. class_num - 1`` (``where`` says
    where that number comes from)."""
    if len(names) != class_num:
        raise DeployConfigError(
            f"PostProcess.Topk.class_id_map_file {path} has {len(names)} class names but {where} is {class_num}: "
            f"the label list needs one 'class_id name' line per class of the model"
        )
    outside = sorted(i for i in names if not 0 <= i < class_num)
    if outside:
        raise DeployConfigError(
            f"PostProcess.Topk.class_id_map_file {path}: class ids {few(outside)} are outside [0, {class_num}) "
            f"({where} is {class_num})"
        )


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class Topk:
    """The ``topk`` best classes of each score row, named from ``class_id_map_file`` when given.

    Each result is PaddleClas's dict: ``{"class_ids": [...], "scores": [...] (5 decimals),
    "file_name": ... (when known), "label_names": [...]}``; ``label_names`` is always there, ``[]``
    without a label list. A subclass names its own config ``section`` and :class:`ErrorKinds`.
    """

    section = "PostProcess.Topk"  # where the keys live, for messages
    errors: ErrorKinds = DEPLOY_ERRORS

    def __init__(self, topk: int = 5, class_id_map_file: str | None = None, delimiter: str | None = None) -> None:
        self._check_args(topk, delimiter)
        self.topk = topk
        self.label_file = class_id_map_file
        self.names: dict[int, str] | None = self.read_names(class_id_map_file, delimiter) if class_id_map_file else None
        self._checked_width: int | None = None

    def _check_args(self, topk: int, delimiter: str | None) -> None:
        error, show = self.errors.config, self.errors.show
        if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
            raise error(f"{self.section}.topk: expected a positive integer, got {show(topk)}")
        if delimiter is not None and (not isinstance(delimiter, str) or not delimiter.strip()):
            raise error(f"{self.section}.delimiter: expected a separator such as ',' (default: whitespace), "
                        f"got {show(delimiter)}")

    def read_names(self, path: str, delimiter: str | None) -> dict[int, str]:
        """The class names of the label list at ``path``."""
        return read_label_list(path, delimiter, f"{self.section}.class_id_map_file", self.errors)

    def check_class_num(self, class_num: int, where: str = "the model's output width (its number of classes)") -> None:
        """Refuse a label list that does not name exactly ``class_num`` classes (``where`` says whose number)."""
        if self.names is not None:
            check_label_list(self.names, int(class_num), str(self.label_file), where)

    def __call__(self, scores: np.ndarray, file_names: Sequence[str] | None = None) -> list[dict]:
        width = scores.shape[-1]
        if self.names is not None and width != self._checked_width:
            self.check_class_num(width)
            self._checked_width = width
        k = min(self.topk, width)
        idx_rows = np.argsort(-scores, axis=-1, kind="stable")[:, :k]  # ties: the smaller class id first
        out = []
        for i, idx in enumerate(idx_rows):
            row = scores[i]
            item: dict = {"class_ids": [int(j) for j in idx],
                          "scores": [round(float(row[j]), 5) for j in idx]}
            if file_names is not None:
                item["file_name"] = file_names[i]
            # always present, [] without a label list: the structure of PaddleClas
            item["label_names"] = [self.names[int(j)] for j in idx] if self.names is not None else []
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
                folder = os.path.join(self.save_dir, str(int(np.argmax(row))))
                try:
                    copied.append(atomic_copy(path, folder))
                except OSError as e:
                    raise DeployFileError(
                        f"PostProcess.SavePreLabel.save_dir: cannot copy {path} into {folder}: "
                        f"{e.strerror or e}") from None
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
