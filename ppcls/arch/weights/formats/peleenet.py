"""Checkpoints of the official PeleeNet code (Robert-JunWang/PeleeNet, PyTorch) -> PeleeNet.

``main.py`` saves ``{"epoch", "arch", "state_dict", "best_acc1", "optimizer"}`` from a
``DataParallel`` model, so keys start with ``module.``. Each ``BasicConv2d`` is ``conv`` +
``norm``; ours is ``conv`` + ``bn``. Renames (``i``, ``j`` 1-based there, 0-based here):

- ``features.stemblock.{stem1,stem2a,stem2b,stem3}`` -> ``stem.{stem1,branch_conv.0,branch_conv.1,fuse}``
- ``features.denseblock<i>.denselayer<j>.branch{1a,1b,2a,2b,2c}`` ->
  ``stages.<i-1>.layers.<j-1>.{branch1.0,branch1.1,branch2.0,branch2.1,branch2.2}``
- ``features.transition<i>`` -> ``stages.<i-1>.transition``; ``classifier`` -> ``fc``

No model options: padding, pooling (floor mode), dropout (eval: off) and BN eps (1e-5) of the
official ``peleenet.py`` equal our defaults. PaddleClas's port keeps these names but stores
Paddle BN statistics (``_mean``/``_variance``), which this format does not claim.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ppcls.registry import WEIGHT_FORMATS

from ..base import FamilyRules, WeightFormat, detect_by_markers, rule_table, strip_prefix, torch_bn

_STEM = {"stem1": "stem1", "stem2a": "branch_conv.0", "stem2b": "branch_conv.1", "stem3": "fuse"}
_BRANCH = {"1a": "branch1.0", "1b": "branch1.1", "2a": "branch2.0", "2b": "branch2.1", "2c": "branch2.2"}
_PART = {"conv": "conv", "norm": "bn"}


def _stem(m: re.Match[str]) -> str:
    return f"stem.{_STEM[m.group(1)]}.{_PART[m.group(2)]}.{m.group(3)}"


def _dense(m: re.Match[str]) -> str:
    stage, layer = int(m.group(1)) - 1, int(m.group(2)) - 1
    return f"stages.{stage}.layers.{layer}.{_BRANCH[m.group(3)]}.{_PART[m.group(4)]}.{m.group(5)}"


def _transition(m: re.Match[str]) -> str:
    return f"stages.{int(m.group(1)) - 1}.transition.{_PART[m.group(2)]}.{m.group(3)}"


_rename = torch_bn(
    rule_table(
        (r"features\.stemblock\.(stem1|stem2a|stem2b|stem3)\.(conv|norm)\.(.+)", _stem),
        (r"features\.denseblock([1-9])\.denselayer(\d+)\.branch(1a|1b|2a|2b|2c)\.(conv|norm)\.(.+)", _dense),
        (r"features\.transition([1-9])\.(conv|norm)\.(.+)", _transition),
        (r"classifier\.(weight|bias)", r"fc.\1"),
    )
)


def _unwrap(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """``state_dict`` of a ``main.py`` checkpoint (or a bare state dict), ``module.`` stripped."""
    state = obj["state_dict"] if isinstance(obj.get("state_dict"), Mapping) else obj
    return strip_prefix(state, "module.")


# the official keys: ``features.stemblock`` with PyTorch BN statistics
_detect = detect_by_markers({"PeleeNet": (
    "features.stemblock.stem1.conv.weight", "features.stemblock.stem1.norm.running_mean",
)})


FORMAT = WeightFormat(
    name="peleenet",
    description="official PeleeNet code (Robert-JunWang/PeleeNet), PyTorch .pth.tar checkpoint",
    framework="torch",
    detect=_detect,
    families={"PeleeNet": FamilyRules(rename=_rename)},
    unwrap=_unwrap,
)
WEIGHT_FORMATS.register("peleenet")(FORMAT)
