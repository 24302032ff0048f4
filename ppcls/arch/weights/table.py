"""The model zoo's weights table, derived from the registry and the formats (docs/model_zoo.md)."""

from __future__ import annotations

from collections.abc import Iterable

from ppcls.registry import WEIGHT_FORMATS

from ..entry import model_class
from ..pretrained import published_weights
from .published import pick

# formats of other code bases, beyond PaddleClas's and torchvision's files in the registry
OFFICIAL = {"parnet": "official ParNet code (NonDeepNetworks)", "peleenet": "official PeleeNet code"}


def _cell(text: str | None) -> str:
    return text or "–"


def weights_rows(names: Iterable[str]) -> list[tuple[str, str, str, str, str]]:
    """(model, PaddleClas, SSLD, torchvision, official code) cells for each model."""
    rows = []
    for name in names:
        entries = published_weights(name)
        family = model_class(name).__name__ if model_class(name) else ""
        imagenet, ssld, tv = pick(entries, "imagenet"), pick(entries, "ssld"), pick(entries, "torchvision")
        official = [f"`--format {fmt}` ({OFFICIAL[fmt]})" for fmt in sorted(OFFICIAL)
                    if fmt in WEIGHT_FORMATS and family in WEIGHT_FORMATS.get(fmt).families]
        rows.append((
            name,
            _cell(f"`pretrained: True` ([{imagenet.file_name}]({imagenet.url}))" if imagenet else None),
            _cell(f"`use_ssld: True` ([{ssld.file_name}]({ssld.url}))" if ssld else None),
            _cell(f"[{tv.file_name}]({tv.url})" if tv else None),
            _cell(", ".join(official) or None),
        ))
    return rows


def weights_markdown(names: Iterable[str]) -> str:
    lines = ["| Model | PaddleClas ImageNet | PaddleClas SSLD | torchvision | converter for official code |",
             "|:--|:--|:--|:--|:--|"]
    lines += ["| " + " | ".join(row) + " |" for row in weights_rows(names)]
    return "\n".join(lines) + "\n"
