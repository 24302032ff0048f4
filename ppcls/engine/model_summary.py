"""A model built from an ``Arch`` section, counted: parameters and MACs, before and after reparameterization.

It builds models, so it sits at the engine level (``tools/model_summary.py`` uses it); the counting
itself is :mod:`ppcls.utils.flops`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ppcls.arch import build_model, model_class
from ppcls.arch.layers.reparam import reparameterize_model
from ppcls.arch.weights.table import weights_markdown
from ppcls.registry import MODELS
from ppcls.utils.errors import ConfigError
from ppcls.utils.flops import ModelSummary, count_flops, count_params, markdown_table, replace_between_markers


def summarize_model(arch_cfg: Mapping[str, Any], input_shape: Sequence[int] = (3, 224, 224),
                    deploy: bool = True) -> ModelSummary:
    """Build the model of ``arch_cfg`` (an ``Arch`` section) and count it at ``input_shape`` (C, H, W).

    With ``deploy`` the same model is then reparameterized (BN folded, branches fused) and counted again.
    """
    chw = tuple(int(s) for s in input_shape)
    if len(chw) != 3 or any(s < 1 for s in chw):
        raise ConfigError(f"input shape: expected three positive sizes C,H,W, got {list(input_shape)}")
    model = build_model(arch_cfg)
    summary = ModelSummary(
        name=str(arch_cfg["name"]), input_shape=chw, params=count_params(model),
        trainable_params=count_params(model, trainable_only=True), macs=count_flops(model, (1, *chw)),
    )
    if deploy:
        reparameterize_model(model)
        summary.deploy_params = count_params(model)
        summary.deploy_macs = count_flops(model, (1, *chw))
    return summary


# ----------------------------------------------------------------------------- docs/model_zoo.md
# One home for the model-zoo document's tables: tools/gen_model_files.py (with the TIPC configs) and
# tools/model_summary.py --all --markdown both write them through zoo_doc.


def _numbers(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def families_markdown() -> str:
    """One row per family: its models, network class, input size, normalisation and recipe folder."""
    lines = ["| Family | Models | Network | Input | Mean | Std | Recipes |", "|:--|:--|:--|:-:|:-:|:-:|:--|"]
    for family in sorted({MODELS.metadata(n)["family"] for n in MODELS.names()}):
        names = MODELS.list(family=family)
        metas = [MODELS.metadata(n) for n in names]
        classes = sorted({model_class(n).__name__ for n in names})
        inputs = sorted({"x".join(map(str, m["input_size"])) for m in metas})
        means = sorted({_numbers(m["mean"]) for m in metas})
        stds = sorted({_numbers(m["std"]) for m in metas})
        shown = ", ".join(f"{n} (generic: `scale`)" if MODELS.metadata(n)["generic"] else n for n in names)
        lines.append(f"| {family} | {shown} | {', '.join(classes)} | {'; '.join(inputs)} | {'; '.join(means)} | "
                     f"{'; '.join(stds)} | `configs/ImageNet/{family}/` |")
    return "\n".join(lines) + "\n"


def zoo_markdown() -> str:
    """The model-zoo table: every model counted at its registered input size with a 1000-class head."""
    return markdown_table(summarize_model({"name": n, "class_num": 1000}, MODELS.metadata(n)["input_size"])
                          for n in MODELS.names())


def zoo_doc(text: str, path: str = "docs/model_zoo.md") -> str:
    """``text`` with its generated tables rewritten: model-zoo (required), and families and weights where
    their markers are."""
    text = replace_between_markers(text, zoo_markdown(), path, name="model-zoo")
    if "<!-- families:start -->" in text:
        text = replace_between_markers(text, families_markdown(), path, name="families")
    if "<!-- weights:start -->" in text:
        text = replace_between_markers(text, weights_markdown(MODELS.names()), path, name="weights")
    return text
