"""torchvision's published ImageNet weights (plain PyTorch state dicts, e.g. squeezenet1_1-b8a52dc0.pth).

ShuffleNetV2 (shufflenetv2_x0.5 / x1 / x1_5 / x2_0 -> ShuffleNetV2_x0_5 ... x2_0):
``conv1.0/.1`` and ``conv5.0/.1`` -> ``conv1|conv5.conv/.bn``; ``stage{2,3,4}.{j}`` ->
``stages.{0,1,2}.{j}``; ``branch1.{0,1,2,3}`` -> ``conv_dw_1``/``conv_linear_1`` conv and bn;
``branch2.{0,1,3,4,5,6}`` -> ``conv_pw``/``conv_dw``/``conv_linear`` conv and bn (suffix ``_2`` in
a stage's first, stride-2 unit); ``fc`` -> ``fc``. Same architecture: no model options.
SqueezeNet (squeezenet1_0 / 1_1 -> SqueezeNet1_0 / 1_1): ``features.0`` -> ``stem.conv``;
``features.{k}.{squeeze,expand1x1,expand3x3}`` -> ``features.{k-2}.<same>.conv`` (their
``features.0/1`` are our stem conv and its ReLU); ``classifier.1`` -> ``final_conv.conv``.
Needs ceil-mode pools, upscale-in-train dropout and, for 1.1, an unpadded stem.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ppcls.registry import WEIGHT_FORMATS

from ..base import FamilyRules, WeightFormat, detect_by_markers, rule_table, strip_prefix, torch_bn

_BN = r"(weight|bias|_mean|_variance)"  # BatchNorm leaves after torch_bn's suffix renaming

# torchvision's Sequential index inside a unit branch -> (our block, conv or bn); the
# missing indices are ReLUs, which hold no tensors
_BRANCH1 = {0: ("conv_dw_1", "conv"), 1: ("conv_dw_1", "bn"), 2: ("conv_linear_1", "conv"),
            3: ("conv_linear_1", "bn")}
_BRANCH2 = {0: ("conv_pw", "conv"), 1: ("conv_pw", "bn"), 3: ("conv_dw", "conv"), 4: ("conv_dw", "bn"),
            5: ("conv_linear", "conv"), 6: ("conv_linear", "bn")}


def _shufflenet_unit(m: re.Match) -> str:
    """``stage{s}.{j}.branch{b}.{i}.{leaf}`` -> our ShuffleDownUnit / ShuffleUnit key."""
    stage, unit, branch, index, leaf = int(m[1]), int(m[2]), int(m[3]), int(m[4]), m[5]
    block, part = (_BRANCH1 if branch == 1 else _BRANCH2)[index]
    if branch == 2 and unit == 0:
        block += "_2"  # a stage's first unit (ShuffleDownUnit) names its second branch _2
    return f"stages.{stage - 2}.{unit}.{block}.{part}.{leaf}"


SHUFFLENET_V2 = FamilyRules(
    rename=torch_bn(
        rule_table(
            (r"(conv1|conv5)\.0\.weight", r"\1.conv.weight"),
            (rf"(conv1|conv5)\.1\.{_BN}", r"\1.bn.\2"),
            (r"stage([234])\.(\d+)\.branch(1)\.([0-3])\." + _BN, _shufflenet_unit),
            (r"stage([234])\.(\d+)\.branch(2)\.([013-6])\." + _BN, _shufflenet_unit),
            (r"fc\.(weight|bias)", r"fc.\1"),
        )
    ),
)


def _squeezenet_fire(m: re.Match) -> str:
    """``features.{k}.<conv>.{leaf}`` -> ``features.{k-2}.<conv>.conv.{leaf}``."""
    return f"features.{int(m[1]) - 2}.{m[2]}.conv.{m[3]}"


def _squeezenet_options(model_name: str) -> dict[str, Any]:
    """Model options reproducing torchvision's SqueezeNet ``model_name`` (1.1's stem is unpadded)."""
    options: dict[str, Any] = {"ceil_mode": True, "dropout_mode": "upscale_in_train"}
    if model_name.endswith("1_1"):
        options["stem_padding"] = 0  # our table pads 1.1's 3x3 stem by 1 as PaddleClas does
    return options


SQUEEZENET = FamilyRules(
    rename=rule_table(
        (r"features\.0\.(weight|bias)", r"stem.conv.\1"),
        # Fires start at index 3 (after conv, ReLU, pool): a lower index is no Fire of theirs
        (r"features\.([3-9]|[1-9]\d+)\.(squeeze|expand1x1|expand3x3)\.(weight|bias)", _squeezenet_fire),
        (r"classifier\.1\.(weight|bias)", r"final_conv.conv.\1"),
    ),
    arch_options=_squeezenet_options,
)

# keys every torchvision checkpoint of the family has, none of them ours or PaddleClas's
_MARKERS: dict[str, tuple[str, ...]] = {
    "ShuffleNetV2": ("conv1.0.weight", "conv1.1.running_mean", "stage2.0.branch1.0.weight",
                     "stage2.0.branch2.0.weight", "conv5.0.weight", "fc.weight"),
    "SqueezeNet": ("features.0.weight", "features.3.squeeze.weight", "features.3.expand3x3.weight",
                   "classifier.1.weight"),
}


detect = detect_by_markers(_MARKERS)


def unwrap(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The state dict of a published file, or of a torchvision reference-training checkpoint."""
    inner = obj.get("model")
    state = inner if isinstance(inner, Mapping) else obj
    return strip_prefix(state, "module.")


FORMAT = WeightFormat(
    name="torchvision",
    description="torchvision's published ImageNet weights (PyTorch state dict)",
    framework="torch",
    detect=detect,
    families={"ShuffleNetV2": SHUFFLENET_V2, "SqueezeNet": SQUEEZENET},
    unwrap=unwrap,
)
WEIGHT_FORMATS.register("torchvision")(FORMAT)

__all__ = ["FORMAT", "detect"]
