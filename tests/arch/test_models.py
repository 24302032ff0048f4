"""Checks over every registered model, so a new model is tested the day it is registered.

The per-model tests name no model: the expected parameter counts, input sizes and families are the
registry's metadata (declared beside each entry function), and the checks themselves are in
``model_checks.py``.
"""

from __future__ import annotations

import os

import pytest
import yaml

from ppcls.arch.family import ModelFamily
from ppcls.registry import MODELS
from tests.conftest import REPO

from . import model_checks as checks

ALL = checks.models_under_test()
SMALLEST = checks.smallest_per_family()


@pytest.mark.parametrize("name", ALL)
def test_metadata_and_network_class(name: str) -> None:
    checks.check_metadata(name)


@pytest.mark.parametrize("name", ALL)
def test_parameter_count_and_forward(name: str) -> None:
    checks.check_count_and_forward(name)


@pytest.mark.parametrize("name", ALL)
def test_interface(name: str) -> None:
    checks.check_interface(name)


@pytest.mark.parametrize("name", SMALLEST)
def test_reset_classifier_and_fine_tune_load(name: str, tmp_path) -> None:
    checks.check_reset_classifier(name, str(tmp_path))


@pytest.mark.parametrize("name", ALL)
def test_two_instances_do_not_share_parameters(name: str) -> None:
    checks.check_independent_instances(name)


@pytest.mark.parametrize("name", ALL)
def test_export_matches_eager(name: str, tmp_path) -> None:
    checks.check_export(name, str(tmp_path))


def test_every_family_is_checked_and_has_a_default_model():
    families = {MODELS.metadata(n)["family"] for n in ALL}
    assert {MODELS.metadata(n)["family"] for n in SMALLEST} == families
    assert {"PPLCNet", "ShuffleNet", "SqueezeNet", "MobileNeXt", "PeleeNet", "ParNet"} <= families
    assert all(MODELS.list(family=f, generic=False) for f in families)


def test_generic_entries_are_marked():
    # PaddleClas's generic PPLCNet takes its width from Arch.scale: no recipe, no TIPC config of its own
    assert MODELS.list(generic=True) == ["PPLCNet"]


def test_family_entry_fills_defaults_and_refuses_unknown_keys():
    fam = ModelFamily("Demo", input_size=(3, 192, 192))
    meta = fam.entry(params=10, input_size=(3, 256, 256))
    assert meta["family"] == "Demo" and meta["input_size"] == (3, 256, 256) and meta["weights"] == ()
    assert meta["mean"] == (0.485, 0.456, 0.406) and meta["generic"] is False
    with pytest.raises(TypeError, match="paper is not a family default"):
        fam.entry(params=10, paper="x")


def _normalize_ops(cfg: dict) -> list[dict]:
    loaders = cfg.get("DataLoader") or {}
    lists = [((loaders.get(split) or {}).get("dataset") or {}).get("transform_ops") for split in ("Train", "Eval")]
    lists.append((cfg.get("Infer") or {}).get("transforms"))
    return [op["NormalizeImage"] for ops in lists for op in ops or [] if isinstance(op, dict) and "NormalizeImage" in op]


@pytest.mark.parametrize("name", MODELS.list(generic=False))
def test_recipe_agrees_with_metadata(name: str) -> None:
    """The registered input size and normalisation are the recipe's (configs/ImageNet/<family>/<name>.yaml)."""
    meta = MODELS.metadata(name)
    path = os.path.join(REPO, "configs", "ImageNet", meta["family"], f"{name}.yaml")
    with open(path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    assert list((cfg.get("Global") or {}).get("image_shape", meta["input_size"])) == list(meta["input_size"])
    ops = _normalize_ops(cfg)
    assert ops, f"{path}: no NormalizeImage"
    for op in ops:
        assert op["mean"] == pytest.approx(list(meta["mean"])) and op["std"] == pytest.approx(list(meta["std"]))
