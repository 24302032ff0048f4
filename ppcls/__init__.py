"""ppcls: a PaddlePaddle image-classification framework for lightweight backbones.

The Python API (``import ppcls`` stays light: Paddle is imported on first use)::

    ppcls.list_models("PPLCNet_*")                  # registered model names
    model = ppcls.create_model("PPLCNet_x0_25", pretrained=True, num_classes=1000)
    predictor = ppcls.Predictor("inference/PPLCNet_x0_25_digits", channel_order="RGB")

The command line is ``ppcls <command>`` (:mod:`ppcls.commands`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

# Paddle warns on import that ccache (a C++ build cache for custom operators) is missing; the one
# operator compiled here (ppcls/ops) is built once and cached, so the warning is noise in every tool's output
warnings.filterwarnings("ignore", message="No ccache found")

__version__ = "0.1.0"
__all__ = ["Predictor", "create_model", "list_models", "__version__"]

if TYPE_CHECKING:
    from ppcls.predict import Predictor


def create_model(name: str, pretrained: bool | str = False, num_classes: int = 1000, **options: Any):
    """The registered model ``name`` (a ``paddle.nn.Layer``) with ``num_classes`` outputs.

    ``pretrained``: False (random initialisation), True (the published ImageNet weights, downloaded
    once), or a path/URL of weights in any supported format. Other keyword arguments are the
    model's own (``scale``, ``dropout_prob``, ...) or ``Arch`` keys such as ``freeze_backbone``.
    """
    from ppcls.arch import build_model

    arch: dict[str, Any] = {"name": name, "class_num": num_classes, **options}
    if pretrained:
        arch["pretrained"] = pretrained
    return build_model(arch)


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching the shell-style ``pattern`` (``"PPLCNet_*"``), sorted."""
    import ppcls.arch  # noqa: F401  (registers the model families)
    from ppcls.registry import MODELS

    return MODELS.list(pattern)


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from ppcls.predict import Predictor

        return Predictor
    raise AttributeError(f"module 'ppcls' has no attribute {name!r}")
