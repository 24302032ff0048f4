"""Turning scores into top-k answers (``Infer.PostProcess``).

Each result is the dict PaddleClas's ``Topk`` gives: ``{"class_ids": [...], "scores": [...]
(5 decimals), "file_name": ... (when known), "label_names": [...]}``; ``label_names`` is always
there, ``[]`` without a label list.

Design note: the top-k itself is ``deploy/python/postprocess.py``'s :class:`~deploy.python.postprocess.Topk`
(one copy: deploy/ runs alone, so it lives there and ppcls imports it); this subclass adds what the
training side's config offers (``class_num``, ``class_names``) and keeps ppcls's error types and the
``Infer.PostProcess`` key names in its messages, so ``tools/infer.py`` and ``predict_cls.py`` agree by
construction (``tests/tools/test_infer_matches_predictor.py`` still compares them whole).
"""

from __future__ import annotations

import logging

from deploy.python.postprocess import Topk as DeployTopk
from ppcls.data.label_list import check_label_list
from ppcls.registry import POSTPROCESS
from ppcls.utils.errors import PPCLS_ERRORS, ConfigError, summarize

logger = logging.getLogger(__name__)


@POSTPROCESS.register()
class Topk(DeployTopk):
    """Top-k classes of probability rows, named from ``class_id_map_file`` or ``class_names`` when given.

    A label list must name exactly ``class_num`` classes (``Arch.class_num``) when that is given,
    and exactly as many as the scores have columns in any case. ``class_names`` lists the names
    in class-id order instead of a file (the tools pass the data's or the weights' names here).
    """

    section = "Infer.PostProcess"
    errors = PPCLS_ERRORS

    def __init__(self, topk: int = 5, class_id_map_file: str | None = None,
                 class_num: int | None = None, delimiter: str | None = None,
                 class_names: list[str] | None = None) -> None:
        self._check_args(topk, delimiter)
        if class_id_map_file and class_names is not None:
            raise ConfigError("Infer.PostProcess: give class_id_map_file or class_names, not both")
        if class_names is not None:
            if not isinstance(class_names, (list, tuple)) or not all(isinstance(n, str) for n in class_names):
                raise ConfigError(f"Infer.PostProcess.class_names: expected a list of names, got {summarize(class_names)}")
            if class_num is not None and len(class_names) != class_num:
                raise ConfigError(f"Infer.PostProcess.class_names: {len(class_names)} names for {class_num} classes "
                                  "(Arch.class_num)")
        super().__init__(topk, class_id_map_file, delimiter)
        if class_num is not None:
            self.topk = min(topk, class_num)
        if class_names is not None:
            self.names = dict(enumerate(class_names))
            self.label_file = "Infer.PostProcess.class_names"
        if class_id_map_file and class_num is not None:
            check_label_list(self.names, int(class_num), class_id_map_file,
                             "Infer.PostProcess.class_id_map_file", "Arch.class_num")

    def check_class_num(self, class_num: int, where: str = "the model's output width") -> None:
        """Refuse a label list that does not name exactly ``class_num`` classes (``where`` says whose number)."""
        if self.names is not None:
            check_label_list(self.names, int(class_num), str(self.label_file), "Infer.PostProcess.class_id_map_file",
                             where)
