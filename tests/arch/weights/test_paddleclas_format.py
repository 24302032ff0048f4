"""PaddleClas weights format: PaddleClas 2.x ``.pdparams`` files reproduce PaddleClas's own outputs.

PaddleClas's models are built from the installed ``paddleclas`` wheel (``tests/reference``),
given seeded random weights and BatchNorm statistics, saved with ``paddle.save`` as PaddleClas
publishes them, and loaded into ours; logits and softmax scores must agree.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable

import numpy as np
import paddle
import pytest

from ppcls.arch import build_model, model_class
from ppcls.arch.weights import WeightsError, identify, load_weights
from ppcls.arch.weights.formats.paddleclas import FORMAT
from ppcls.registry import MODELS
from tests.arch.weights.fixture_utils import input_batch, load_fixture
from tests.reference import paddleclas_ref

PADDLECLAS_MODELS = [
    *(f"PPLCNet_x{w}" for w in ("0_25", "0_35", "0_5", "0_75", "1_0", "1_5", "2_0", "2_5")),
    *(f"ShuffleNetV2_x{w}" for w in ("0_25", "0_33", "0_5", "1_0", "1_5", "2_0")),
    "ShuffleNetV2_swish", "SqueezeNet1_0", "SqueezeNet1_1", "MobileNeXt_x1_0", "PeleeNet",
    # PaddleClas publishes MobileNeXt x1.0 only; the rules hold for its other widths too
    "MobileNeXt_x0_35", "MobileNeXt_x0_5", "MobileNeXt_x0_75", "MobileNeXt_x1_4",
]
INPUT_SHAPE = (2, 3, 64, 64)
WEIGHT_SEED, INPUT_SEED = 0, 1
TOL = 1e-4


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _run(model: paddle.nn.Layer) -> np.ndarray:
    model.eval()
    with paddle.no_grad():
        return model(paddle.to_tensor(input_batch(INPUT_SEED, INPUT_SHAPE))).numpy()


@pytest.fixture(scope="module")
def paddleclas_file(tmp_path_factory) -> Callable[[str], tuple[str, np.ndarray]]:
    """``name`` -> (a PaddleClas ``.pdparams`` of random weights, PaddleClas's logits), cached."""
    paddleclas_ref.wheel_dir()  # fails with the install command when the wheel is missing
    folder = tmp_path_factory.mktemp("paddleclas")
    cache: dict[str, tuple[str, np.ndarray]] = {}

    def make(name: str) -> tuple[str, np.ndarray]:
        if name not in cache:
            reference = paddleclas_ref.build(name)
            paddleclas_ref.randomise(reference, WEIGHT_SEED, input_batch(INPUT_SEED, INPUT_SHAPE))
            path = str(folder / f"{name}_pretrained.pdparams")
            paddle.save(reference.state_dict(), path)
            cache[name] = (path, _run(reference))
        return cache[name]

    return make


@pytest.mark.parametrize("name", PADDLECLAS_MODELS)
def test_reproduces_paddleclas_outputs(paddleclas_file, name):
    path, reference = paddleclas_file(name)
    source = identify(path, name)
    assert (source.format, source.family) == ("paddleclas", model_class(name).__name__)
    options = source.arch_options
    model = build_model({"name": name, **options})
    report = load_weights(model, path, name, options)
    assert report.format == "paddleclas"
    assert report.loaded == report.total == len(model.state_dict())
    assert report.reinitialised == []
    logits = _run(model)
    assert logits.shape == reference.shape == (INPUT_SHAPE[0], 1000)
    assert 0.5 < np.abs(reference).max() < 100  # calibrated: neither vanishing nor exploding
    np.testing.assert_allclose(logits, reference, rtol=0, atol=TOL)
    np.testing.assert_allclose(_softmax(logits), _softmax(reference), rtol=0, atol=TOL)


def test_arch_options_per_family(paddleclas_file):
    assert identify(paddleclas_file("PPLCNet_x0_5")[0], "PPLCNet_x0_5").arch_options == {
        "dropout_mode": "downscale_in_infer"
    }
    assert identify(paddleclas_file("SqueezeNet1_1")[0], "SqueezeNet1_1").arch_options == {
        "ceil_mode": False, "stem_padding": None, "dropout_mode": "downscale_in_infer"
    }
    for name in ("ShuffleNetV2_x0_5", "MobileNeXt_x1_0", "PeleeNet"):
        assert identify(paddleclas_file(name)[0], name).arch_options == {}


def test_arch_pretrained_applies_the_options(paddleclas_file):
    path, reference = paddleclas_file("PPLCNet_x0_5")
    model = build_model({"name": "PPLCNet_x0_5", "pretrained": path})
    assert model.publisher_options == {"dropout_mode": "downscale_in_infer"}
    np.testing.assert_allclose(_run(model), reference, rtol=0, atol=TOL)


def test_torchvision_style_squeezenet_refused(paddleclas_file):
    path, _ = paddleclas_file("SqueezeNet1_1")
    built = {"ceil_mode": True}
    with pytest.raises(WeightsError, match=r"Arch\.ceil_mode: False"):
        load_weights(build_model({"name": "SqueezeNet1_1", **built}), path, "SqueezeNet1_1", built)


def test_pplcnet_dropout_mode_matters(paddleclas_file):
    path, reference = paddleclas_file("PPLCNet_x0_25")
    model = build_model({"name": "PPLCNet_x0_25"})
    with pytest.raises(WeightsError, match=r"Arch\.dropout_mode: 'downscale_in_infer'"):
        load_weights(model, path, "PPLCNet_x0_25", {})
    load_weights(model, path)  # no model name: options are not checked
    assert np.abs(_run(model) - reference).max() > 1e-2


def test_pplcnet_dropout_mode_validated():
    with pytest.raises(ValueError, match=r"dropout_mode 'upscale'.*valid: upscale_in_train, downscale_in_infer"):
        build_model({"name": "PPLCNet_x0_25", "dropout_mode": "upscale"})


@pytest.mark.parametrize("source_name, name, match", [
    ("ShuffleNetV2_x0_5", "SqueezeNet1_0", r"format 'paddleclas'.*ShuffleNetV2 model; the model is SqueezeNet"),
    ("PPLCNet_x0_25", "MobileNeXt_x1_0", r"format 'paddleclas'.*PPLCNet model; the model is MobileNeXt"),
    ("PeleeNet", "ShuffleNetV2_x1_0", r"format 'paddleclas'.*PeleeNet model; the model is ShuffleNetV2"),
])
def test_other_family_refused(paddleclas_file, source_name, name, match):
    path, _ = paddleclas_file(source_name)
    assert identify(path, name).arch_options == {}  # not the model's family: no options proposed
    with pytest.raises(WeightsError, match=match):
        load_weights(build_model({"name": name}), path, name)


@pytest.mark.parametrize("source_name, name, match", [
    ("PPLCNet_x0_5", "PPLCNet_x0_25", r"shape mismatch\(es\): blocks2\.0\.pw_conv\.conv\.weight \[16, 8, 1, 1\] -> "
                                      r"blocks2\.0\.pw_conv\.conv\.weight \[8, 8, 1, 1\]"),
    ("ShuffleNetV2_x0_25", "ShuffleNetV2_x0_33", r"format 'paddleclas'.*shape mismatch"),
    # the other version's Fires sit at other indices: nothing is loaded in the wrong place
    ("SqueezeNet1_0", "SqueezeNet1_1", r"shape mismatch\(es\): _conv\.weight \[96, 3, 7, 7\] -> stem\.conv\.weight \[64, 3, 3, 3\]"),
])
def test_other_width_refused(paddleclas_file, source_name, name, match):
    path, _ = paddleclas_file(source_name)
    options = identify(path, name).arch_options
    with pytest.raises(WeightsError, match=match):
        load_weights(build_model({"name": name, **options}), path, name, options)


@pytest.mark.parametrize("name, head", [
    ("PPLCNet_x0_25", ["fc.weight", "fc.bias"]),
    ("SqueezeNet1_1", ["final_conv.conv.weight", "final_conv.conv.bias"]),
    ("MobileNeXt_x1_0", ["fc.weight", "fc.bias"]),
])
def test_new_class_count_reinitialises_head(paddleclas_file, name, head):
    path, _ = paddleclas_file(name)
    options = identify(path, name).arch_options
    model = build_model({"name": name, "class_num": 10, **options})
    fresh = {k: model.state_dict()[k].numpy().copy() for k in head}
    report = load_weights(model, path, name, options)
    assert sorted(report.reinitialised) == sorted(head)
    assert report.loaded == report.total - len(head) == len(model.state_dict()) - len(head)
    for key in head:
        np.testing.assert_array_equal(model.state_dict()[key].numpy(), fresh[key])


@pytest.mark.parametrize("name", MODELS.names())
def test_own_keys_not_detected(name):
    with paddle.LazyGuard():  # keys only: skip initialising ParNet's large tensors
        state = build_model({"name": name}).state_dict()
    assert FORMAT.detect(list(state)) is None


def test_own_checkpoint_read_as_native(tmp_path):
    model = build_model({"name": "PPLCNet_x0_25"})
    path = str(tmp_path / "own.pdparams")
    paddle.save(model.state_dict(), path)
    assert identify(path).format == "ppcls"


def test_other_publishers_not_detected():
    """The other formats' fixture keys (torchvision, the official ParNet / PeleeNet code)."""
    paths = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "fixtures", "*", "*.npz")))
    for path in paths:
        keys = [k for k, _, _ in load_fixture(path)[0]["spec"]]
        assert FORMAT.detect(keys) is None, path


def test_reference_helper_names_the_wheel(monkeypatch):
    monkeypatch.setattr(paddleclas_ref.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(paddleclas_ref.ReferenceUnavailable, match=r"pip install --no-deps paddleclas==2\.6\.0"):
        paddleclas_ref.wheel_dir()
