"""The checks every registered model passes, as functions of its registry name.

``test_models.py`` runs them over the registry (so a new entry is checked the day it is registered);
``test_new_family.py`` runs them on a throwaway family to prove that nothing else has to be edited.
"""

from __future__ import annotations

import os

import numpy as np
import paddle
import paddle.inference as pi

from ppcls.arch import ClassificationNet, build_model, model_arguments, model_class
from ppcls.arch.family import missing_keys
from ppcls.arch.weights import apply, identify
from ppcls.arch.weights.published import Published
from ppcls.engine.export import export_model, model_file
from ppcls.registry import MODELS
from ppcls.utils.flops import count_params

SMALL = 64


def models_under_test() -> list[str]:
    """Every registered model: the generic tests are parametrized over this list."""
    return MODELS.names()


def smallest_per_family() -> list[str]:
    """The model with the fewest parameters of each family (for the checks that save weights)."""
    families = sorted({MODELS.metadata(n)["family"] for n in models_under_test() if not missing_keys(MODELS.metadata(n))})
    return [min(MODELS.list(family=f, generic=False), key=lambda n: MODELS.metadata(n)["params"]) for f in families]


def check_metadata(name: str) -> None:
    """The registry entry carries every metadata key, well typed, and declares its network class."""
    meta = MODELS.metadata(name)
    assert not missing_keys(meta), f"{name}: register it with **FAMILY.entry(params=...) (missing {missing_keys(meta)})"
    assert isinstance(meta["family"], str) and meta["family"]
    c, h, w = meta["input_size"]
    assert c == 3 and h > 0 and w > 0
    assert len(meta["mean"]) == c and len(meta["std"]) == c and min(meta["std"]) > 0
    assert isinstance(meta["params"], int) and meta["params"] > 0
    assert isinstance(meta["weights"], tuple) and all(isinstance(p, Published) for p in meta["weights"])
    assert isinstance(meta["generic"], bool)
    cls = model_class(name)
    # Arch keys are checked against the class an entry returns; an entry without a return annotation (or
    # with **kwargs reaching nothing declared) would switch that check off silently
    assert cls is not None, f"{name}: annotate the entry function's return type with its network class"
    assert issubclass(cls, ClassificationNet), f"{name}: {cls.__name__} must subclass ppcls.arch.ClassificationNet"
    assert model_arguments(name) is not None, f"{name}: its constructor takes **kwargs, so Arch keys go unchecked"


def check_count_and_forward(name: str) -> None:
    """At its metadata's input size and 1000 classes: the registered parameter count and a finite forward."""
    meta = MODELS.metadata(name)
    paddle.seed(0)
    model = build_model({"name": name, "class_num": 1000})
    assert isinstance(model, model_class(name))
    assert count_params(model) == meta["params"], f"{name}: {count_params(model)} parameters, registered {meta['params']}"
    model.eval()
    with paddle.no_grad():
        out = model(paddle.randn([1, *meta["input_size"]]))
    assert out.shape == [1, 1000]
    assert bool(paddle.isfinite(out).all())


def check_interface(name: str) -> None:
    """The declared interface: head names, num_features, forward_features / forward_head shapes."""
    model = build_model({"name": name, "class_num": 6})
    cls = type(model)
    for method in ("forward_features", "forward_head"):
        assert getattr(cls, method) is not getattr(ClassificationNet, method), f"{cls.__name__} lacks {method}"
    assert model.head_names and all(isinstance(getattr(model, n, None), paddle.nn.Layer) for n in model.head_names)
    assert model.get_classifier() is getattr(model, model.head_names[-1])
    assert model.class_num == 6 and isinstance(model.num_features, int)
    model.eval()
    with paddle.no_grad():
        feats = model.forward_features(paddle.randn([2, 3, SMALL, SMALL]))
        assert feats.ndim == 4 and feats.shape[:2] == [2, model.num_features]
        assert model.forward_head(feats).shape == [2, 6]


def check_reset_classifier(name: str, tmp_dir: str) -> None:
    """``reset_classifier`` really replaces the classifier, and weights load into the reset model."""
    paddle.seed(3)
    trained = build_model({"name": name, "class_num": 5})
    path = os.path.join(tmp_dir, f"{name}_5.pdparams")
    paddle.save(trained.state_dict(), path)
    model = build_model({"name": name, "class_num": 5})
    old = model.get_classifier()
    model.reset_classifier(3)
    assert model.get_classifier() is not old and model.class_num == 3
    fresh = build_model({"name": name, "class_num": 3}).state_dict()
    got = model.state_dict()
    assert list(got) == list(fresh) and all(got[k].shape == fresh[k].shape for k in fresh)
    model.eval()
    x = paddle.randn([2, 3, SMALL, SMALL])
    with paddle.no_grad():
        assert model(x).shape == [2, 3]
    # fine-tuning: a 5-class file fills everything but the classifier, which keeps its 3 classes
    report = apply(model, identify(path))
    prefix = model.head_names[-1] + "."
    assert report.reinitialised and all(k.startswith(prefix) for k in report.reinitialised)
    saved = trained.state_dict()
    for key, value in model.state_dict().items():
        if key not in report.reinitialised:
            np.testing.assert_array_equal(value.numpy(), saved[key].numpy())
    with paddle.no_grad():
        assert model(x).shape == [2, 3]


def check_independent_instances(name: str) -> None:
    """Two instances share no parameter and no parameter name (no module state, no fixed names)."""
    paddle.seed(1)
    a = build_model({"name": name, "class_num": 5})
    b = build_model({"name": name, "class_num": 5})
    assert not {id(p) for p in a.parameters()} & {id(p) for p in b.parameters()}
    names_a = [p.name for p in a.parameters()]
    assert len(set(names_a)) == len(names_a) and not set(names_a) & {p.name for p in b.parameters()}
    x = paddle.randn([2, 3, SMALL, SMALL])
    a.train()
    b.train()
    assert a(x).shape == [2, 5] and b(x).shape == [2, 5]
    a.eval()
    assert a(x).shape == [2, 5]


def check_export(name: str, tmp_dir: str) -> None:
    """The exported inference model (BatchNorm folded, branches fused) gives eager's probabilities."""
    paddle.seed(2)
    model = build_model({"name": name, "class_num": 7})
    # non-trivial BatchNorm statistics, so that folding them is really exercised
    model.train()
    with paddle.no_grad():
        for _ in range(2):
            model(paddle.randn([4, 3, SMALL, SMALL]) * 2 + 0.5)
    model.eval()
    out_dir = export_model(model, os.path.join(tmp_dir, "inf"), [3, SMALL, SMALL], name, 7)
    config = pi.Config(model_file(out_dir), os.path.join(out_dir, "inference.pdiparams"))
    config.disable_gpu()
    config.disable_mkldnn()
    predictor = pi.create_predictor(config)
    for batch in (1, 3):
        x = np.random.RandomState(batch).randn(batch, 3, SMALL, SMALL).astype("float32")
        with paddle.no_grad():
            expected = paddle.nn.functional.softmax(model(paddle.to_tensor(x)), axis=-1).numpy()
        handle = predictor.get_input_handle(predictor.get_input_names()[0])
        handle.reshape(list(x.shape))
        handle.copy_from_cpu(x)
        predictor.run()
        got = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
        np.testing.assert_allclose(got, expected, atol=1e-4)
