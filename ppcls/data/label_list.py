"""Label list files: lines ``id name`` (PaddleClas's ``class_id_map_file``).

Wherever a label list meets a class count (``Infer.PostProcess.class_id_map_file`` and
``Arch.class_num``, ``DataLoader.*.dataset.label_list_path``, the export's ``label_list.txt``)
it must name exactly the classes ``0 .. class_num - 1``: :func:`check_label_list`.

Design note: the reading is ``deploy/python/postprocess.py``'s :func:`~deploy.python.postprocess.read_label_list`
(one copy; deploy/ runs alone, so it lives there and ppcls imports it), raising ppcls's types here.
"""

from __future__ import annotations

from collections.abc import Mapping

from deploy.python.errors import few
from deploy.python.postprocess import read_label_list as _read_label_list
from ppcls.utils.errors import PPCLS_ERRORS, DataError
from ppcls.utils.io import atomic_write_text


def read_label_list(path: str, delimiter: str | None = None, key: str = "label list") -> dict[int, str]:
    """Read ``id name`` lines; the name may contain spaces (``delimiter`` separates id and name,
    whitespace by default). ``key`` names the setting the path came from in errors."""
    return _read_label_list(path, delimiter, key, PPCLS_ERRORS)


def check_label_list(names: Mapping[int, str], class_num: int, path: str, key: str, class_key: str) -> None:
    """Refuse a label list that does not name exactly the classes ``0 .. class_num - 1``.

    ``key`` is the setting that gave ``path``; ``class_key`` the one that gave ``class_num``.
    """
    if len(names) != class_num:
        raise DataError(
            f"{key}: {path} has {len(names):,} class names but {class_key} is {class_num:,}: the label list needs "
            "one 'class_id name' line per class of the model"
        )
    outside = sorted(i for i in names if not 0 <= i < class_num)
    if outside:
        raise DataError(
            f"{key}: {path} gives class ids outside [0, {class_num}) ({class_key} is {class_num}): {few(outside)}"
        )


def write_label_list(path: str, names: list[str]) -> None:
    atomic_write_text(path, "".join(f"{i} {n}\n" for i, n in enumerate(names)))
