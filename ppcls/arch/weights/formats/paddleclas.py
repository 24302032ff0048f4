"""PaddleClas 2.x weights (``<Model>_pretrained.pdparams``): Paddle state dicts keyed by attribute path.

Same framework and layouts, so values pass unchanged; only the names differ. Per family:

* PPLCNet: our names except the SE convs, ``se.conv1/conv2`` -> ``se.reduce/expand``. Its head
  dropout is ``downscale_in_infer`` (inference logits are ``fc(0.8 x)``): ``dropout_mode``.
* ShuffleNetV2: ``_conv1`` / ``_last_conv`` / ``_fc`` -> ``conv1`` / ``conv5`` / ``fc``; unit
  ``{s}_{i}`` (stage 2-4, 1-based) -> ``stages.{s-2}.{i-1}``; ``_conv_*`` -> ``conv_*``;
  ``_conv`` / ``_batch_norm`` -> ``conv`` / ``bn``.
* SqueezeNet: ``_conv`` -> ``stem.conv``; Fire ``_conv{k}`` (k = 1..8) -> ``features.{j}``, j the
  Fire's index among our features, pools counted, so it depends on the version; its
  ``_conv`` / ``_conv_path1`` / ``_conv_path2`` -> ``squeeze`` / ``expand1x1`` / ``expand3x3``;
  ``_conv9`` -> ``final_conv.conv``. Both versions' files have the same keys, so the rule is
  built for the model being filled (``rename_for``); a 1.0 file in a 1.1 model fails on shapes.
* MobileNeXt: ``features.0.{0,1}`` -> ``stem.{conv,bn}``; block ``features.{b}`` ->
  ``blocks.{b-1}``, where ``conv.{i}`` (a Sequential index) names a conv or BN by the block's
  layout: full sandglass, or a stage's width-changing first block (1x1s, plus the dw if stride 2).
  ``classifier.1`` -> ``fc``.
* PeleeNet: ``features.stemblock.stem1/stem2a/stem2b/stem3`` -> ``stem.stem1/branch_conv.0/
  branch_conv.1/fuse``; ``features.denseblock{i}.denselayer{j}.branch{1a,1b,2a,2b,2c}`` ->
  ``stages.{i-1}.layers.{j-1}.branch{1,2}.{0,1,2}``; ``features.transition{i}`` ->
  ``stages.{i-1}.transition``; ``norm`` -> ``bn``; ``classifier`` -> ``fc``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ppcls.registry import WEIGHT_FORMATS

from ..base import FamilyRules, WeightFormat, detect_by_markers, rule_table

_BN = r"(?:weight|bias|_mean|_variance)"
# a conv weight or a BatchNorm leaf under the source's names for the two sublayers
_CONV_BN = rf"(conv\.weight|bn\.{_BN})"
_UNDERSCORE_CONV_BN = rf"(_conv\.weight|_batch_norm\.{_BN})"
_CONV_NORM = rf"(conv\.weight|norm\.{_BN})"
_SUBLAYER = {"_conv": "conv", "_batch_norm": "bn", "conv": "conv", "norm": "bn", "bn": "bn"}


def _leaf(leaf: str) -> str:
    """``_batch_norm._mean`` / ``norm._mean`` / ``_conv.weight`` -> ``bn._mean`` / ``conv.weight``."""
    layer, rest = leaf.split(".", 1)
    return f"{_SUBLAYER[layer]}.{rest}"


PPLCNET = FamilyRules(
    rename=rule_table(
        (r"conv1\." + _CONV_BN, r"conv1.\1"),
        (r"(blocks[2-6]\.\d+\.(?:dw_conv|pw_conv))\." + _CONV_BN, r"\1.\2"),
        (r"(blocks[2-6]\.\d+)\.se\.conv1\.(weight|bias)", r"\1.se.reduce.\2"),
        (r"(blocks[2-6]\.\d+)\.se\.conv2\.(weight|bias)", r"\1.se.expand.\2"),
        (r"last_conv\.weight", "last_conv.weight"),
        (r"fc\.(weight|bias)", r"fc.\1"),
    ),
    arch_options={"dropout_mode": "downscale_in_infer"},
)


def _shufflenet_unit(m: re.Match) -> str:
    """``{s}_{i}._<conv>.<leaf>`` -> ``stages.{s-2}.{i-1}.<conv>.<leaf>``."""
    return f"stages.{int(m[1]) - 2}.{int(m[2]) - 1}.{m[3]}.{_leaf(m[4])}"


_SHUFFLE_CONVS = "conv_pw|conv_dw|conv_linear|conv_dw_1|conv_linear_1|conv_pw_2|conv_dw_2|conv_linear_2"
SHUFFLENET_V2 = FamilyRules(
    rename=rule_table(
        (r"_conv1\." + _UNDERSCORE_CONV_BN, lambda m: f"conv1.{_leaf(m[1])}"),
        (rf"([2-4])_([1-9]\d*)\._({_SHUFFLE_CONVS})\." + _UNDERSCORE_CONV_BN, _shufflenet_unit),
        (r"_last_conv\." + _UNDERSCORE_CONV_BN, lambda m: f"conv5.{_leaf(m[1])}"),
        (r"_fc\.(weight|bias)", r"fc.\1"),
    ),
)

# PaddleClas's Fire _conv{k} (k = 1..8) -> its index in our SqueezeNet.features, where the
# max pools sit between the Fires (1.0: after Fires 3 and 7; 1.1: after Fires 2 and 4)
_SQUEEZENET_FIRES: Mapping[str, tuple[int, ...]] = {
    "1.0": (1, 2, 3, 5, 6, 7, 8, 10),
    "1.1": (1, 2, 4, 5, 7, 8, 9, 10),
}
_FIRE_PARTS = {"_conv": "squeeze", "_conv_path1": "expand1x1", "_conv_path2": "expand3x3"}


def _squeezenet_rename(model: Any) -> Callable[[str], str | None]:
    """Rules for our SqueezeNet ``model``: Fire ``_conv{k}`` lands at its version's index."""
    fires = _SQUEEZENET_FIRES[model.version]

    def fire(m: re.Match) -> str:
        return f"features.{fires[int(m[1]) - 1]}.{_FIRE_PARTS[m[2]]}.conv.{m[3]}"

    return rule_table(
        (r"_conv\.(weight|bias)", r"stem.conv.\1"),
        (r"_conv([1-8])\.(_conv|_conv_path1|_conv_path2)\._conv\.(weight|bias)", fire),
        (r"_conv9\.(weight|bias)", r"final_conv.conv.\1"),
    )


SQUEEZENET = FamilyRules(
    rename_for=_squeezenet_rename,
    # PaddleClas's: floor-mode pools, the version's own stem padding, dropout scaled at inference
    arch_options={"ceil_mode": False, "stem_padding": None, "dropout_mode": "downscale_in_infer"},
)

# Sequential index inside a PaddleClas SGBlock's ``conv`` -> our sublayer (ReLU6s hold nothing)
_FULL = {0: "dw_in.conv", 1: "dw_in.bn", 3: "reduce.conv", 4: "reduce.bn", 5: "expand.conv",
         6: "expand.bn", 8: "dw_out.conv", 9: "dw_out.bn"}
_PW = {0: "reduce.conv", 1: "reduce.bn", 2: "expand.conv", 3: "expand.bn"}
_PW_DW = {**_PW, 5: "dw_out.conv", 6: "dw_out.bn"}
# block features.{b} of PaddleClas's cfgs (every width) -> layout: a stage's first block drops the
# leading dw when its width changes (the trailing dw stays only at stride 2: blocks 3, 6, 13;
# stride 1: blocks 9, 17); the t=2 block, one-block stride-1 stages and repeats are full
_MOBILENEXT_LAYOUT: Mapping[int, Mapping[int, str]] = {
    **{b: _FULL for b in range(1, 21)},
    **{b: _PW_DW for b in (3, 6, 13)},
    **{b: _PW for b in (9, 17)},
}


def _mobilenext_block(m: re.Match) -> str | None:
    """``features.{b}.conv.{i}.<leaf>`` -> ``blocks.{b-1}.<sublayer>.<leaf>`` by the block's layout."""
    block, index, leaf = int(m[1]), int(m[2]), m[3]
    part = _MOBILENEXT_LAYOUT.get(block, {}).get(index)
    if part is None or (part.endswith(".conv") and leaf != "weight"):
        return None  # not a tensor of PaddleClas's MobileNeXt: reported as unused
    return f"blocks.{block - 1}.{part}.{leaf}"


MOBILENEXT = FamilyRules(
    rename=rule_table(
        (r"features\.0\.0\.weight", "stem.conv.weight"),
        (rf"features\.0\.1\.({_BN})", r"stem.bn.\1"),
        (rf"features\.([1-9]\d*)\.conv\.(\d+)\.({_BN})", _mobilenext_block),
        (r"classifier\.1\.(weight|bias)", r"fc.\1"),
    ),
)

_PELEE_STEM = {"stem1": "stem1", "stem2a": "branch_conv.0", "stem2b": "branch_conv.1", "stem3": "fuse"}
_PELEE_BRANCH = {"1a": "branch1.0", "1b": "branch1.1", "2a": "branch2.0", "2b": "branch2.1", "2c": "branch2.2"}


def _pelee_dense(m: re.Match) -> str:
    """``denseblock{i}.denselayer{j}.branch{..}`` -> ``stages.{i-1}.layers.{j-1}.branch{1,2}.{k}``."""
    return f"stages.{int(m[1]) - 1}.layers.{int(m[2]) - 1}.{_PELEE_BRANCH[m[3]]}.{_leaf(m[4])}"


PELEENET = FamilyRules(
    rename=rule_table(
        (r"features\.stemblock\.(stem1|stem2a|stem2b|stem3)\." + _CONV_NORM,
         lambda m: f"stem.{_PELEE_STEM[m[1]]}.{_leaf(m[2])}"),
        (r"features\.denseblock([1-4])\.denselayer([1-9]\d*)\.branch(1a|1b|2a|2b|2c)\." + _CONV_NORM, _pelee_dense),
        (r"features\.transition([1-4])\." + _CONV_NORM, lambda m: f"stages.{int(m[1]) - 1}.transition.{_leaf(m[2])}"),
        (r"classifier\.(weight|bias)", r"fc.\1"),
    ),
)

# keys every PaddleClas checkpoint of the family has; none is ours, torchvision's or the
# official PyTorch code's (those name BatchNorm statistics running_mean)
_MARKERS: Mapping[str, tuple[str, ...]] = {
    "PPLCNet": ("conv1.conv.weight", "conv1.bn._mean", "blocks6.0.se.conv1.weight", "last_conv.weight",
                "fc.weight"),
    "ShuffleNetV2": ("_conv1._conv.weight", "_conv1._batch_norm._mean", "2_1._conv_dw_1._conv.weight",
                     "_last_conv._conv.weight", "_fc.weight"),
    "SqueezeNet": ("_conv.weight", "_conv1._conv._conv.weight", "_conv8._conv_path2._conv.weight",
                   "_conv9.weight"),
    "MobileNeXt": ("features.0.0.weight", "features.0.1._mean", "features.1.conv.0.weight",
                   "classifier.1.weight"),
    "PeleeNet": ("features.stemblock.stem1.conv.weight", "features.stemblock.stem1.norm._mean",
                 "features.transition4.conv.weight", "classifier.weight"),
}


detect = detect_by_markers(_MARKERS)


FORMAT = WeightFormat(
    name="paddleclas",
    description="PaddleClas 2.x .pdparams (keys are its models' attribute paths)",
    framework="paddle",
    detect=detect,
    families={"PPLCNet": PPLCNET, "ShuffleNetV2": SHUFFLENET_V2, "SqueezeNet": SQUEEZENET,
              "MobileNeXt": MOBILENEXT, "PeleeNet": PELEENET},
)
WEIGHT_FORMATS.register("paddleclas")(FORMAT)

__all__ = ["FORMAT", "detect"]
