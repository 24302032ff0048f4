"""What a weights format is: how a publisher names and stores one family's tensors.

A format is data, not code paths: per family, a rename rule (source key -> our key), the model
options the publisher's architecture needs (pooling mode, activation, dropout scaling) and an
optional value transform. The loader (:mod:`ppcls.arch.weights.loader`) applies them and then
checks coverage; formats never match tensors by position.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Union

import numpy as np

# Returned by a rename rule for a source tensor that has no counterpart on purpose
# (BatchNorm's num_batches_tracked, an auxiliary head): dropped without counting as unused.
DROP = "<drop>"

Rename = Callable[[str], Union[str, None]]
Options = Union[Mapping[str, Any], Callable[[str], Mapping[str, Any]]]
Transform = Callable[[str, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class FamilyRules:
    """How one backbone family's tensors are stored in one format.

    ``rename`` maps a source key to our key, :data:`DROP`, or None (not recognised: reported
    as unused); where our names depend on the variant (SqueezeNet 1.0 and 1.1 place their
    pools differently), ``rename_for(model)`` builds the rule for the model being filled.
    ``arch_options`` are model arguments the source architecture needs, as a mapping or a
    function of the model name. ``transform(our_key, value)`` changes a value (layout,
    scaling) after renaming.
    """

    rename: Rename | None = None
    arch_options: Options = field(default_factory=lambda: MappingProxyType({}))
    transform: Transform | None = None
    rename_for: Callable[[Any], Rename] | None = None

    def __post_init__(self) -> None:
        if (self.rename is None) == (self.rename_for is None):
            raise TypeError("FamilyRules needs exactly one of rename and rename_for")

    def renamer(self, model: Any) -> Rename:
        """The rename rule for ``model`` (the network being filled)."""
        return self.rename_for(model) if self.rename_for is not None else self.rename

    def options_for(self, model_name: str) -> dict[str, Any]:
        opts = self.arch_options(model_name) if callable(self.arch_options) else self.arch_options
        return dict(opts)


@dataclass(frozen=True)
class WeightFormat:
    """A published checkpoint layout, recognised from its keys.

    ``detect(keys)`` returns the family (our network class name, e.g. ``"SqueezeNet"``) whose
    checkpoint the keys look like, or None. ``framework`` is ``"torch"`` for PyTorch files:
    their Linear weights are stored transposed relative to Paddle's and are transposed by the
    loader. ``unwrap(obj)`` takes the loaded file object (a state dict or a training
    checkpoint holding one) and returns the flat state dict to use.
    """

    name: str
    description: str
    framework: str
    detect: Callable[[Sequence[str]], Union[str, None]]
    families: Mapping[str, FamilyRules]
    unwrap: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def rules(self, family: str) -> FamilyRules:
        if family not in self.families:
            raise KeyError(
                f"the {self.name} format has no rules for {family} models; it covers "
                f"{', '.join(sorted(self.families))}"
            )
        return self.families[family]


def rule_table(*rules: tuple[str, str | Callable[[re.Match], str | None]]) -> Rename:
    """A rename function from ``(regex, replacement)`` rows; the first full match wins.

    A replacement is a ``re`` template (``r"stages.\\1"``), :data:`DROP`, or a function of the
    match (for index arithmetic such as PaddleClas's 1-based stage names) that may return
    None for a key it does not recognise.
    """
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]

    def rename(key: str) -> str | None:
        for pattern, repl in compiled:
            m = pattern.fullmatch(key)
            if m is None:
                continue
            if repl == DROP:
                return DROP
            return repl(m) if callable(repl) else m.expand(repl)
        return None

    return rename


def torch_bn(prefix_rename: Rename) -> Rename:
    """Wrap a rename rule for PyTorch BatchNorm suffixes (running_mean/var, num_batches_tracked).

    ``prefix_rename`` sees the key with Paddle's suffix names (``_mean``, ``_variance``).
    """

    def rename(key: str) -> str | None:
        if key.endswith(".num_batches_tracked"):
            return DROP
        if key.endswith(".running_mean"):
            key = key[: -len("running_mean")] + "_mean"
        elif key.endswith(".running_var"):
            key = key[: -len("running_var")] + "_variance"
        return prefix_rename(key)

    return rename


def strip_prefix(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``state`` with ``prefix`` removed from keys that have it (DataParallel's ``module.``)."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}


def detect_by_markers(markers: Mapping[str, Sequence[str]]) -> Callable[[Sequence[str]], Union[str, None]]:
    """A ``detect`` that names the first family all of whose marker keys the file has.

    Markers are keys every checkpoint of the family has in that format and no other format
    (our own included) uses, e.g. PyTorch's ``running_mean`` beside a publisher's layer names.
    """

    def detect(keys: Sequence[str]) -> str | None:
        present = set(keys)
        return next((family for family, need in markers.items() if all(k in present for k in need)), None)

    return detect
