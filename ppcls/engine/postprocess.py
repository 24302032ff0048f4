"""Turning scores into top-k answers (``Infer.PostProcess``).

Each result is the dict PaddleClas's ``Topk`` gives and ``deploy/python/postprocess.py`` gives
too (``tests/tools/test_infer_matches_predictor.py`` compares them whole):
``{"class_ids": [...], "scores": [...] (5 decimals), "file_name": ... (when known),
"label_names": [...]}``; ``label_names`` is always there, ``[]`` without a label list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ppcls.registry import POSTPROCESS
from ppcls.utils.errors import ConfigError, summarize

logger = logging.getLogger(__name__)


@POSTPROCESS.register()
class Topk:
    """Top-k classes of probability rows, named from ``class_id_map_file`` or ``class_names`` when given.

    A label list must name exactly ``class_num`` classes (``Arch.class_num``) when that is given,
    and exactly as many as the scores have columns in any case. ``class_names`` lists the names
    in class-id order instead of a file (the tools pass the data's or the weights' names here).
    """

    def __init__(self, topk: int = 5, class_id_map_file: str | None = None,
                 class_num: int | None = None, delimiter: str | None = None,
                 class_names: list[str] | None = None) -> None:
        if isinstance(topk, bool) or not isinstance(topk, int) or topk < 1:
            raise ConfigError(f"Infer.PostProcess.topk: expected a positive integer, got {summarize(topk)}")
        if delimiter is not None and (not isinstance(delimiter, str) or not delimiter.strip()):
            raise ConfigError(
                f"Infer.PostProcess.delimiter: expected a separator such as ',' (default: whitespace), "
                f"got {summarize(delimiter)}")
        self.topk = topk if class_num is None else min(topk, class_num)
        self.label_file = class_id_map_file
        self.names: dict[int, str] | None = None
        self._checked_width: int | None = None
        if class_id_map_file and class_names is not None:
            raise ConfigError("Infer.PostProcess: give class_id_map_file or class_names, not both")
        if class_names is not None:
            if not isinstance(class_names, (list, tuple)) or not all(isinstance(n, str) for n in class_names):
                raise ConfigError(f"Infer.PostProcess.class_names: expected a list of names, got {summarize(class_names)}")
            self.names = dict(enumerate(class_names))
            self.label_file = "Infer.PostProcess.class_names"
            if class_num is not None and len(class_names) != class_num:
                raise ConfigError(f"Infer.PostProcess.class_names: {len(class_names)} names for {class_num} classes "
                                  "(Arch.class_num)")
        if class_id_map_file:
            from ppcls.data.label_list import check_label_list, read_label_list

            self.names = read_label_list(class_id_map_file, delimiter, "Infer.PostProcess.class_id_map_file")
            if class_num is not None:
                check_label_list(self.names, int(class_num), class_id_map_file,
                                 "Infer.PostProcess.class_id_map_file", "Arch.class_num")

    def __call__(self, probs: np.ndarray, file_names: Sequence[str] | None = None) -> list[dict]:
        width = probs.shape[-1]
        if self.names is not None and width != self._checked_width:
            from ppcls.data.label_list import check_label_list

            check_label_list(self.names, width, str(self.label_file), "Infer.PostProcess.class_id_map_file",
                             "the model's output width")
            self._checked_width = width
        out = []
        k = min(self.topk, width)
        for i, row in enumerate(probs):
            idx = np.argsort(-row, kind="stable")[:k]  # ties: the smaller class id first
            item: dict = {"class_ids": [int(j) for j in idx], "scores": [round(float(row[j]), 5) for j in idx]}
            if file_names is not None:
                item["file_name"] = file_names[i]
            item["label_names"] = [self.names[int(j)] for j in idx] if self.names is not None else []
            out.append(item)
        return out
