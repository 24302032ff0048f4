"""Label list files: lines ``id name`` (PaddleClas's ``class_id_map_file``).

Wherever a label list meets a class count (``Infer.PostProcess.class_id_map_file`` and
``Arch.class_num``, ``DataLoader.*.dataset.label_list_path``, the export's ``label_list.txt``)
it must name exactly the classes ``0 .. class_num - 1``: :func:`check_label_list`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ppcls.utils.errors import DataError, MissingFileError, summarize
from ppcls.utils.io import atomic_write_text


def _few(items: list, n: int = 5) -> str:
    shown = ", ".join(str(x) for x in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def read_label_list(path: str, delimiter: str | None = None, key: str = "label list") -> dict[int, str]:
    """Read ``id name`` lines; the name may contain spaces (``delimiter`` separates id and name,
    whitespace by default). ``key`` names the setting the path came from in errors."""
    if not os.path.isfile(path):
        raise MissingFileError(f"{key} not found: {path}")
    names: dict[int, str] = {}
    first_line: dict[int, int] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(delimiter or None, 1)
            try:
                cid = int(parts[0])
            except ValueError:
                raise DataError(f"{path}:{lineno}: expected 'class_id name', got {summarize(line)}") from None
            if cid in names:
                raise DataError(f"{path}:{lineno}: class id {cid} is given twice (first on line {first_line[cid]})")
            names[cid] = parts[1].strip() if len(parts) > 1 else str(cid)
            first_line[cid] = lineno
    return names


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
            f"{key}: {path} gives class ids outside [0, {class_num}) ({class_key} is {class_num}): {_few(outside)}"
        )


def write_label_list(path: str, names: list[str]) -> None:
    atomic_write_text(path, "".join(f"{i} {n}\n" for i, n in enumerate(names)))
