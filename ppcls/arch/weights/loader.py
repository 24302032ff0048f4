"""Load a weights file of any known format into a model, checking that every tensor is filled.

Steps: read the file (Paddle or PyTorch), recognise its format from the keys, rename by the
format's rules for the model's family, transform values (PyTorch Linear weights are stored
transposed), then check coverage: every model tensor filled exactly once with its own shape.
The one tolerated gap is the classifier when ``class_num`` differs from the file's (it keeps
its fresh initialisation, logged). Anything else stops with :class:`WeightsError`.

Files written by ``tools/convert_weights.py`` are in our own format and carry the model
options their publisher's architecture needs under :data:`META_KEY`.
"""

from __future__ import annotations

import argparse
import logging
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import paddle
import paddle.nn as nn

from ppcls.registry import WEIGHT_FORMATS
from ppcls.utils.errors import MissingFileError, UserError, summarize

from ..entry import model_arguments, model_class
from ..interface import ClassificationNet
from .base import DROP, WeightFormat

logger = logging.getLogger(__name__)

META_KEY = "__ppcls_meta__"
NATIVE = "ppcls"  # this project's own layout: keys are our models' state_dict keys
TORCH_SUFFIXES = (".pth", ".pt", ".tar", ".ckpt", ".bin")
SHOWN = 5  # keys listed per category in an error message


class WeightsError(UserError, ValueError):
    """A weights file that cannot fill the model: wrong format, wrong model, or gaps."""


@dataclass
class WeightsSource:
    """A read weights file, its recognised format and what it needs from the model."""

    path: str
    format: str
    family: str | None
    state: dict[str, np.ndarray]
    arch_options: dict[str, Any] = field(default_factory=dict)
    # what a checkpoint of ours says about the data it was trained on: class_num, class_names
    classes: dict[str, Any] = field(default_factory=dict)

    @property
    def class_names(self) -> list[str] | None:
        names = self.classes.get("class_names")
        return [str(n) for n in names] if isinstance(names, (list, tuple)) else None

    @property
    def class_num(self) -> int | None:
        n = self.classes.get("class_num")
        return int(n) if isinstance(n, int) and not isinstance(n, bool) else None


@dataclass
class LoadReport:
    """What a load did: counts, re-initialised classifier tensors, options used."""

    path: str
    format: str
    loaded: int
    total: int
    reinitialised: list[str]
    arch_options: dict[str, Any]


def known_formats() -> list[str]:
    return [NATIVE] + WEIGHT_FORMATS.names()


def _to_numpy(value: Any) -> np.ndarray | None:
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor
        return value.detach().cpu().numpy()
    if hasattr(value, "numpy"):  # paddle.Tensor
        return np.asarray(value.numpy())
    return None


def _torch_load(path: str) -> Any:
    try:
        import torch
    except ImportError:
        raise WeightsError(
            f"{path} is a PyTorch file; reading it needs PyTorch: pip install torch "
            "(only the conversion needs it, training does not)"
        ) from None
    # training checkpoints (timm, the official ParNet/PeleeNet code) pickle their argparse
    # arguments beside the weights; allow exactly that on top of torch's safe loader
    torch.serialization.add_safe_globals([argparse.Namespace])
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several unrelated types for a damaged file
        raise WeightsError(f"cannot read {path} as a PyTorch file: {type(e).__name__}: {str(e)[:300]}") from None


def _paddle_load(path: str) -> Any:
    try:
        return paddle.load(path, return_numpy=True)
    except Exception as e:  # paddle.load raises many types for a damaged or foreign file
        raise WeightsError(f"cannot read {path} as a Paddle weights file: {type(e).__name__}: {str(e)[:300]}") from None


def read_file(path: str) -> Mapping[str, Any]:
    """The object stored in ``path``: a Paddle ``.pdparams`` or a PyTorch file."""
    if not os.path.isfile(path):
        raise MissingFileError(f"weights file not found: {path}")
    torch_like = path.endswith(TORCH_SUFFIXES) or (not path.endswith(".pdparams") and zipfile.is_zipfile(path))
    obj = _torch_load(path) if torch_like else _paddle_load(path)
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path} holds a {type(obj).__name__}, not a mapping of tensor names to tensors")
    return obj


def _arrays(obj: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in obj.items():
        arr = _to_numpy(value)
        if arr is not None and isinstance(key, str):
            out[key] = arr
    return out


def identify(path: str, model_name: str | None = None, fmt: str = "auto") -> WeightsSource:
    """Read ``path`` and recognise its format (``fmt='auto'``) or take the named one.

    With ``model_name``, the source's ``arch_options`` are those the format needs for it.
    """
    source = _identify(path, fmt)
    if model_name is not None and source.format != NATIVE:
        cls = model_class(model_name)
        if cls is not None and cls.__name__ == source.family:
            source.arch_options = WEIGHT_FORMATS.get(source.format).rules(source.family).options_for(model_name)
    return source


def _identify(path: str, fmt: str) -> WeightsSource:
    obj = read_file(path)
    meta = obj.get(META_KEY) if isinstance(obj.get(META_KEY), Mapping) else None
    if meta is not None and fmt in ("auto", NATIVE):
        classes = {k: meta[k] for k in ("class_num", "class_names") if k in meta}
        return WeightsSource(path, NATIVE, meta.get("family"), _arrays(obj), dict(meta.get("arch_options") or {}),
                             classes)
    candidates = WEIGHT_FORMATS.names() if fmt == "auto" else [fmt]
    if fmt not in ("auto", NATIVE) and fmt not in WEIGHT_FORMATS:
        raise WeightsError(f"unknown weights format {summarize(fmt, 60)}; known formats: auto, {', '.join(known_formats())}")
    for name in candidates:
        wf: WeightFormat = WEIGHT_FORMATS.get(name)
        state = _arrays(wf.unwrap(obj) if wf.unwrap else obj)
        family = wf.detect(list(state))
        if family is not None:
            return WeightsSource(path, name, family, state)
        if fmt != "auto":
            raise WeightsError(
                f"{path} was read as format {name!r} ({wf.description}) but its keys are not that format's "
                f"(first keys: {_shown(list(state))}); try --format auto"
            )
    return WeightsSource(path, NATIVE, None, _arrays(obj))


def _family(model: nn.Layer) -> str:
    return type(model).__name__


def _linear_weight_keys(model: nn.Layer) -> set[str]:
    return {f"{name}.weight" if name else "weight" for name, layer in model.named_sublayers(include_self=True)
            if isinstance(layer, nn.Linear)}


def _classifier_prefix(model: nn.Layer) -> str | None:
    """Key prefix of the classifier, whose tensors may differ in class count (re-initialised then)."""
    return f"{model.classifier_name}." if isinstance(model, ClassificationNet) and model.head_names else None


def _shown(keys: Sequence[str]) -> str:
    keys = list(keys)
    more = f", ... ({len(keys)} in all)" if len(keys) > SHOWN else ""
    return ", ".join(k if len(k) <= 120 else summarize(k, 120) for k in keys[:SHOWN]) + more


def _describe(source: WeightsSource) -> str:
    if source.format == NATIVE:
        return f"{source.path} (read as format '{NATIVE}', this project's own)"
    wf = WEIGHT_FORMATS.get(source.format)
    return f"{source.path} (read as format '{source.format}': {wf.description}, {source.family})"


@dataclass
class Conversion:
    """A source's tensors under the model's keys, with what was left to the model."""

    state: dict[str, np.ndarray]
    reinitialised: list[str]
    mapping: list[tuple[str, str]]  # (source key, our key) of every filled tensor


def convert(source: WeightsSource, model: nn.Layer) -> Conversion:
    """``source``'s tensors under ``model``'s keys, checked.

    Raises :class:`WeightsError` unless every model tensor is filled exactly once with its own
    shape (the classifier excepted when only its class count differs).
    """
    own = {k: list(v.shape) for k, v in model.state_dict().items()}
    family = _family(model)
    if source.format == NATIVE:
        if source.family and source.family != family:
            raise WeightsError(f"{_describe(source)} holds a {source.family} model; the model is {family}")
        renamed = {k: (k, v) for k, v in source.state.items() if k != META_KEY}
        if own and sum(k in own for k in renamed) < 0.5 * max(1, min(len(renamed), len(own))):
            raise WeightsError(
                f"{source.path} is in no known weights format (its keys match none of the formats and fewer "
                f"than half of {family}'s own keys; first keys: {_shown(list(renamed))}). Known formats: "
                f"{', '.join(known_formats())}"
            )
        transform = None
    else:
        if source.family != family:
            raise WeightsError(f"{_describe(source)} is a checkpoint of a {source.family} model; the model is {family}")
        wf = WEIGHT_FORMATS.get(source.format)
        rules = wf.rules(family)
        renamed: dict[str, tuple[str, np.ndarray]] = {}
        unused: list[str] = []
        rename = rules.renamer(model)
        for key, value in source.state.items():
            target = rename(key)
            if target == DROP:
                continue
            if target is None:
                unused.append(key)
                continue
            if target in renamed:  # an internal invariant of the format's rules, not the user's file
                raise RuntimeError(
                    f"{_describe(source)}: both {renamed[target][0]} and {key} map to {target} (a bug in the "
                    "format's rules)"
                )
            renamed[target] = (key, value)
        linear = _linear_weight_keys(model) if wf.framework == "torch" else set()
        transform = rules.transform
        for target in list(renamed):
            key, value = renamed[target]
            if target in linear and value.ndim == 2:
                value = value.T
            renamed[target] = (key, value)
        if unused:
            renamed.update({f"<unused>{k}": (k, source.state[k]) for k in unused})
    head = _classifier_prefix(model)
    state: dict[str, np.ndarray] = {}
    mapping: list[tuple[str, str]] = []
    unused_keys, mismatched, reinit = [], [], []
    mismatched_targets = set()
    for target, (key, value) in renamed.items():
        if target not in own:
            unused_keys.append(key)
            continue
        if transform is not None:
            value = transform(target, value)
        if list(value.shape) != own[target]:
            if head and target.startswith(head):
                reinit.append(target)
                continue
            mismatched.append(f"{key} {list(value.shape)} -> {target} {own[target]}")
            mismatched_targets.add(target)
            continue
        state[target] = np.ascontiguousarray(value)
        mapping.append((key, target))
    unfilled = [k for k in own if k not in state and k not in reinit and k not in mismatched_targets]
    if unused_keys or mismatched or unfilled:
        parts = []
        if unused_keys:
            parts.append(f"{len(unused_keys)} file tensor(s) unused: {_shown(unused_keys)}")
        if unfilled:
            parts.append(f"{len(unfilled)} model tensor(s) unfilled: {_shown(unfilled)}")
        if mismatched:
            parts.append(f"{len(mismatched)} shape mismatch(es): {_shown(mismatched)}")
        raise WeightsError(
            f"{_describe(source)} does not fit the {family} model ({len(own)} tensors): "
            + "; ".join(parts)
            + ". Is it a checkpoint of this model and width?"
        )
    return Conversion(state, reinit, mapping)


def check_options(source: WeightsSource, model_name: str, built: Mapping[str, Any]) -> None:
    """Stop when ``built`` (the model's arguments) lacks an option the source needs."""
    params = model_arguments(model_name) or {}
    for key, need in source.arch_options.items():
        have = built.get(key, params[key].default if key in params else None)
        if have != need:
            raise WeightsError(
                f"{_describe(source)} needs the model option Arch.{key}: {summarize(need)} to reproduce its "
                f"publisher's outputs, but the model was built with {summarize(have)}; set it in Arch (giving the file as "
                "Arch.pretrained or Global.pretrained_model sets it for you)"
            )


def apply(model: nn.Layer, source: WeightsSource) -> LoadReport:
    """Fill ``model`` from ``source`` (converted and checked); logs what was loaded."""
    conversion = convert(source, model)
    state, reinit = conversion.state, conversion.reinitialised
    own = model.state_dict()
    model.set_state_dict({**state, **{k: own[k] for k in reinit}})  # the head keeps its fresh values
    for key in reinit:
        logger.warning("weights: %s keeps its fresh initialisation (class count differs from %s)", key, source.path)
    logger.info(
        "loaded %d/%d tensors from %s (format %s%s)", len(state), len(state) + len(reinit), source.path,
        source.format, f", model options {source.arch_options}" if source.arch_options else "",
    )
    return LoadReport(source.path, source.format, len(state), len(state) + len(reinit), reinit,
                      dict(source.arch_options))


def load_weights(model: nn.Layer, path: str, model_name: str | None = None,
                 built_options: Mapping[str, Any] | None = None, fmt: str = "auto") -> LoadReport:
    """Load ``path`` (any known format) into ``model``; see the module docstring.

    With ``model_name``, the options the file needs are checked against ``built_options``
    (the arguments the model was built with).
    """
    source = identify(path, model_name, fmt)
    if model_name is not None:
        check_options(source, model_name, built_options or {})
    return apply(model, source)
