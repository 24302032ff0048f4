"""Label list files: lines ``id name`` (PaddleClas's ``class_id_map_file``)."""

from __future__ import annotations

import os

from ppcls.utils.io import atomic_write_text


def read_label_list(path: str) -> dict[int, str]:
    """Read ``id name`` lines; the name may contain spaces."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label list not found: {path}")
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
                raise ValueError(
                    f"{path}:{lineno}: expected 'class_id name', got {line!r}"
                ) from None
            names[cid] = parts[1] if len(parts) > 1 else str(cid)
    return names


def write_label_list(path: str, names: list[str]) -> None:
    atomic_write_text(path, "".join(f"{i} {n}\n" for i, n in enumerate(names)))
