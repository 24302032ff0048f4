"""Turning scores into top-k answers (``Infer.PostProcess``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ppcls.registry import POSTPROCESS

logger = logging.getLogger(__name__)


@POSTPROCESS.register()
class Topk:
    """Top-k classes of probability rows, named from ``class_id_map_file`` when given."""

    def __init__(self, topk: int = 5, class_id_map_file: str | None = None,
                 class_num: int | None = None, delimiter: str | None = None) -> None:
        if not isinstance(topk, int) or topk < 1:
            raise ValueError(f"Infer.PostProcess.topk: expected a positive integer, got {topk!r}")
        self.topk = topk if class_num is None else min(topk, class_num)
        self.names: dict[int, str] | None = None
        if class_id_map_file:
            from ppcls.data.label_list import read_label_list

            self.names = read_label_list(class_id_map_file)

    def __call__(self, probs: np.ndarray, file_names: Sequence[str] | None = None) -> list[dict]:
        out = []
        k = min(self.topk, probs.shape[-1])
        for i, row in enumerate(probs):
            idx = np.argsort(-row, kind="stable")[:k]
            item: dict = {"class_ids": idx.tolist(), "scores": [round(float(row[j]), 5) for j in idx]}
            if file_names is not None:
                item["file_name"] = file_names[i]
            if self.names is not None:
                item["label_names"] = [self.names.get(int(j), str(int(j))) for j in idx]
            out.append(item)
        return out
