"""What the registry knows about each model, declared once beside its entry function.

A model file names its family once (``FAMILY = ModelFamily("PPLCNet")``: the defaults every
width shares) and gives each entry its own values::

    @MODELS.register(**FAMILY.entry(params=2_963_464, weights=paddleclas("PPLCNet_x1_0", ...)))
    def PPLCNet_x1_0(**kwargs) -> PPLCNet: ...

``MODELS.metadata(name)`` then holds the keys of :data:`MODEL_KEYS`, and everything that lists
models derives from it: the generic model tests (``tests/arch/test_models.py``), the TIPC configs
and the docs tables (``tools/gen_model_files.py``), ``Arch.pretrained: True``
(:mod:`ppcls.arch.pretrained`). ``MODELS.list("PPLCNet_*")`` or ``MODELS.list(family="ParNet")``
select models, as timm's ``list_models`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .weights.published import Published

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# key -> what it holds; every registered model carries all of them
MODEL_KEYS: Mapping[str, str] = {
    "family": "the family as PaddleClas's folders spell it: configs/ImageNet/<family>/, test_tipc/configs/<family>/",
    "input_size": "default input (C, H, W) of the recipes and the model zoo's counts",
    "mean": "per-channel normalisation mean of the recipes (after scaling pixels to [0, 1])",
    "std": "per-channel normalisation standard deviation of the recipes",
    "params": "Paddle's parameter count at class_num=1000 (BatchNorm statistics included)",
    "weights": "published weights files (ppcls.arch.weights.published.Published), maybe none",
    "generic": "True for a family-wide constructor whose variant comes from Arch keys (PaddleClas's PPLCNet "
               "+ scale): no recipe or TIPC config of its own",
}


@dataclass(frozen=True)
class ModelFamily:
    """The defaults every model of one backbone family shares; ``entry`` adds one model's own values."""

    name: str
    input_size: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def entry(self, params: int, weights: Published | Iterable[Published] = (), generic: bool = False,
              **overrides: Any) -> dict[str, Any]:
        """Registry metadata of one model: the family's defaults, ``overrides`` of them, and its own values."""
        unknown = sorted(set(overrides) - {"input_size", "mean", "std"})
        if unknown:
            raise TypeError(f"ModelFamily.entry: {', '.join(unknown)} is not a family default; see MODEL_KEYS")
        files = (weights,) if isinstance(weights, Published) else tuple(weights)
        meta = {"family": self.name, "input_size": self.input_size, "mean": self.mean, "std": self.std,
                "params": int(params), "weights": files, "generic": bool(generic)}
        meta.update({k: tuple(v) for k, v in overrides.items()})
        return meta


def missing_keys(metadata: Mapping[str, Any]) -> list[str]:
    """The :data:`MODEL_KEYS` a model's registry metadata lacks (a test asserts there are none)."""
    return [k for k in MODEL_KEYS if k not in metadata]


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "MODEL_KEYS", "ModelFamily", "missing_keys"]
