"""Write another code base's checkpoint as a file of our own format (``tools/convert_weights.py``).

The written ``.pdparams`` holds our model's keys plus, under :data:`META_KEY`, the family and
the model options the publisher's architecture needs, so loading it later rebuilds the same
network (``Arch.pretrained`` / ``Global.pretrained_model`` apply the options).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import paddle

from ppcls.arch import build_model, model_class
from ppcls.utils.io import atomic_write

from .loader import META_KEY, NATIVE, Conversion, WeightsError, convert, identify

logger = logging.getLogger(__name__)


@dataclass
class ConvertResult:
    """What :func:`convert_file` wrote."""

    out: str
    format: str
    family: str
    model: str
    arch_options: dict[str, Any]
    conversion: Conversion


def convert_file(src: str, model_name: str, out: str, fmt: str = "auto", class_num: int | None = None) -> ConvertResult:
    """Convert ``src`` (any known format) for ``model_name`` and write it atomically to ``out``.

    The head keeps the file's class count unless ``class_num`` says otherwise; a file whose
    head does not match ``class_num`` is refused (a converted file must be complete).
    """
    source = identify(src, model_name, fmt)
    if source.format == NATIVE and not source.arch_options and source.family is None:
        logger.info("%s is already in this project's format; it is checked and copied", src)
    family = model_class(model_name).__name__ if model_class(model_name) else model_name
    arch: dict[str, Any] = {"name": model_name, **source.arch_options}
    if class_num is not None:
        arch["class_num"] = class_num
    model = build_model(arch)
    conversion = convert(source, model)
    if conversion.reinitialised:
        raise WeightsError(
            f"{src}: the classifier ({', '.join(conversion.reinitialised)}) has another class count than "
            f"{model_name} with class_num {class_num or 1000}; pass --class_num with the file's class count"
        )
    state: dict[str, Any] = dict(conversion.state)
    state[META_KEY] = {"family": family, "arch_options": dict(source.arch_options), "source_format": source.format,
                       "model": model_name}
    atomic_write(out, lambda tmp: paddle.save(state, tmp))
    return ConvertResult(out, source.format, family, model_name, dict(source.arch_options), conversion)
