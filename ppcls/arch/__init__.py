"""Model building from the ``Arch`` config section."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import paddle.nn as nn

from ppcls.registry import MODELS
from ppcls.utils.errors import ConfigError, UnknownNameError, summarize

from . import backbone  # noqa: F401  (registers every family)
from .entry import model_arguments, model_class
from .family import MODEL_KEYS, ModelFamily
from .freeze import freeze_parameters
from .interface import ClassificationNet
from .pretrained import pretrained_path, resolve_weights
from .weights import WeightsError, WeightsSource, apply, identify

logger = logging.getLogger(__name__)

# Arch keys handled around the backbone rather than passed to its constructor.
WRAPPER_KEYS = ("name", "pretrained", "freeze_backbone", "freeze_params", "use_ssld")


def build_model(arch_cfg: Mapping[str, Any], weights: str | WeightsSource | None = None,
                head_must_fit: bool = False) -> nn.Layer:
    """Build the backbone named ``arch_cfg['name']`` with the other keys as arguments.

    Weights come from ``weights`` (``Global.pretrained_model``) when given, else from
    ``pretrained`` (True for the published file, a path or a URL); any known format. Since a
    load fills every tensor, this equals PaddleClas's order (pretrained, then pretrained_model
    over it) without reading a file whose tensors would all be replaced. Model options a
    file's publisher needs (pooling mode, activation, dropout scaling) are applied unless
    ``Arch`` sets them itself, and recorded as ``model.publisher_options`` so checkpoints
    carry them. ``freeze_backbone``/``freeze_params`` freeze parameters
    (see :func:`ppcls.arch.freeze.freeze_parameters`). ``head_must_fit`` (evaluating, predicting,
    exporting): weights whose classifier has another class count are refused, not re-initialised.
    The class names a checkpoint of ours carries become ``model.class_names``.
    """
    if "name" not in arch_cfg:
        raise ConfigError("Arch.name: missing; name a registered model, e.g. PPLCNet_x1_0")
    name = arch_cfg["name"]
    entry = MODELS.get(name)
    kwargs = {k: v for k, v in arch_cfg.items() if k not in WRAPPER_KEYS}
    allowed = model_arguments(name)
    if allowed is not None:
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise UnknownNameError(
                f"Arch.{summarize(unknown[0], 80)}: not an argument of model {name}; "
                f"valid keys: {', '.join(sorted(set(allowed) | set(WRAPPER_KEYS)))}"
            )
    source = _weight_source(name, arch_cfg, weights)
    options = _source_options(source, kwargs) if source is not None else {}
    model = entry(**options, **kwargs)
    if source is not None:
        report = apply(model, source)
        if head_must_fit and report.reinitialised:
            raise WeightsError(
                f"{source.path}: its classifier ({', '.join(report.reinitialised)}) has another class count than "
                f"Arch.class_num={kwargs.get('class_num', 1000)}; set -o Arch.class_num to the class count the "
                "weights were trained with")
    model.publisher_options = options
    model.class_names = source.class_names if source is not None else None
    if arch_cfg.get("freeze_backbone") or arch_cfg.get("freeze_params"):
        freeze_parameters(
            model,
            freeze_backbone=bool(arch_cfg.get("freeze_backbone")),
            prefixes=arch_cfg.get("freeze_params") or (),
        )
    return model


def _weight_source(name: str, arch_cfg: Mapping[str, Any],
                   weights: str | WeightsSource | None) -> WeightsSource | None:
    """The weights file to load, read and recognised (not yet applied), or None."""
    pretrained = arch_cfg.get("pretrained")
    use_ssld = bool(arch_cfg.get("use_ssld"))
    if use_ssld and not pretrained:
        raise ConfigError("Arch.use_ssld: True needs Arch.pretrained: True (it picks PaddleClas's SSLD file)")
    if weights:
        if pretrained:
            logger.info("Global.pretrained_model is set, so Arch.pretrained (%s) is not read: every tensor comes "
                        "from Global.pretrained_model", pretrained)
        source = weights if isinstance(weights, WeightsSource) else identify(resolve_weights(str(weights)), name)
        logger.info("Global.pretrained_model: %s", source.path)
        return source
    if pretrained:
        source = identify(pretrained_path(name, pretrained, use_ssld), name)
        if pretrained is not True:  # the published file was logged with its tag when resolved
            logger.info("Arch.pretrained: %s", source.path)
        return source
    return None


def _source_options(source: WeightsSource, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Model options the file needs; ``Arch``'s own values win, with a warning when they differ."""
    options: dict[str, Any] = {}
    for key, value in source.arch_options.items():
        if key not in kwargs:
            options[key] = value
        elif kwargs[key] != value:
            logger.warning(
                "Arch.%s: %r kept as configured; %s was published with %s: %r, so outputs will differ from the "
                "publisher's", key, kwargs[key], source.path, key, value,
            )
    if options:
        logger.info("model options set for the weights' publisher (%s): %s", source.format, options)
    return options


__all__ = ["MODEL_KEYS", "WRAPPER_KEYS", "ClassificationNet", "ModelFamily", "build_model", "model_arguments",
           "model_class"]
