"""Checkpoints of the official ParNet code (imankgoyal/NonDeepNetworks, timm-based) -> ParNet_*.

The authors' ``SimpNet`` wraps every layer as ``RepVGGOur.block``; our names drop that level:

- ``inits.0.{0,1}.block`` -> ``downsamples.0.{0,1}``; ``inits.{1,2}.block`` -> ``downsamples.{1,2}``
- ``streams.i.j.block`` -> ``streams.i.j``; ``downsamples_2.0.block`` -> ``stream_downsample``
- ``downsamples_2.1.{0.b1,0.b2,2.block}`` -> ``fusions.0.{bn_stream,bn_fused,block}``;
  ``combine.{0.b1,0.b2,2.block}`` -> ``fusions.1.{...}``; ``combine.3.block`` -> ``final``
- in a block: ``rbr_dense`` -> ``conv3x3``, ``rbr_1x1`` -> ``conv1x1``, ``rbr_identity`` ->
  ``identity``, ``se.cvsig.conv`` -> ``sse.conv``; ``head.fc`` -> ``fc``; BN stats renamed.

Model options: every released config (``imagenet/models/*.yaml``) sets
``additional_branches: [[swish]]``, a list holding a list, so ``RepVGGOur``'s test
``'swish' in additional_branches`` (``simplenet_impl/simpnet.py``) is False and all blocks use
ReLU: ``act: relu`` for S/M/L/XL. The rest equals our defaults: SSE (no bias, ``2 * sigmoid``
on shape-changing blocks) on every block, 2x2 average pool before the stride-2 1x1 branch,
fusion BNs + interleave + 2-group block + shuffle, padding 1, BN eps 1e-5, average-pool head
(its dropout, 0 or 0.1, is off in eval).

The checkpoint's EMA copy is preferred (see ``_unwrap``); ``validate_models.sh`` runs without
``--use-ema`` and so evaluates ``state_dict``: to use that copy, save it as a bare state dict.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ppcls.registry import WEIGHT_FORMATS

from ..base import FamilyRules, WeightFormat, detect_by_markers, rule_table, strip_prefix, torch_bn

_block = rule_table(
    (r"rbr_dense\.(conv|bn)\.(.+)", r"conv3x3.\1.\2"),
    (r"rbr_1x1\.(1\.)?(conv|bn)\.(.+)", r"conv1x1.\1\2.\3"),  # "1." on stride 2 (after the pool)
    (r"rbr_identity\.(.+)", r"identity.\1"),
    (r"se\.cvsig\.conv\.weight", "sse.conv.weight"),
)


def _in_block(prefix: str) -> Callable[[re.Match[str]], str | None]:
    """Replacement for a row whose last group is the key inside one ``RepVGGOur.block``."""

    def repl(m: re.Match[str]) -> str | None:
        inner = _block(m.group(m.lastindex))
        return None if inner is None else m.expand(prefix) + inner

    return repl


_rename = torch_bn(
    rule_table(
        (r"inits\.0\.([01])\.block\.(.+)", _in_block(r"downsamples.0.\1.")),
        (r"inits\.([12])\.block\.(.+)", _in_block(r"downsamples.\1.")),
        (r"streams\.(\d+)\.(\d+)\.block\.(.+)", _in_block(r"streams.\1.\2.")),
        (r"downsamples_2\.0\.block\.(.+)", _in_block("stream_downsample.")),
        (r"downsamples_2\.1\.0\.b1\.(.+)", r"fusions.0.bn_stream.\1"),
        (r"downsamples_2\.1\.0\.b2\.(.+)", r"fusions.0.bn_fused.\1"),
        (r"downsamples_2\.1\.2\.block\.(.+)", _in_block("fusions.0.block.")),
        (r"combine\.0\.b1\.(.+)", r"fusions.1.bn_stream.\1"),
        (r"combine\.0\.b2\.(.+)", r"fusions.1.bn_fused.\1"),
        (r"combine\.2\.block\.(.+)", _in_block("fusions.1.block.")),
        (r"combine\.3\.block\.(.+)", _in_block("final.")),
        (r"head\.fc\.(weight|bias)", r"fc.\1"),
    )
)


def _unwrap(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The model's state dict from a timm training checkpoint, preferring the EMA copy.

    timm's ``load_checkpoint(use_ema=True)`` and the authors' multi-GPU configs
    (``use_ema: True``) evaluate ``state_dict_ema``, the weights a ``--model-ema`` run (all
    released recipes) is meant to be used with; a file without it gives ``state_dict``, and a
    bare state dict is taken as is. ``module.`` (DataParallel) is stripped, as timm does.
    """
    for key in ("state_dict_ema", "state_dict"):
        if isinstance(obj.get(key), Mapping):
            return strip_prefix(obj[key], "module.")
    return strip_prefix(obj, "module.")


# the official SimpNet's keys (PyTorch BN names, ``RepVGGOur.block`` level)
_detect = detect_by_markers({"ParNet": (
    "inits.0.0.block.rbr_dense.conv.weight",
    "inits.0.0.block.rbr_dense.bn.running_mean",
    "inits.0.0.block.se.cvsig.conv.weight",
)})


FORMAT = WeightFormat(
    name="parnet",
    description="official ParNet code (imankgoyal/NonDeepNetworks), timm .pth.tar checkpoint",
    framework="torch",
    detect=_detect,
    families={"ParNet": FamilyRules(rename=_rename, arch_options={"act": "relu"})},
    unwrap=_unwrap,
)
WEIGHT_FORMATS.register("parnet")(FORMAT)
