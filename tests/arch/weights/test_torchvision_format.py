"""torchvision weights format: ShuffleNetV2 and SqueezeNet files reproduce torchvision's outputs.

The fixtures come from torchvision's own models (``fixtures/torchvision/make_fixtures.py``); here
the same seeded weights are written as torchvision publishes them (a plain torch state dict)
and loaded into our models. Needs torch (in requirements-dev), never torchvision.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import paddle
import pytest
import torch  # a missing torch must fail this module, not skip it

from ppcls.arch import build_model, model_class
from ppcls.arch.weights import WeightsError, identify, load_weights
from ppcls.arch.weights.formats.torchvision import FORMAT
from tests.arch.weights.fixture_utils import input_batch, load_fixture, random_state

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "torchvision")

# torchvision builder name -> our registered name
MODELS = {
    "shufflenet_v2_x0_5": "ShuffleNetV2_x0_5",
    "shufflenet_v2_x1_0": "ShuffleNetV2_x1_0",
    "shufflenet_v2_x1_5": "ShuffleNetV2_x1_5",
    "shufflenet_v2_x2_0": "ShuffleNetV2_x2_0",
    "squeezenet1_0": "SqueezeNet1_0",
    "squeezenet1_1": "SqueezeNet1_1",
}
TOL = 1e-4


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _write_torch(path: str, state: Mapping[str, np.ndarray]) -> str:
    """``state`` saved as torchvision publishes: a plain dict of torch tensors."""
    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, path)
    return path


def _torchvision_file(tmp_path, tv_name: str) -> tuple[str, dict[str, Any], np.ndarray]:
    """(weights file named like torchvision's without the hash, fixture meta, reference logits)."""
    meta, reference = load_fixture(os.path.join(FIXTURES, f"{tv_name}.npz"))
    path = _write_torch(str(tmp_path / f"{tv_name}.pth"), random_state(meta["spec"], meta["weight_seed"], meta.get("scales")))
    return path, meta, reference


def _run(model: paddle.nn.Layer, meta: Mapping[str, Any]) -> np.ndarray:
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(input_batch(meta["input_seed"], meta["input_shape"]))).numpy()


@pytest.mark.parametrize("tv_name, name", MODELS.items())
def test_reproduces_torchvision_outputs(tmp_path, tv_name, name):
    path, meta, reference = _torchvision_file(tmp_path, tv_name)
    source = identify(path, name)
    assert (source.format, source.family) == ("torchvision", model_class(name).__name__)
    options = source.arch_options
    model = build_model({"name": name, **options})
    report = load_weights(model, path, name, options)
    assert report.format == "torchvision"
    assert report.loaded == report.total == len(model.state_dict())
    assert report.reinitialised == []
    logits = _run(model, meta)
    assert logits.shape == reference.shape
    # the fixture scales the classifier so that logits are near 1 (see make_fixtures.py)
    np.testing.assert_allclose(logits, reference, rtol=0, atol=TOL)
    np.testing.assert_allclose(_softmax(logits), _softmax(reference), rtol=0, atol=TOL)


def test_arch_options_per_model(tmp_path):
    path, _, _ = _torchvision_file(tmp_path, "squeezenet1_1")
    assert identify(path, "SqueezeNet1_1").arch_options == {
        "ceil_mode": True, "dropout_mode": "upscale_in_train", "stem_padding": 0,
    }
    assert identify(path, "SqueezeNet1_0").arch_options == {"ceil_mode": True, "dropout_mode": "upscale_in_train"}
    path, _, _ = _torchvision_file(tmp_path, "shufflenet_v2_x0_5")
    assert identify(path, "ShuffleNetV2_x0_5").arch_options == {}


def test_missing_option_refused(tmp_path):
    path, _, _ = _torchvision_file(tmp_path, "squeezenet1_1")
    model = build_model({"name": "SqueezeNet1_1"})
    with pytest.raises(WeightsError, match=r"Arch\.ceil_mode"):
        load_weights(model, path, "SqueezeNet1_1", {})
    built = {"ceil_mode": True, "dropout_mode": "upscale_in_train"}
    with pytest.raises(WeightsError, match=r"Arch\.stem_padding"):
        load_weights(build_model({"name": "SqueezeNet1_1", **built}), path, "SqueezeNet1_1", built)


@pytest.mark.parametrize("tv_name, name", [("squeezenet1_0", "SqueezeNet1_0"), ("squeezenet1_1", "SqueezeNet1_1")])
def test_every_option_matters(tmp_path, tv_name, name):
    """Each option the rules declare changes the outputs: none is there by accident."""
    path, meta, reference = _torchvision_file(tmp_path, tv_name)
    options = identify(path, name).arch_options
    for key in options:
        partial = {k: v for k, v in options.items() if k != key}
        model = build_model({"name": name, **partial})
        load_weights(model, path)  # no model name: options are not checked
        assert np.abs(_run(model, meta) - reference).max() > 1e-2, key


def test_other_family_refused(tmp_path):
    path, _, _ = _torchvision_file(tmp_path, "shufflenet_v2_x0_5")
    options = identify(path, "SqueezeNet1_1").arch_options
    assert options == {}  # the file's family is not the model's: no options proposed
    model = build_model({"name": "SqueezeNet1_1"})
    with pytest.raises(WeightsError, match=r"torchvision.*ShuffleNetV2 model; the model is SqueezeNet"):
        load_weights(model, path, "SqueezeNet1_1")


def test_width_mismatch_refused(tmp_path):
    path, _, _ = _torchvision_file(tmp_path, "shufflenet_v2_x0_5")
    model = build_model({"name": "ShuffleNetV2_x1_0"})
    with pytest.raises(WeightsError, match=r"format 'torchvision'.*shape mismatch"):
        load_weights(model, path, "ShuffleNetV2_x1_0")


@pytest.mark.parametrize("tv_name, name, head", [
    ("squeezenet1_1", "SqueezeNet1_1", ["final_conv.conv.weight", "final_conv.conv.bias"]),
    ("shufflenet_v2_x0_5", "ShuffleNetV2_x0_5", ["fc.weight", "fc.bias"]),
])
def test_new_class_count_reinitialises_head(tmp_path, tv_name, name, head):
    path, _, _ = _torchvision_file(tmp_path, tv_name)
    options = identify(path, name).arch_options
    model = build_model({"name": name, "class_num": 10, **options})
    fresh = {k: model.state_dict()[k].numpy().copy() for k in head}
    report = load_weights(model, path, name, options)
    assert sorted(report.reinitialised) == sorted(head)
    assert report.loaded == len(model.state_dict()) - len(head)
    for key in head:
        np.testing.assert_array_equal(model.state_dict()[key].numpy(), fresh[key])


@pytest.mark.parametrize("name", ["SqueezeNet1_0", "ShuffleNetV2_x0_5"])
def test_own_keys_not_detected(tmp_path, name):
    model = build_model({"name": name})
    keys = list(model.state_dict())
    assert FORMAT.detect(keys) is None
    path = str(tmp_path / f"{name}.pdparams")
    paddle.save(model.state_dict(), path)
    assert identify(path).format == "ppcls"
    # the same keys in a PyTorch file are still ours, not torchvision's
    torch_path = _write_torch(str(tmp_path / f"{name}.pth"), {k: v.numpy() for k, v in model.state_dict().items()})
    assert identify(torch_path).format != "torchvision"


def test_paddleclas_keys_not_detected():
    # structured names in PaddleClas's ShuffleNetV2 / SqueezeNet .pdparams (BN stats: _mean/_variance)
    shufflenet = ["_conv1._conv.weight", "_conv1._batch_norm.weight", "_conv1._batch_norm._mean",
                  "_conv1._batch_norm._variance", "2_1._conv_dw_1._conv.weight", "_last_conv._conv.weight",
                  "_fc.weight", "_fc.bias"]
    squeezenet = ["_conv.weight", "_conv.bias", "_conv1._conv._conv.weight", "_conv1._conv_path1._conv.weight",
                  "_conv8._conv_path2._conv.weight", "_conv9.weight", "_conv9.bias"]
    assert FORMAT.detect(shufflenet) is None
    assert FORMAT.detect(squeezenet) is None
    # a torchvision file renamed with Paddle's BN suffixes is no longer torchvision's
    spec = load_fixture(os.path.join(FIXTURES, "shufflenet_v2_x0_5.npz"))[0]["spec"]
    paddle_style = [k.replace("running_mean", "_mean").replace("running_var", "_variance") for k, _, _ in spec]
    assert FORMAT.detect(paddle_style) is None


def test_training_checkpoint_unwrapped(tmp_path):
    """torchvision's reference training saves {"model": state_dict, "epoch": ...}."""
    meta, reference = load_fixture(os.path.join(FIXTURES, "squeezenet1_1.npz"))
    state = random_state(meta["spec"], meta["weight_seed"], meta.get("scales"))
    path = str(tmp_path / "checkpoint.pth")
    torch.save({"model": {f"module.{k}": torch.from_numpy(v) for k, v in state.items()}, "epoch": 3}, path)
    options = identify(path, "SqueezeNet1_1").arch_options
    model = build_model({"name": "SqueezeNet1_1", **options})
    load_weights(model, path, "SqueezeNet1_1", options)
    np.testing.assert_allclose(_run(model, meta), reference, rtol=0, atol=TOL)


def test_unused_source_tensor_reported(tmp_path):
    meta, _ = load_fixture(os.path.join(FIXTURES, "squeezenet1_1.npz"))
    state = random_state(meta["spec"], meta["weight_seed"], meta.get("scales"))
    state["features.3.squeeze.running_mean"] = np.zeros(16, "float32")
    path = _write_torch(str(tmp_path / "squeezenet1_1.pth"), state)
    options = identify(path, "SqueezeNet1_1").arch_options
    with pytest.raises(WeightsError, match=r"unused: features\.3\.squeeze\.running_mean"):
        load_weights(build_model({"name": "SqueezeNet1_1", **options}), path, "SqueezeNet1_1", options)


@pytest.mark.parametrize("options, match", [
    ({"ceil_mode": "yes"}, "ceil_mode"),
    ({"stem_padding": -1}, "stem_padding"),
    ({"stem_padding": True}, "stem_padding"),
    ({"dropout_mode": "upscale"}, "dropout_mode .* valid: downscale_in_infer, upscale_in_train"),
])
def test_squeezenet_bad_options(options, match):
    with pytest.raises(ValueError, match=match):
        build_model({"name": "SqueezeNet1_1", **options})


@pytest.mark.parametrize("name", ["SqueezeNet1_0", "SqueezeNet1_1"])
@pytest.mark.parametrize("ceil_mode, stem_padding", [(False, None), (True, None), (True, 0), (False, 0)])
def test_squeezenet_min_input_size(name, ceil_mode, stem_padding):
    """The input-size check fires exactly when the feature map would be empty."""
    model = build_model({"name": name, "class_num": 4, "ceil_mode": ceil_mode, "stem_padding": stem_padding})
    model.eval()
    side = model.min_input_size
    assert model(paddle.randn([1, 3, side, side])).shape == [1, 4]
    if side > 1:  # Paddle pads even an empty input (SqueezeNet 1.1 in ceil mode needs 1x1)
        assert model.features(model.stem(paddle.randn([1, 3, side - 1, side - 1]))).shape[2] == 0
    with pytest.raises(ValueError, match=f"too small.*at least {side}x{side}"):
        model(paddle.randn([1, 3, side - 1, side + 8]))
