"""The official ParNet and PeleeNet checkpoints, converted, give their code's outputs.

Each fixture (``fixtures/<format>/*.npz``, made by the ``make_fixtures.py`` beside it from
the publisher's own code) holds the state-dict layout, the seeds and the reference logits.
Here the same weights are regenerated, written in the publisher's checkpoint container and
loaded through ``ppcls.arch.weights``; the official code is not imported.

Logits are compared relative to their scale: random weights make ParNet's logits reach
thousands, where float32 rounding alone exceeds 1e-4 absolute (in float64 the conversion
matches to 1e-8). Softmax is compared absolutely.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

import numpy as np
import paddle
import pytest
import torch  # a missing PyTorch must fail these tests, not skip them

from ppcls.arch import build_model
from ppcls.arch.weights import WeightsError, identify, load_weights
from ppcls.registry import WEIGHT_FORMATS
from tests.arch.weights.fixture_utils import input_batch, load_fixture, random_state

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
TOL = 1e-4
PARNETS = ["ParNet_S", "ParNet_M", "ParNet_L", "ParNet_XL"]
FORMAT_OF = {**{m: "parnet" for m in PARNETS}, "PeleeNet": "peleenet"}
OPTIONS = {**{m: {"act": "relu"} for m in PARNETS}, "PeleeNet": {}}


def _fixture(model: str) -> tuple[dict, np.ndarray]:
    return load_fixture(os.path.join(FIXTURES, FORMAT_OF[model], f"{model}.npz"))


def _tensors(state: Mapping[str, np.ndarray], prefix: str = "") -> dict[str, torch.Tensor]:
    return {prefix + k: torch.from_numpy(v) for k, v in state.items()}


def _timm_checkpoint(
    state: Mapping[str, np.ndarray], ema: Mapping[str, np.ndarray] | None = None, prefix: str = ""
) -> dict:
    """What timm's CheckpointSaver writes for the official ParNet runs (``--model-ema``)."""
    ckpt = {
        "epoch": 119,
        "arch": "simplenet_repvgg",
        "state_dict": _tensors(state, prefix),
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-3, "momentum": 0.9, "params": [0, 1]}]},
        "version": 2,
        "args": argparse.Namespace(model="simplenet_repvgg", model_ema=True, model_ema_decay=0.9999),
        "metric": 78.5,
    }
    if ema is not None:
        ckpt["state_dict_ema"] = _tensors(ema, prefix)
    return ckpt


def _peleenet_checkpoint(state: Mapping[str, np.ndarray]) -> dict:
    """What the official ``main.py`` writes: a DataParallel state dict and training state."""
    return {
        "epoch": 120,
        "arch": "peleenet",
        "state_dict": _tensors(state, "module."),
        "best_acc1": torch.tensor(72.08),
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.18, "momentum": 0.9, "params": [0, 1]}]},
    }


def _weights(meta: dict, seed_offset: int = 0) -> dict[str, np.ndarray]:
    """The fixture's weights, regenerated from its seed (plus ``seed_offset``), scales and gain."""
    return random_state(meta["spec"], meta["weight_seed"] + seed_offset, meta.get("scales"), meta.get("gain", 1.0))


def _write(model: str, directory: str, name: str = "ckpt.pth.tar") -> str:
    """The fixture's weights in the publisher's container (ParNet: no EMA copy, plain keys)."""
    meta, _ = _fixture(model)
    state = _weights(meta)
    ckpt = _peleenet_checkpoint(state) if model == "PeleeNet" else _timm_checkpoint(state)
    path = os.path.join(directory, name)
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """ParNet_S and PeleeNet checkpoints shared by the cheaper tests."""
    root = str(tmp_path_factory.mktemp("official"))
    return {m: _write(m, root, f"{m}.pth.tar") for m in ("ParNet_S", "PeleeNet")}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _check(model_name: str, path: str) -> None:
    """Load ``path`` the way the tools do and compare with the fixture's reference logits."""
    meta, ref = _fixture(model_name)
    options = identify(path, model_name).arch_options
    assert options == OPTIONS[model_name]
    model = build_model({"name": model_name, **options})
    report = load_weights(model, path, model_name, options)
    assert report.format == FORMAT_OF[model_name]
    assert report.loaded == report.total == len(model.state_dict()) and not report.reinitialised
    model.eval()
    with paddle.no_grad():
        out = model(paddle.to_tensor(input_batch(meta["input_seed"], meta["input_shape"]))).numpy()
    # the fixture scales the classifier so that logits are near 1 (see make_fixtures.py)
    assert np.abs(out - ref).max() <= TOL, f"logits differ by {np.abs(out - ref).max()}"
    assert np.abs(_softmax(out) - _softmax(ref)).max() <= TOL


@pytest.mark.parametrize("model_name", [*PARNETS, "PeleeNet"])
def test_matches_official_outputs(model_name: str, tmp_path) -> None:
    _check(model_name, _write(model_name, str(tmp_path)))


@pytest.mark.parametrize("prefix", ["", "module."])
def test_parnet_prefers_ema_copy(prefix: str, tmp_path) -> None:
    meta, _ = _fixture("ParNet_S")
    ema = _weights(meta)
    raw = _weights(meta, seed_offset=1)  # the non-averaged weights differ
    path = str(tmp_path / "ema.pth.tar")
    torch.save(_timm_checkpoint(raw, ema=ema, prefix=prefix), path)
    _check("ParNet_S", path)


def test_peleenet_bare_state_dict(tmp_path) -> None:
    meta, _ = _fixture("PeleeNet")
    path = str(tmp_path / "bare.pth")
    torch.save(_tensors(_weights(meta)), path)
    _check("PeleeNet", path)


@pytest.mark.parametrize("model_name", ["ParNet_S", "PeleeNet"])
def test_new_head_is_reinitialised(model_name: str, files: dict[str, str]) -> None:
    path = files[model_name]
    options = identify(path, model_name).arch_options
    model = build_model({"name": model_name, "class_num": 10, **options})
    report = load_weights(model, path, model_name, {"class_num": 10, **options})
    assert sorted(report.reinitialised) == ["fc.bias", "fc.weight"]
    assert report.loaded == report.total - 2 == len(model.state_dict()) - 2


def test_wrong_model_is_refused(files: dict[str, str]) -> None:
    with pytest.raises(WeightsError, match="parnet"):  # same family, other width
        load_weights(
            build_model({"name": "ParNet_M", "act": "relu"}), files["ParNet_S"], "ParNet_M", {"act": "relu"}
        )
    with pytest.raises(WeightsError, match="parnet.*ParNet model; the model is PeleeNet"):
        load_weights(build_model({"name": "PeleeNet"}), files["ParNet_S"], "PeleeNet")
    with pytest.raises(WeightsError, match="peleenet.*PeleeNet model; the model is ParNet"):
        load_weights(
            build_model({"name": "ParNet_S", "act": "relu"}), files["PeleeNet"], "ParNet_S", {"act": "relu"}
        )


def test_parnet_needs_relu(files: dict[str, str]) -> None:
    model = build_model({"name": "ParNet_S"})  # default act: silu, as in the paper
    with pytest.raises(WeightsError, match="Arch.act: 'relu'"):
        load_weights(model, files["ParNet_S"], "ParNet_S", {})


def test_detects_only_the_publishers_keys() -> None:
    parnet, peleenet = WEIGHT_FORMATS.get("parnet"), WEIGHT_FORMATS.get("peleenet")
    parnet_keys = [k for k, _, _ in _fixture("ParNet_S")[0]["spec"]]
    peleenet_keys = [k for k, _, _ in _fixture("PeleeNet")[0]["spec"]]
    assert parnet.detect(parnet_keys) == "ParNet" and peleenet.detect(peleenet_keys) == "PeleeNet"
    assert parnet.detect(peleenet_keys) is None and peleenet.detect(parnet_keys) is None
    # PaddleClas's port of PeleeNet: the same module names, Paddle's BatchNorm statistics
    paddleclas = [
        k.replace("running_mean", "_mean").replace("running_var", "_variance")
        for k in peleenet_keys
        if not k.endswith("num_batches_tracked")
    ]
    assert peleenet.detect(paddleclas) is None and parnet.detect(paddleclas) is None
    for name in ("ParNet_S", "PeleeNet"):
        own = list(build_model({"name": name}).state_dict())
        assert parnet.detect(own) is None and peleenet.detect(own) is None


def test_own_checkpoint_is_not_claimed(tmp_path) -> None:
    for name in ("ParNet_S", "PeleeNet"):
        path = str(tmp_path / f"{name}.pdparams")
        paddle.save(build_model({"name": name}).state_dict(), path)
        assert identify(path, name).format not in ("parnet", "peleenet")
